package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"unicode/utf8"
)

// This file holds the JSON helpers: the strict input check shared by Decode
// and LoadSnapshot, typed field readers, and the encoders that Snapshot uses.

// compactStrict returns data compacted, after checking that it is valid UTF-8,
// valid JSON, and strict: no object has two keys that decode to the same
// string, and no string has an unpaired UTF-16 surrogate escape (such as
// "\ud800"). Parsers disagree on both, so letting them through could make
// clients that replay an op end up with different boards.
func compactStrict(data []byte) ([]byte, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("not valid UTF-8")
	}
	var buf bytes.Buffer
	buf.Grow(len(data))
	if err := json.Compact(&buf, data); err != nil { // also checks validity
		return nil, errors.New("not valid JSON")
	}
	out := buf.Bytes()
	sc := strictScanner{b: out}
	if err := sc.value(); err != nil {
		return nil, err
	}
	return out, nil
}

// strictScanner walks compact, valid JSON looking for duplicate keys and
// unpaired surrogates.
type strictScanner struct {
	b []byte
	i int
}

func (s *strictScanner) value() error {
	switch s.b[s.i] {
	case '{':
		return s.object()
	case '[':
		s.i++
		if s.b[s.i] == ']' {
			s.i++
			return nil
		}
		for {
			if err := s.value(); err != nil {
				return err
			}
			c := s.b[s.i]
			s.i++
			if c == ']' {
				return nil
			}
		}
	case '"':
		_, err := s.str()
		return err
	default: // number, true, false, null
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', ']', '}':
				return nil
			}
			s.i++
		}
		return nil
	}
}

func (s *strictScanner) object() error {
	s.i++ // {
	if s.b[s.i] == '}' {
		s.i++
		return nil
	}
	var small []string
	var big map[string]struct{}
	for {
		k, err := s.str()
		if err != nil {
			return err
		}
		if big != nil {
			if _, dup := big[k]; dup {
				return errors.New("duplicate key " + quoteShort(k))
			}
			big[k] = struct{}{}
		} else {
			for _, o := range small {
				if o == k {
					return errors.New("duplicate key " + quoteShort(k))
				}
			}
			small = append(small, k)
			if len(small) > 16 {
				big = make(map[string]struct{}, 32)
				for _, o := range small {
					big[o] = struct{}{}
				}
			}
		}
		s.i++ // :
		if err := s.value(); err != nil {
			return err
		}
		c := s.b[s.i]
		s.i++
		if c == '}' {
			return nil
		}
	}
}

// str consumes a string literal and returns its decoded value.
func (s *strictScanner) str() (string, error) {
	start := s.i
	s.i++ // opening quote
	escaped := false
	for {
		c := s.b[s.i]
		if c == '"' {
			s.i++
			break
		}
		if c != '\\' {
			s.i++
			continue
		}
		escaped = true
		if s.b[s.i+1] != 'u' {
			s.i += 2
			continue
		}
		r := hex4(s.b[s.i+2 : s.i+6])
		s.i += 6
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return "", errors.New("string with an unpaired surrogate escape")
		case r >= 0xD800 && r <= 0xDBFF:
			if s.i+6 > len(s.b) || s.b[s.i] != '\\' || s.b[s.i+1] != 'u' {
				return "", errors.New("string with an unpaired surrogate escape")
			}
			lo := hex4(s.b[s.i+2 : s.i+6])
			if lo < 0xDC00 || lo > 0xDFFF {
				return "", errors.New("string with an unpaired surrogate escape")
			}
			s.i += 6
		}
	}
	lit := s.b[start:s.i]
	if !escaped {
		return string(lit[1 : len(lit)-1]), nil
	}
	var v string
	if err := json.Unmarshal(lit, &v); err != nil {
		return "", errors.New("not valid JSON")
	}
	return v, nil
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

// Typed readers. Each takes one JSON value cut from the output of
// compactStrict (so compact, valid and strict) and says whether it has the
// wanted type. null never has a wanted type.

func asString(raw json.RawMessage) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	body := raw[1 : len(raw)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return string(body), true
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", false
	}
	return v, true
}

// asNumber accepts a JSON number whose value is a finite float64: 1e999
// overflows and is refused; 1e-999 underflows to 0 and is accepted.
func asNumber(raw json.RawMessage) (float64, bool) {
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

func asPos(raw json.RawMessage) ([3]float64, bool) {
	var p [3]float64
	items, ok := asList(raw)
	if !ok || len(items) != 3 {
		return p, false
	}
	for i, it := range items {
		f, ok := asNumber(it)
		if !ok {
			return p, false
		}
		p[i] = f
	}
	return p, true
}

// asList returns the items of a list, as slices of raw.
func asList(raw json.RawMessage) ([]json.RawMessage, bool) {
	if len(raw) < 2 || raw[0] != '[' {
		return nil, false
	}
	items := []json.RawMessage{}
	i := 1
	if raw[i] == ']' {
		return items, true
	}
	for {
		j := skipValue(raw, i)
		items = append(items, raw[i:j:j])
		if raw[j] == ']' {
			return items, true
		}
		i = j + 1 // ,
	}
}

// asObject returns the members of an object; keys are decoded, values are
// slices of raw.
func asObject(raw json.RawMessage) (map[string]json.RawMessage, bool) {
	if len(raw) < 2 || raw[0] != '{' {
		return nil, false
	}
	m := map[string]json.RawMessage{}
	i := 1
	if raw[i] == '}' {
		return m, true
	}
	for {
		j := skipValue(raw, i) // the key
		k, ok := asString(raw[i:j])
		if !ok {
			return nil, false
		}
		i = j + 1 // :
		j = skipValue(raw, i)
		m[k] = raw[i:j:j]
		if raw[j] == '}' {
			return m, true
		}
		i = j + 1 // ,
	}
}

// skipValue returns the index just past the value that starts at b[i]; b is
// compact valid JSON.
func skipValue(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
			if depth < 0 {
				return i
			}
		case ',', ':':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}

// cloneValues copies the values of m, so that they no longer pin the buffer
// they were cut from.
func cloneValues(m map[string]json.RawMessage) {
	n := 0
	for _, v := range m {
		n += len(v)
	}
	buf := make([]byte, 0, n)
	for k, v := range m {
		start := len(buf)
		buf = append(buf, v...)
		m[k] = buf[start:len(buf):len(buf)]
	}
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// quoteShort quotes a client-sent string for an error message, cut to 64
// bytes so that a huge input does not make a huge message.
func quoteShort(s string) string {
	const max = 64
	if len(s) <= max {
		return strconv.Quote(s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "…"
}

// appendString appends s as a JSON string with the least escaping JSON
// allows: only '"', '\\' and control characters are escaped, with the short
// forms where JSON has one. s must be valid UTF-8.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		default:
			const hex = "0123456789abcdef"
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// quotedLen is len(appendString(nil, s)), without building it.
func quotedLen(s string) int {
	n := 2 + len(s)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		switch c {
		case '"', '\\', '\n', '\r', '\t', '\b', '\f':
			n++
		default:
			n += 5
		}
	}
	return n
}

// appendFloat writes f as encoding/json does: the shortest text that reads
// back as the same float64, in exponent form only for very small or large
// magnitudes.
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
