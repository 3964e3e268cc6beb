package erlterm

import (
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The scanner follows OTP's erl_scan: the same character classes (Latin-1
// letters in bare atoms, the Latin-1 range 128..160 as white space), the
// same escapes, the same rule that '.' ends a term only when white space, a
// comment or the end of the file follows it, and the same longest-match
// operators, so that token boundaries never differ from erl's.

type tokKind uint8

const (
	tEOF      tokKind = iota
	tDot              // the full stop that ends a term
	tAtom             // text: name
	tVar              // text: name
	tReserved         // text: the reserved word
	tString           // text: value
	tInt              // num (from digits or a $c character literal)
	tFloat            // flt
	tPunct            // text: the operator or punctuation
	tError            // err: message; sub: the kind it would have been
)

type token struct {
	kind tokKind
	pos  Pos
	text string
	num  *big.Int
	flt  float64
	err  string
	// For tError: fatal means the input around it cannot be trusted (an
	// illegal character, an unterminated string) and the parser gives up
	// on the term; otherwise the bad token was read to its proper end and
	// the parser can go on looking for more errors. sub is the kind of
	// token it was meant to be.
	fatal bool
	sub   tokKind
}

// Limits on literals. erl accepts longer numbers; no configuration needs them
// and math/big's conversion is quadratic in their length.
const (
	maxAtomLen   = 255  // characters; erl's own limit
	maxNumberLen = 1000 // characters of a numeric literal
)

type scanner struct {
	src       []byte
	off       int // byte offset of the next rune
	line, col int // its position
}

func newScanner(src []byte) *scanner {
	return &scanner{src: src, line: 1, col: 1}
}

func (s *scanner) pos() Pos { return Pos{s.line, s.col} }

// peek returns the next rune, or -1 at the end of the input.
func (s *scanner) peek() rune {
	if s.off >= len(s.src) {
		return -1
	}
	if c := s.src[s.off]; c < utf8.RuneSelf {
		return rune(c)
	}
	r, _ := utf8.DecodeRune(s.src[s.off:])
	return r
}

// peekAt returns the rune n runes ahead (peekAt(0) == peek()), or -1.
func (s *scanner) peekAt(n int) rune {
	off := s.off
	for ; n > 0; n-- {
		if off >= len(s.src) {
			return -1
		}
		_, size := utf8.DecodeRune(s.src[off:])
		off += size
	}
	if off >= len(s.src) {
		return -1
	}
	r, _ := utf8.DecodeRune(s.src[off:])
	return r
}

func (s *scanner) advance() rune {
	if s.off >= len(s.src) {
		return -1
	}
	r, size := utf8.DecodeRune(s.src[s.off:])
	s.off += size
	if r == '\n' {
		s.line++
		s.col = 1
	} else {
		s.col++
	}
	return r
}

// Character classes, as in erl_scan (Latin-1 letters included).
func isSpace(r rune) bool  { return r >= 0 && r <= ' ' || r >= 0x80 && r <= 0xA0 }
func isDigit(r rune) bool  { return r >= '0' && r <= '9' }
func isLower(r rune) bool  { return r >= 'a' && r <= 'z' || r >= 0xDF && r <= 0xFF && r != 0xF7 }
func isUpper(r rune) bool  { return r >= 'A' && r <= 'Z' || r >= 0xC0 && r <= 0xDE && r != 0xD7 }
func isNameCh(r rune) bool { return isLower(r) || isUpper(r) || isDigit(r) || r == '_' || r == '@' }

// isChar reports whether r may appear in a string, quoted atom, character
// literal or comment: a Unicode scalar value other than U+FFFE and U+FFFF.
func isChar(r rune) bool {
	return r >= 0 && r < 0xD800 || r > 0xDFFF && r < 0xFFFE || r > 0xFFFF && r <= 0x10FFFF
}

func digitVal(r rune) int {
	switch {
	case r >= '0' && r <= '9':
		return int(r - '0')
	case r >= 'a' && r <= 'z':
		return int(r-'a') + 10
	case r >= 'A' && r <= 'Z':
		return int(r-'A') + 10
	}
	return 99
}

var reservedWords = map[string]bool{
	"after": true, "and": true, "andalso": true, "band": true, "begin": true,
	"bnot": true, "bor": true, "bsl": true, "bsr": true, "bxor": true,
	"case": true, "catch": true, "cond": true, "div": true, "end": true,
	"fun": true, "if": true, "let": true, "not": true, "of": true, "or": true,
	"orelse": true, "receive": true, "rem": true, "try": true, "when": true,
	"xor": true,
}

func (s *scanner) errTok(pos Pos, fatal bool, sub tokKind, msg string) token {
	return token{kind: tError, pos: pos, err: msg, fatal: fatal, sub: sub}
}

// next returns the next token. Error messages never quote the input: it
// may hold a secret (a cookie with a typo in it, say).
func (s *scanner) next() token {
	for {
		r := s.peek()
		switch {
		case r == '%':
			pos := s.pos()
			for r = s.peek(); r != '\n' && r != -1; r = s.peek() {
				if !isChar(r) {
					return s.errTok(pos, true, tEOF, "illegal character in a comment")
				}
				s.advance()
			}
			continue
		case r >= 0 && isSpace(r):
			s.advance()
			continue
		}
		break
	}
	pos := s.pos()
	r := s.peek()
	switch {
	case r == -1:
		return token{kind: tEOF, pos: pos}
	case isLower(r):
		name := s.name()
		if reservedWords[name] {
			return token{kind: tReserved, pos: pos, text: name}
		}
		if utf8.RuneCountInString(name) > maxAtomLen {
			return s.errTok(pos, false, tAtom, "atom is longer than 255 characters")
		}
		return token{kind: tAtom, pos: pos, text: name}
	case isUpper(r) || r == '_':
		return token{kind: tVar, pos: pos, text: s.name()}
	case isDigit(r):
		return s.number(pos)
	case r == '\'':
		return s.quoted(pos, '\'')
	case r == '"':
		return s.quoted(pos, '"')
	case r == '$':
		return s.char(pos)
	case r == '.':
		s.advance()
		if n := s.peek(); n == -1 || n == '%' || isSpace(n) {
			return token{kind: tDot, pos: pos}
		}
		if s.peek() == '.' {
			s.advance()
			if s.peek() == '.' {
				s.advance()
				return token{kind: tPunct, pos: pos, text: "..."}
			}
			return token{kind: tPunct, pos: pos, text: ".."}
		}
		return token{kind: tPunct, pos: pos, text: "."}
	case r > 0xFF:
		s.advance()
		switch r {
		case 0xFEFF:
			return s.errTok(pos, true, tEOF, "illegal character: a byte order mark (U+FEFF); save the file as UTF-8 without BOM")
		case 0x2018, 0x2019, 0x201C, 0x201D:
			return s.errTok(pos, true, tEOF, "illegal character: a typographic quote; use ' or \"")
		}
		return s.errTok(pos, true, tEOF, "illegal character outside a string, quoted atom or comment")
	}
	return s.punct(pos)
}

func (s *scanner) name() string {
	start := s.off
	for isNameCh(s.peek()) {
		s.advance()
	}
	return string(s.src[start:s.off])
}

// Operators, longest first within each leading character, as erl_scan
// matches them, indexed by their first byte.
var operators = func() (ops [256][]string) {
	for _, op := range []string{
		"=:=", "=/=", "...", "<<", "<-", "<=", ">>", ">=", "->", "--", "++",
		"=<", "=>", "==", "/=", "||", ":=", "::", "?=",
	} {
		ops[op[0]] = append(ops[op[0]], op)
	}
	return ops
}()

// single holds the one-character punctuation tokens' texts, so that
// scanning them allocates nothing.
var single = func() (t [256]string) {
	for c := range t {
		t[c] = string(rune(c))
	}
	return t
}()

func (s *scanner) punct(pos Pos) token {
	rest := s.src[s.off:]
	for _, op := range operators[rest[0]] {
		if len(rest) >= len(op) && string(rest[:len(op)]) == op {
			for range op {
				s.advance()
			}
			return token{kind: tPunct, pos: pos, text: op}
		}
	}
	r := s.advance()
	return token{kind: tPunct, pos: pos, text: single[r]}
}

// quoted scans a string ("...") or a quoted atom ('...').
func (s *scanner) quoted(pos Pos, q rune) token {
	sub, what := tString, "string"
	if q == '\'' {
		sub, what = tAtom, "quoted atom"
	}
	s.advance()
	var b strings.Builder
	firstErr, errPos := "", Pos{}
	for {
		r := s.peek()
		switch {
		case r == -1:
			return s.errTok(pos, true, sub, "unterminated "+what+" (it starts here)")
		case r == q:
			s.advance()
			if firstErr != "" {
				return s.errTok(errPos, false, sub, firstErr)
			}
			v := b.String()
			if q == '\'' {
				if utf8.RuneCountInString(v) > maxAtomLen {
					return s.errTok(pos, false, sub, "atom is longer than 255 characters")
				}
				return token{kind: tAtom, pos: pos, text: v}
			}
			return token{kind: tString, pos: pos, text: v}
		case r == '\\':
			epos := s.pos()
			s.advance()
			c, msg := s.escape()
			if c == -1 {
				return s.errTok(pos, true, sub, "unterminated "+what+" (it starts here)")
			}
			if msg != "" && firstErr == "" {
				firstErr, errPos = msg, epos
			}
			b.WriteRune(c)
		case !isChar(r):
			if firstErr == "" {
				firstErr, errPos = "illegal character in a "+what, s.pos()
			}
			s.advance()
		default:
			s.advance()
			b.WriteRune(r)
		}
	}
}

// escape reads an escape sequence after its backslash. It returns -1 at
// the end of the input, and a message for a bad escape (after reading past
// it).
func (s *scanner) escape() (rune, string) {
	r := s.peek()
	switch {
	case r == -1:
		return -1, ""
	case r >= '0' && r <= '7':
		v := 0
		for i := 0; i < 3 && s.peek() >= '0' && s.peek() <= '7'; i++ {
			v = v*8 + int(s.advance()-'0')
		}
		return rune(v), ""
	case r == 'x':
		s.advance()
		if s.peek() == '{' {
			s.advance()
			v, n := 0, 0
			for digitVal(s.peek()) < 16 {
				if n < 8 {
					v = v*16 + digitVal(s.advance())
				} else {
					s.advance()
				}
				n++
			}
			if s.peek() != '}' {
				return 0, "bad escape: \\x{ must be followed by hex digits and }"
			}
			s.advance()
			if n == 0 || n > 8 || !isChar(rune(v)) {
				return 0, "bad escape: \\x{...} is not a Unicode character"
			}
			return rune(v), ""
		}
		if digitVal(s.peek()) < 16 && digitVal(s.peekAt(1)) < 16 {
			v := digitVal(s.advance()) * 16
			v += digitVal(s.advance())
			return rune(v), ""
		}
		return 0, "bad escape: \\x must be followed by two hex digits or by {hex digits}"
	case r == '^':
		s.advance()
		c := s.peek()
		if c >= '@' && c <= '_' || c >= 'a' && c <= 'z' {
			s.advance()
			return c & 31, ""
		}
		if c == -1 {
			return -1, ""
		}
		if isChar(c) {
			s.advance()
		}
		return 0, "bad escape: \\^ must be followed by a letter or one of @[\\]^_"
	}
	s.advance()
	if !isChar(r) {
		return 0, "illegal character after \\"
	}
	switch r {
	case 'n':
		return '\n', ""
	case 'r':
		return '\r', ""
	case 't':
		return '\t', ""
	case 'v':
		return '\v', ""
	case 'b':
		return '\b', ""
	case 'f':
		return '\f', ""
	case 'e':
		return 0x1B, ""
	case 's':
		return ' ', ""
	case 'd':
		return 0x7F, ""
	}
	return r, "" // \\, \", \' and any other character stand for themselves
}

// char scans a character literal: $a, $\n, $\x{1F600}.
func (s *scanner) char(pos Pos) token {
	s.advance() // $
	r := s.peek()
	switch {
	case r == -1:
		return s.errTok(pos, true, tInt, "unterminated character literal: $ at the end of the file")
	case r == '\\':
		s.advance()
		c, msg := s.escape()
		if c == -1 {
			return s.errTok(pos, true, tInt, "unterminated character literal: $\\ at the end of the file")
		}
		if msg != "" {
			return s.errTok(pos, false, tInt, msg)
		}
		return token{kind: tInt, pos: pos, num: big.NewInt(int64(c))}
	case !isChar(r):
		s.advance()
		return s.errTok(pos, false, tInt, "illegal character in a character literal")
	}
	s.advance()
	return token{kind: tInt, pos: pos, num: big.NewInt(int64(r))}
}

// digits reads digits of the given base, with single underscores allowed
// between two digits (OTP 23 and later). It returns the digits without the
// underscores.
func (s *scanner) digits(base int) string {
	var b strings.Builder
	for {
		r := s.peek()
		if digitVal(r) < base {
			b.WriteRune(s.advance())
			continue
		}
		if r == '_' && b.Len() > 0 && digitVal(s.peekAt(1)) < base {
			s.advance()
			continue
		}
		return b.String()
	}
}

func (s *scanner) number(pos Pos) token {
	start := s.off
	ds := s.digits(10)
	switch {
	case s.peek() == '#':
		s.advance()
		base, err := strconv.Atoi(ds)
		if err != nil || base < 2 || base > 36 {
			for isNameCh(s.peek()) {
				s.advance()
			}
			return s.errTok(pos, false, tInt, "illegal base: it must be between 2 and 36")
		}
		ds = s.digits(base)
		if ds == "" {
			return s.errTok(pos, false, tInt, "illegal integer: no digits after the base and #")
		}
		if s.off-start > maxNumberLen {
			return s.errTok(pos, false, tInt, "integer literal is longer than 1000 characters")
		}
		n, _ := new(big.Int).SetString(ds, base)
		return token{kind: tInt, pos: pos, num: n}
	case s.peek() == '.' && isDigit(s.peekAt(1)):
		s.advance()
		text := ds + "." + s.digits(10)
		if r := s.peek(); r == 'e' || r == 'E' {
			s.advance()
			text += "e"
			if r := s.peek(); r == '+' || r == '-' {
				text += string(s.advance())
			}
			exp := s.digits(10)
			if exp == "" {
				return s.errTok(pos, false, tFloat, "illegal float: no digits in the exponent")
			}
			text += exp
		}
		if s.off-start > maxNumberLen {
			return s.errTok(pos, false, tFloat, "float literal is longer than 1000 characters")
		}
		f, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsInf(f, 0) {
			return s.errTok(pos, false, tFloat, "illegal float: out of range")
		}
		return token{kind: tFloat, pos: pos, flt: f}
	}
	if s.off-start > maxNumberLen {
		return s.errTok(pos, false, tInt, "integer literal is longer than 1000 characters")
	}
	n, _ := new(big.Int).SetString(ds, 10)
	return token{kind: tInt, pos: pos, num: n}
}
