package console

import "errors"

// Errors of the console's attach side (Dial, Client).
var (
	// ErrUnreachable: the target node could not be reached: it is not
	// registered with its EPMD, nothing listens on its distribution
	// address, or it did not answer in time.
	ErrUnreachable = errors.New("node unreachable")
	// ErrRefused: a TCP connection to the target was made, but the
	// distribution handshake failed: almost always a cookie that is not
	// the node's.
	ErrRefused = errors.New("connection refused by the node")
	// ErrTimeout: the node did not answer a request in time.
	ErrTimeout = errors.New("no answer in time")
	// ErrUsage: a console command with a wrong name or wrong arguments.
	ErrUsage = errors.New("usage")
)

// ReplyError is an {error, Reason} reply of tavern_console.
type ReplyError struct {
	// Reason is the reason as text: an atom's name or a binary's text.
	Reason string
}

func (e *ReplyError) Error() string { return e.Reason }
