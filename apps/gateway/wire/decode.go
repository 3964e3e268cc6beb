package wire

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// Decode decodes one client message. It returns either a Request whose
// Type is one of the Type* constants and whose fields are valid for that
// type, or an Error with code bad_request. The rules, from PROTOCOL.md and
// where it is silent:
//
//   - data that is not JSON, or JSON that is not an object: bad_request.
//   - ref, when present, must be a string of at most 64 bytes (after JSON
//     unescaping); otherwise bad_request answered without a ref. null is
//     not a string. Every other error carries the valid ref.
//   - t missing, not a string, or not one of hello, join, op, leave, ping
//     (case-sensitive): bad_request.
//   - The fields of the message type are then checked in this order:
//     board (join, leave, op; a string matching ^[A-Za-z0-9_-]{1,64}$),
//     since (join; optional, a JSON integer written without fraction or
//     exponent, >= 0, fitting int64), id (op; a string of 1 to 64 bytes),
//     op (op; a JSON object). The first bad one is reported. null counts as
//     ill-typed for these fields, not as missing.
//   - hello's token and user are optional: absent or not strings, they are
//     left empty; the session answers unauthorized if it needs them.
//   - Fields that do not belong to the message type, and unknown fields,
//     are ignored. A key repeated in the object: the last one wins, as with
//     encoding/json. Keys are compared after JSON unescaping and exactly
//     (so "T" is not "t").
//   - Strings with invalid UTF-8 or lone surrogate escapes decode with
//     U+FFFD in their place, as with encoding/json.
//
// Decode does not retain data.
func Decode(data []byte) (*Request, *Error) {
	if !json.Valid(data) {
		return nil, NewError(Ref{}, CodeBadRequest, "message is not valid JSON")
	}
	var f fields
	if !f.scan(data) {
		return nil, NewError(Ref{}, CodeBadRequest, "message is not a JSON object")
	}

	var ref Ref
	if f.ref != nil {
		b, ok := stringBytes(f.ref)
		if !ok || len(b) > MaxRefLen {
			return nil, NewError(Ref{}, CodeBadRequest, "ref must be a string of at most 64 bytes")
		}
		ref = Ref{S: string(b), OK: true}
	}
	if f.t == nil {
		return nil, NewError(ref, CodeBadRequest, "t is required")
	}
	tb, ok := stringBytes(f.t)
	if !ok {
		return nil, NewError(ref, CodeBadRequest, "t must be a string")
	}

	req := &Request{Ref: ref.S, HasRef: ref.OK}
	switch string(tb) {
	case TypeHello:
		req.Type = TypeHello
		if b, ok := stringBytes(f.token); ok {
			req.Token = string(b)
		}
		if b, ok := stringBytes(f.user); ok {
			req.User = string(b)
		}
	case TypePing:
		req.Type = TypePing
	case TypeLeave:
		req.Type = TypeLeave
		if err := f.board(req); err != nil {
			return nil, err
		}
	case TypeJoin:
		req.Type = TypeJoin
		if err := f.board(req); err != nil {
			return nil, err
		}
		if f.since != nil {
			n, ok := parseSince(f.since)
			if !ok {
				return nil, newError(ref, CodeBadRequest, "join: since must be a non-negative integer")
			}
			req.Since, req.HasSince = n, true
		}
	case TypeOp:
		req.Type = TypeOp
		if err := f.board(req); err != nil {
			return nil, err
		}
		if f.id == nil {
			return nil, newError(ref, CodeBadRequest, "op: id is required")
		}
		b, ok := stringBytes(f.id)
		if !ok {
			return nil, newError(ref, CodeBadRequest, "op: id must be a string")
		}
		if len(b) == 0 || len(b) > MaxOpIDLen {
			return nil, newError(ref, CodeBadRequest, "op: id must be 1 to 64 bytes long")
		}
		req.ID = string(b)
		if f.op == nil {
			return nil, newError(ref, CodeBadRequest, "op: op is required")
		}
		if f.op[0] != '{' {
			return nil, newError(ref, CodeBadRequest, "op: op must be an object")
		}
		req.Op = append(json.RawMessage(nil), f.op...)
	default:
		return nil, newError(ref, CodeBadRequest, "unknown message type %s", quoteShort(tb))
	}
	return req, nil
}

