package rules

import "errors"

// Error codes of the protocol that this package produces.
const (
	// CodeBadOp: anything wrong inside an op (unknown kind, a missing or
	// invalid field, a limit exceeded). The board is unchanged.
	CodeBadOp = "bad_op"
	// CodeNotFound: the op names an entity that does not exist. The board is
	// unchanged.
	CodeNotFound = "not_found"
)

// Error is an error that the server can send to a client as is: Code is one
// of the Code* constants and Msg a human-readable sentence such as
// "move: entity e9 not found". Decode and Apply return only *Error.
type Error struct {
	Code string
	Msg  string
}

func (e *Error) Error() string { return e.Code + ": " + e.Msg }

// Is makes errors.Is(err, ErrBadOp) and errors.Is(err, ErrNotFound) match
// any *Error of that code. A target with a Msg must match it too.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && (t.Msg == "" || t.Msg == e.Msg)
}

var (
	// ErrBadOp matches, with errors.Is, every *Error of code bad_op.
	ErrBadOp = &Error{Code: CodeBadOp}
	// ErrNotFound matches, with errors.Is, every *Error of code not_found.
	ErrNotFound = &Error{Code: CodeNotFound}
	// ErrBadSnapshot is wrapped by every error of LoadSnapshot: the stored
	// snapshot is not one that Snapshot could have written.
	ErrBadSnapshot = errors.New("rules: bad snapshot")
	// ErrBadLimits is wrapped by every error of Limits.Validate.
	ErrBadLimits = errors.New("rules: bad limits")
)

func badOp(msg string) *Error { return &Error{Code: CodeBadOp, Msg: msg} }
