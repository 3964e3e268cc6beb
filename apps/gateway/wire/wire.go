// Package wire is the codec of the Tavern client protocol (PROTOCOL.md): it
// turns one client WebSocket text message into a typed Request or a protocol
// Error, and builds every server message as compact JSON. It is pure code,
// with no sockets, no Ergo and no state; sessions decide what to do with what
// it decodes.
package wire

import "encoding/json"

// Client message types (the "t" field of a client message).
const (
	TypeHello = "hello"
	TypeJoin  = "join"
	TypeOp    = "op"
	TypeLeave = "leave"
	TypePing  = "ping"
)

// Size limits of the message fields checked by Decode, in bytes.
const (
	MaxRefLen  = 64 // a ref is a string of at most 64 bytes (the empty string is a valid ref)
	MaxOpIDLen = 64 // an op id is a string of 1 to 64 bytes
	MaxIDLen   = 64 // board and entity ids match ^[A-Za-z0-9_-]{1,64}$
)

// WebSocket close codes the gateway uses (RFC 6455, section 7.4.1).
const (
	CloseUnsupportedData = 1003 // a binary frame
	CloseInvalidUTF8     = 1007 // a text message that is not valid UTF-8
	ClosePolicy          = 1008 // unauthorized: no hello first, bad token
	CloseTooBig          = 1009 // a client message larger than the configured limit
	CloseRestart         = 1012 // the node is shutting down or restarting
	CloseTryAgain        = 1013 // the server cannot keep the stream gap-free; rejoin with since
)

// Request is one decoded client message. Only the fields of its Type are
// set; the others are zero. A Request does not alias the bytes it was
// decoded from.
type Request struct {
	Type   string // one of the Type* constants
	Ref    string // the client's ref, echoed on the reply; valid only when HasRef
	HasRef bool

	// hello. A token or user that is absent or not a JSON string is left
	// empty: whether that is acceptable (dev or jwt auth) is the session's
	// decision, answered with unauthorized.
	Token string
	User  string

	// join, leave, op: a valid board id (^[A-Za-z0-9_-]{1,64}$).
	Board string

	// join: the last seq the client applied, when HasSince. Always >= 0.
	Since    int64
	HasSince bool

	// op: the client's op id (1 to 64 bytes) and the op object itself, raw.
	// Op is always a JSON object; what is inside is checked elsewhere (bad_op).
	ID string
	Op json.RawMessage
}

// Ref is an optional ref, as passed to the encoders: S is echoed as "ref"
// when OK, and no "ref" field is written when !OK. The zero Ref is "no ref".
type Ref struct {
	S  string
	OK bool
}

// ReplyRef returns the ref to put on the reply or error answering r.
func (r *Request) ReplyRef() Ref { return Ref{S: r.Ref, OK: r.HasRef} }

// Errorf returns an Error with the given code answering r (it carries r's
// ref, if any).
func (r *Request) Errorf(code, format string, args ...any) *Error {
	return newError(r.ReplyRef(), code, format, args...)
}

// Limits are the per-connection limits announced in welcome.
type Limits struct {
	MaxFrame  int     // largest client message, in bytes
	OpsPerSec float64 // token bucket refill rate
	OpsBurst  int     // token bucket size
}

// ValidID reports whether s is a valid board or entity id:
// ^[A-Za-z0-9_-]{1,64}$.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !idByte[s[i]] {
			return false
		}
	}
	return true
}

func validIDBytes(b []byte) bool {
	if len(b) == 0 || len(b) > MaxIDLen {
		return false
	}
	for _, c := range b {
		if !idByte[c] {
			return false
		}
	}
	return true
}

var idByte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	t['_'], t['-'] = true, true
	return t
}()
