package wire

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// The encoders below build server messages as compact JSON, with the
// fields of PROTOCOL.md and nothing else. Strings are escaped as
// encoding/json does (without its HTML escaping); invalid UTF-8 is written
// as U+FFFD. json.RawMessage arguments are copied in as they are: they must
// be valid JSON, as produced by encoding/json (the encoders do not
// re-validate them, to keep megabyte snapshots cheap).

// Welcome answers hello:
// {"t":"welcome","ref":..,"user":..,"node":..,"limits":{"max_frame":..,"ops_per_sec":..,"ops_burst":..}}.
// ops_per_sec is written as an integer when it is one; a non-finite value
// is written as 0.
func Welcome(ref Ref, user, node string, lim Limits) []byte {
	b := make([]byte, 0, 128+len(user)+len(node))
	b = append(b, `{"t":"welcome"`...)
	b = appendRef(b, ref)
	b = appendField(b, "user", user)
	b = appendField(b, "node", node)
	b = append(b, `,"limits":{"max_frame":`...)
	b = strconv.AppendInt(b, int64(lim.MaxFrame), 10)
	b = append(b, `,"ops_per_sec":`...)
	b = appendFloat(b, lim.OpsPerSec)
	b = append(b, `,"ops_burst":`...)
	b = strconv.AppendInt(b, int64(lim.OpsBurst), 10)
	return append(b, "}}"...)
}

// Joined answers join: {"t":"joined","ref":..,"board":..,"seq":..,"snapshot":..}.
// A nil (or empty) snapshot writes no snapshot field: the replayed evs follow.
func Joined(ref Ref, board string, seq int64, snapshot json.RawMessage) []byte {
	b := make([]byte, 0, 64+len(ref.S)+len(board)+len(snapshot))
	b = append(b, `{"t":"joined"`...)
	b = appendRef(b, ref)
	b = appendField(b, "board", board)
	b = appendInt(b, "seq", seq)
	if len(snapshot) > 0 {
		b = append(b, `,"snapshot":`...)
		b = append(b, snapshot...)
	}
	return append(b, '}')
}

// Ack answers op once it is durable: {"t":"ack","ref":..,"board":..,"id":..,"seq":..},
// with "dup":true added only when dup.
func Ack(ref Ref, board, id string, seq int64, dup bool) []byte {
	b := make([]byte, 0, 64+len(ref.S)+len(board)+len(id))
	b = append(b, `{"t":"ack"`...)
	b = appendRef(b, ref)
	b = appendField(b, "board", board)
	b = appendField(b, "id", id)
	b = appendInt(b, "seq", seq)
	if dup {
		b = append(b, `,"dup":true`...)
	}
	return append(b, '}')
}

// Event is an applied op: {"t":"ev","board":..,"seq":..,"user":..,"id":..,"op":{..},"result":{..}}.
// A nil op is written as {}; a nil (or empty) result writes no result field
// (only roll has one).
func Event(board string, seq int64, user, id string, op, result json.RawMessage) []byte {
	b := make([]byte, 0, 64+len(board)+len(user)+len(id)+len(op)+len(result))
	b = append(b, `{"t":"ev"`...)
	b = appendField(b, "board", board)
	b = appendInt(b, "seq", seq)
	b = appendField(b, "user", user)
	b = appendField(b, "id", id)
	b = append(b, `,"op":`...)
	if len(op) == 0 {
		b = append(b, "{}"...)
	} else {
		b = append(b, op...)
	}
	if len(result) > 0 {
		b = append(b, `,"result":`...)
		b = append(b, result...)
	}
	return append(b, '}')
}

// PresenceFull is the presence sent on join: {"t":"presence","board":..,"users":[..]}.
// users are written sorted and without duplicates (the argument is not
// modified); never null.
func PresenceFull(board string, users []string) []byte {
	b := make([]byte, 0, 48+len(board)+listLen(users))
	b = append(b, `{"t":"presence"`...)
	b = appendField(b, "board", board)
	b = appendList(b, "users", users)
	return append(b, '}')
}

// PresenceDelta is a presence change: {"t":"presence","board":..,"joins":[..],"leaves":[..]}.
// Both lists are always written (sorted, without duplicates, [] when empty).
func PresenceDelta(board string, joins, leaves []string) []byte {
	b := make([]byte, 0, 64+len(board)+listLen(joins)+listLen(leaves))
	b = append(b, `{"t":"presence"`...)
	b = appendField(b, "board", board)
	b = appendList(b, "joins", joins)
	b = appendList(b, "leaves", leaves)
	return append(b, '}')
}

// Left answers leave: {"t":"left","ref":..,"board":..}.
func Left(ref Ref, board string) []byte {
	b := make([]byte, 0, 32+len(ref.S)+len(board))
	b = append(b, `{"t":"left"`...)
	b = appendRef(b, ref)
	b = appendField(b, "board", board)
	return append(b, '}')
}

// Pong answers ping: {"t":"pong","ref":..}.
func Pong(ref Ref) []byte {
	b := make([]byte, 0, 24+len(ref.S))
	b = append(b, `{"t":"pong"`...)
	b = appendRef(b, ref)
	return append(b, '}')
}

// Notice is an operator's message to every client: {"t":"notice","text":..}.
func Notice(text string) []byte {
	b := make([]byte, 0, 32+len(text))
	b = append(b, `{"t":"notice"`...)
	b = appendField(b, "text", text)
	return append(b, '}')
}

// ErrorMsg is an error answer: {"t":"error","ref":..,"code":..,"msg":..},
// with ref only when e.HasRef.
func ErrorMsg(e *Error) []byte {
	b := make([]byte, 0, 48+len(e.Ref)+len(e.Code)+len(e.Msg))
	b = append(b, `{"t":"error"`...)
	b = appendRef(b, e.ReplyRef())
	b = appendField(b, "code", e.Code)
	b = appendField(b, "msg", e.Msg)
	return append(b, '}')
}

func appendRef(b []byte, ref Ref) []byte {
	if !ref.OK {
		return b
	}
	return appendField(b, "ref", ref.S)
}

// appendField appends ,"name":"value"; name needs no escaping.
func appendField(b []byte, name, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, value)
}

func appendInt(b []byte, name string, n int64) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return strconv.AppendInt(b, n, 10)
}

func appendList(b []byte, name string, list []string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, `":[`...)
	if !slices.IsSorted(list) || hasAdjacentDup(list) {
		list = slices.Compact(slices.Sorted(slices.Values(list)))
	}
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

func hasAdjacentDup(list []string) bool {
	for i := 1; i < len(list); i++ {
		if list[i] == list[i-1] {
			return true
		}
	}
	return false
}

func listLen(list []string) int {
	n := 0
	for _, s := range list {
		n += len(s) + 3
	}
	return n
}

// appendFloat writes f like encoding/json does, so an integral value has no
// fraction; NaN and infinities, which JSON cannot carry, are written as 0.
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, '0')
	}
	j, _ := json.Marshal(f) // cannot fail for a finite float; 200 is written "200"
	return append(b, j...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping like encoding/json with
// HTML escaping off: ", \ and control characters are escaped, U+2028 and
// U+2029 too, and invalid UTF-8 becomes \ufffd.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
