package wire

import "fmt"

// Error codes of an "error" server message (PROTOCOL.md, Errors).
const (
	CodeBadRequest   = "bad_request"  // not JSON, not an object, unknown t, missing or ill-typed field of the message itself; stays open
	CodeUnauthorized = "unauthorized" // no hello yet, bad token; close 1008
	CodeForbidden    = "forbidden"    // the token does not allow this board; stays open
	CodeNotJoined    = "not_joined"   // an op for a board this connection has not joined
	CodeNotFound     = "not_found"    // the op names an entity that does not exist
	CodeBadOp        = "bad_op"       // anything wrong inside op
	CodeRateLimited  = "rate_limited" // more ops per second than allowed; op not applied
	CodeUnavailable  = "unavailable"  // the op could not be made durable now; retry with the same id
	CodeInternal     = "internal"     // a bug
)

// KnownCode reports whether code is one of the Code* constants.
func KnownCode(code string) bool {
	switch code {
	case CodeBadRequest, CodeUnauthorized, CodeForbidden, CodeNotJoined, CodeNotFound,
		CodeBadOp, CodeRateLimited, CodeUnavailable, CodeInternal:
		return true
	}
	return false
}

// Error is a protocol error, sent to the client as
// {"t":"error","ref":..,"code":..,"msg":..} by ErrorMsg. Msg is meant for
// the client: it never holds internal details.
type Error struct {
	Code   string // one of the Code* constants
	Msg    string
	Ref    string // the ref of the message it answers; valid only when HasRef
	HasRef bool
}

// Error implements error.
func (e *Error) Error() string { return e.Code + ": " + e.Msg }

// ReplyRef returns the ref e carries.
func (e *Error) ReplyRef() Ref { return Ref{S: e.Ref, OK: e.HasRef} }

// NewError returns an Error with the given ref, code and message.
func NewError(ref Ref, code, msg string) *Error {
	return &Error{Code: code, Msg: msg, Ref: ref.S, HasRef: ref.OK}
}

func newError(ref Ref, code, format string, args ...any) *Error {
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	return NewError(ref, code, msg)
}