// board checks and sets the board field of req, of type req.Type.
func (f *fields) board(req *Request) *Error {
	if f.boardRaw == nil {
		return req.Errorf(CodeBadRequest, "%s: board is required", req.Type)
	}
	b, ok := stringBytes(f.boardRaw)
	if !ok {
		return req.Errorf(CodeBadRequest, "%s: board must be a string", req.Type)
	}
	if !validIDBytes(b) {
		return req.Errorf(CodeBadRequest, "%s: board must match [A-Za-z0-9_-]{1,64}", req.Type)
	}
	req.Board = string(b)
	return nil
}

// quoteShort quotes the first 32 bytes of b for an error message.
func quoteShort(b []byte) string {
	const max = 32
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return strconv.Quote(string(b))
}

// parseSince parses a non-negative JSON integer without fraction or
// exponent that fits an int64. raw is a valid JSON value.
func parseSince(raw []byte) (int64, bool) {
	b := raw
	neg := false
	if b[0] == '-' {
		neg, b = true, b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false // not a number, or a fraction or exponent
		}
		d := int64(c - '0')
		if n > (1<<63-1-d)/10 {
			return 0, false // overflow
		}
		n = n*10 + d
	}
	if neg && n != 0 {
		return 0, false // -0 is 0; anything else negative is refused
	}
	return n, true
}

// stringBytes returns the contents of raw, a valid JSON value, if it is a
// string. Without escapes and with valid UTF-8, the result aliases raw;
// otherwise it is unescaped by encoding/json (which also replaces invalid
// UTF-8). A nil raw is not a string.
func stringBytes(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return nil, false
	}
	in := raw[1 : len(raw)-1]
	esc, ascii := false, true
	for _, c := range in {
		if c == '\\' {
			esc = true
			break
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	if !esc && (ascii || utf8.Valid(in)) {
		return in, true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, false // cannot happen for a valid JSON string
	}
	return []byte(s), true
}

// fields holds the raw values of the top-level members of a client message
// that Decode looks at; a nil slice means the member is absent. The values
// alias the decoded message.
type fields struct {
	t, ref, token, user, boardRaw, since, id, op []byte
}

// scan fills f from data, which must be valid JSON (json.Valid). It reports
// false if data is not an object. A repeated key overwrites the earlier one.
func (f *fields) scan(data []byte) bool {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = skipSpace(data, i+1)
	if data[i] == '}' {
		return true
	}
	for {
		// data[i] is the '"' that opens a key.
		kEnd := stringEnd(data, i)
		key := data[i:kEnd]
		i = skipSpace(data, kEnd)
		i = skipSpace(data, i+1) // the ':'
		vEnd := valueEnd(data, i)
		f.set(key, data[i:vEnd])
		i = skipSpace(data, vEnd)
		if data[i] == '}' {
			return true
		}
		i = skipSpace(data, i+1) // the ','
	}
}

// set records val under the raw (quoted) key.
func (f *fields) set(rawKey, val []byte) {
	key, ok := stringBytes(rawKey)
	if !ok {
		return
	}
	switch string(key) {
	case "t":
		f.t = val
	case "ref":
		f.ref = val
	case "token":
		f.token = val
	case "user":
		f.user = val
	case "board":
		f.boardRaw = val
	case "since":
		f.since = val
	case "id":
		f.id = val
	case "op":
		f.op = val
	}
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// stringEnd returns the index just after the JSON string starting at
// data[i] (a '"').
func stringEnd(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++ // the escaped byte; \uXXXX continues with hex digits, never a quote
		case '"':
			return i + 1
		}
	}
	return i
}

// valueEnd returns the index just after the JSON value starting at data[i].
func valueEnd(data []byte, i int) int {
	switch data[i] {
	case '"':
		return stringEnd(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				i = stringEnd(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default: // number, true, false, null
		for i < len(data) {
			switch data[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}
