package load

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Frame is a decoded server message: the fields of PROTOCOL.md that the
// load tools use. Fields a message type does not carry stay zero.
type Frame struct {
	T     string `json:"t"`
	Ref   string `json:"ref,omitempty"`
	Board string `json:"board,omitempty"`
	Seq   int64  `json:"seq,omitempty"`
	User  string `json:"user,omitempty"`
	ID    string `json:"id,omitempty"`
	Dup   bool   `json:"dup,omitempty"`
	Code  string `json:"code,omitempty"`
	Msg   string `json:"msg,omitempty"`
	Node  string `json:"node,omitempty"`
	// Op is the op of an ev, as sent by the server.
	Op json.RawMessage `json:"op,omitempty"`
	// Snapshot is present on a joined that carries the board's state
	// rather than a replay.
	Snapshot json.RawMessage `json:"snapshot,omitempty"`
	Users    []string        `json:"users,omitempty"`
	Joins    []string        `json:"joins,omitempty"`
	Leaves   []string        `json:"leaves,omitempty"`
}

// ErrFrame is wrapped by every error of ParseFrame: the server sent
// something PROTOCOL.md does not allow.
var ErrFrame = errors.New("bad server frame")

// ParseFrame decodes one server message and checks the fields its type
// requires: an ev needs board, seq >= 1, user and id; an ack board, id
// and seq >= 1; a joined board and seq >= 0; an error a code. Unknown
// types are returned as they are (the protocol may grow).
func ParseFrame(b []byte) (Frame, error) {
	var f Frame
	if err := json.Unmarshal(b, &f); err != nil {
		return Frame{}, fmt.Errorf("%w: %v", ErrFrame, err)
	}
	// A JSON null is no value.
	if string(f.Op) == "null" {
		f.Op = nil
	}
	if string(f.Snapshot) == "null" {
		f.Snapshot = nil
	}
	bad := func(what string) (Frame, error) {
		return Frame{}, fmt.Errorf("%w: %s %s", ErrFrame, f.T, what)
	}
	switch f.T {
	case "":
		return bad("without a type")
	case "ev":
		switch {
		case f.Board == "":
			return bad("without board")
		case f.Seq < 1:
			return bad("with seq < 1")
		case f.User == "" || f.ID == "":
			return bad("without user or id")
		case len(f.Op) == 0 || f.Op[0] != '{':
			return bad("whose op is not an object")
		}
	case "ack":
		switch {
		case f.Board == "" || f.ID == "":
			return bad("without board or id")
		case f.Seq < 1:
			return bad("with seq < 1")
		}
	case "joined":
		switch {
		case f.Board == "":
			return bad("without board")
		case f.Seq < 0:
			return bad("with seq < 0")
		case len(f.Snapshot) > 0 && f.Snapshot[0] != '{':
			return bad("whose snapshot is not an object")
		}
	case "error":
		if f.Code == "" {
			return bad("without code")
		}
	}
	return f, nil
}

// A stamp rides inside every op the load tools send (in a chat's text or
// an entity's prop): the phase the op belongs to and when it was first
// sent, so any member can measure op-to-delivery latency.
const stampMark = "lg~"

// AppendStamp appends the stamp text lg~PHASE~UNIXNANO~ to b.
func AppendStamp(b []byte, phase int, sentNanos int64) []byte {
	b = append(b, stampMark...)
	b = strconv.AppendInt(b, int64(phase), 10)
	b = append(b, '~')
	b = strconv.AppendInt(b, sentNanos, 10)
	return append(b, '~')
}

// ParseStamp finds the stamp in an op's JSON; ok is false if it has none.
func ParseStamp(op []byte) (phase int, sentNanos int64, ok bool) {
	i := bytes.Index(op, []byte(stampMark))
	if i < 0 {
		return 0, 0, false
	}
	rest := op[i+len(stampMark):]
	p, rest, ok := cutInt(rest)
	if !ok || p > 1<<30 {
		return 0, 0, false
	}
	ns, _, ok := cutInt(rest)
	if !ok {
		return 0, 0, false
	}
	return int(p), ns, true
}

// cutInt reads decimal digits up to a '~'.
func cutInt(b []byte) (int64, []byte, bool) {
	end := bytes.IndexByte(b, '~')
	if end <= 0 || end > 19 {
		return 0, nil, false
	}
	n, err := strconv.ParseInt(string(b[:end]), 10, 64)
	if err != nil || n < 0 {
		return 0, nil, false
	}
	return n, b[end+1:], true
}
