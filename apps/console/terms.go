package console

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"unicode/utf8"

	"github.com/ergo-services/ergo/etf"
)

// Term helpers shared by the server (reading requests from Go or Erlang)
// and the client (reading replies).

var (
	atomOK    = etf.Atom("ok")
	atomError = etf.Atom("error")
)

func okReply(v etf.Term) etf.Term { return etf.Tuple{atomOK, v} }

// errReply is {error, Reason}: reason an atom a program can match on.
func errReply(reason string) etf.Term { return etf.Tuple{atomError, etf.Atom(reason)} }

// errText is {error, <<"...">>}: a readable reason.
func errText(format string, args ...any) etf.Term {
	return etf.Tuple{atomError, etf.String(fmt.Sprintf(format, args...))}
}

// bin is text as an Erlang binary (a Go string would reach Erlang as a
// charlist).
func bin(s string) etf.String { return etf.String(s) }

func bins(ss []string) etf.List {
	l := make(etf.List, 0, len(ss))
	for _, s := range ss {
		l = append(l, bin(s))
	}
	return l
}

func atoms(ss []string) etf.List {
	l := make(etf.List, 0, len(ss))
	for _, s := range ss {
		l = append(l, etf.Atom(s))
	}
	return l
}

// text reads text however a Go node or an Erlang shell sends it: a
// binary (<<"cave-1">>, UTF-8, or Latin-1 when it is not valid UTF-8), a
// string as Ergo decodes an Erlang string ("cave-1": one byte per
// character, Latin-1), a list of code points ("héllo" with characters
// above 255), or an atom.
func text(t etf.Term) (string, bool) {
	switch v := t.(type) {
	case []byte:
		if utf8.Valid(v) {
			return string(v), true
		}
		return latin1(v), true
	case etf.String:
		return string(v), true
	case string:
		// STRING_EXT: Erlang's short lists of bytes, i.e. Latin-1.
		return latin1([]byte(v)), true
	case etf.Charlist:
		return string(v), true
	case etf.Atom:
		return string(v), true
	case etf.List:
		rs := make([]rune, 0, len(v))
		for _, e := range v {
			n, ok := integer(e)
			if !ok || n < 0 || n > utf8.MaxRune {
				return "", false
			}
			rs = append(rs, rune(n))
		}
		return string(rs), true
	}
	return "", false
}

func latin1(b []byte) string {
	rs := make([]rune, len(b))
	for i, c := range b {
		rs[i] = rune(c)
	}
	return string(rs)
}

// integer reads an integer term.
func integer(t etf.Term) (int64, bool) {
	switch v := t.(type) {
	case int:
		return int64(v), true
	case int8:
		return int64(v), true
	case int16:
		return int64(v), true
	case int32:
		return int64(v), true
	case int64:
		return v, true
	case uint8:
		return int64(v), true
	case uint16:
		return int64(v), true
	case uint32:
		return int64(v), true
	case uint64:
		if v > math.MaxInt64 {
			return 0, false
		}
		return int64(v), true
	case uint:
		if uint64(v) > math.MaxInt64 {
			return 0, false
		}
		return int64(v), true
	case *big.Int:
		if v.IsInt64() {
			return v.Int64(), true
		}
	}
	return 0, false
}

// number reads an integer or a float term, or text that holds one.
func number(t etf.Term) (float64, bool) {
	if n, ok := integer(t); ok {
		return float64(n), true
	}
	switch v := t.(type) {
	case float64:
		return v, true
	case float32:
		return float64(v), true
	}
	if s, ok := text(t); ok {
		f, err := strconv.ParseFloat(s, 64)
		if err == nil {
			return f, true
		}
	}
	return 0, false
}

// Plain turns a reply term into plain Go values for printing and JSON:
// atoms and text become strings (true/false stay bools), integers int64,
// floats float64, lists and tuples []any, maps map[string]any (keys as
// text), pids and refs their Erlang text.
func Plain(t etf.Term) any {
	switch v := t.(type) {
	case nil:
		return nil
	case bool:
		return v
	case etf.Atom:
		return string(v)
	case float64:
		return v
	case float32:
		return float64(v)
	case etf.Tuple:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = Plain(e)
		}
		return out
	case etf.List:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = Plain(e)
		}
		return out
	case etf.Map:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[keyText(k)] = Plain(e)
		}
		return out
	case etf.Pid:
		return fmt.Sprintf("<%s.%d.%d>", v.Node, v.ID>>32, v.ID&0xffffffff)
	}
	if n, ok := integer(t); ok {
		return n
	}
	if s, ok := text(t); ok {
		return s
	}
	return fmt.Sprint(t)
}

func keyText(k etf.Term) string {
	if s, ok := text(k); ok {
		return s
	}
	return fmt.Sprint(Plain(k))
}
