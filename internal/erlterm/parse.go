package erlterm

import (
	"fmt"
	"math/big"
	"os"
	"unicode/utf8"
)

// Limits that keep hostile input from costing more than its size.
const (
	// MaxDepth is how deeply terms may nest (tuples, lists, maps,
	// binaries, parentheses and signs each count one level). The tail
	// of a list does not count: [1 | [2 | [3]]] is one level.
	MaxDepth = 1000
	// MaxErrors is how many errors Parse reports before it stops.
	MaxErrors = 50
)

// ParseFile reads the file at path and parses it with Parse. An error
// reading the file is returned as is (an *fs.PathError naming path).
func ParseFile(path string) ([]Term, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, src)
}

// Parse reads src, the contents of the file named filename, as
// file:consult/1 would: a sequence of terms, each ended by a '.' that is
// followed by white space, a '%' comment or the end of the file. An empty
// file (or one of only comments) gives no terms. The source must be UTF-8,
// the default of file:consult.
//
// On any error Parse returns nil and an ErrorList. It recovers so that one
// call reports several independent mistakes: after an error it skips to
// the end of the term (the next '.' terminator) and goes on, and a bad
// token that was itself well delimited (a bad escape inside a string, an
// out-of-range number, a variable or reserved word where a term belongs)
// is reported without giving up on the rest of its term. Messages never
// quote atoms, strings or numbers from the input, which may be secrets.
//
// Parse accepts a strict subset of what erl accepts; each term it accepts,
// erl reads to the same value. Parse rejects, where erl does not:
//   - binary segments with a size or a type other than /utf8 (<<1:16>>,
//     <<1.0/float>>), and segment values that erl silently truncates to a
//     byte (<<256>>, <<-1>>, <<"€">>; write <<"€"/utf8>>);
//   - the \^ escape followed by anything but a letter or @[\]^_ (OTP
//     versions disagree on those);
//   - nesting deeper than MaxDepth and numbers longer than 1000 characters;
//   - encodings other than UTF-8 (a "coding: latin-1" comment is ignored).
func Parse(filename string, src []byte) ([]Term, error) {
	p := &parser{file: filename, s: newScanner(src)}
	if !utf8.Valid(src) {
		p.errs.Add(filename, invalidUTF8Pos(src), "invalid UTF-8 (file:consult reads files as UTF-8)")
		return nil, p.errs
	}
	terms := p.parseFile()
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	return terms, nil
}

func invalidUTF8Pos(src []byte) Pos {
	pos := Pos{1, 1}
	for len(src) > 0 {
		r, size := utf8.DecodeRune(src)
		if r == utf8.RuneError && size <= 1 {
			return pos
		}
		src = src[size:]
		if r == '\n' {
			pos.Line++
			pos.Col = 1
		} else {
			pos.Col++
		}
	}
	return pos
}

type parser struct {
	file  string
	s     *scanner
	tok   token // the lookahead
	errs  ErrorList
	depth int
	// bad: the current top-level term has an error and will be dropped,
	// but its structure is still in step and parsing goes on. abort: the
	// structure is lost; every parse function returns at once and the
	// top level skips to the next '.'.
	bad, abort bool
	full       bool // MaxErrors reached
	signErr    bool // "only one sign" reported for the current signed term
}

func (p *parser) next() { p.tok = p.s.next() }

func (p *parser) errorAt(pos Pos, format string, args ...any) {
	if p.full {
		return
	}
	if len(p.errs) == MaxErrors {
		p.errs.Add(p.file, pos, "too many errors; giving up")
		p.full = true
		return
	}
	p.errs.Add(p.file, pos, format, args...)
}

// fail reports a local error: the term is dropped but parsing goes on.
func (p *parser) fail(pos Pos, format string, args ...any) {
	p.errorAt(pos, format, args...)
	p.bad = true
}

// syntax reports a structural error at the current token and aborts the
// term. A lexical error at that token is reported in its place.
func (p *parser) syntax(format string, args ...any) {
	if p.tok.kind == tError {
		p.errorAt(p.tok.pos, "%s", p.tok.err)
	} else {
		p.errorAt(p.tok.pos, format, args...)
	}
	p.bad, p.abort = true, true
}

func (p *parser) parseFile() []Term {
	var terms []Term
	p.next()
	for p.tok.kind != tEOF && !p.full {
		p.bad, p.abort, p.depth = false, false, 0
		if p.tok.kind == tDot {
			p.syntax("expected a term before '.'")
			p.next()
			continue
		}
		t := p.parseTerm(false)
		if !p.abort {
			switch p.tok.kind {
			case tDot:
			case tEOF:
				p.syntax("missing '.' at the end of the term (file:consult needs one after each term)")
			case tPunct:
				if p.tok.text == "." {
					p.syntax("a '.' ends a term only when white space, a comment or the end of the file follows it")
				} else {
					p.syntax("expected '.' after the term, found %s", describe(p.tok))
				}
			default:
				p.syntax("expected '.' after the term, found %s", describe(p.tok))
			}
		}
		// Skip to the end of the term. Lexical errors in the skipped
		// text are not reported: they are most likely the same mistake.
		for p.tok.kind != tDot && p.tok.kind != tEOF {
			p.next()
		}
		if p.tok.kind == tDot {
			p.next()
		}
		if !p.bad {
			terms = append(terms, t)
		}
	}
	return terms
}

// describe names a token for an error message without quoting the input.
func describe(t token) string {
	switch t.kind {
	case tEOF:
		return "the end of the file"
	case tDot:
		return "'.'"
	case tAtom:
		return "an atom"
	case tVar:
		return "a variable"
	case tReserved:
		return "a reserved word"
	case tString:
		return "a string"
	case tInt:
		return "an integer"
	case tFloat:
		return "a float"
	case tPunct:
		if t.text[0] >= utf8.RuneSelf {
			return "a stray character"
		}
		return "'" + t.text + "'"
	}
	return "a bad token"
}

func (p *parser) isPunct(text string) bool {
	return p.tok.kind == tPunct && p.tok.text == text
}

// parseTerm parses one term. inSign is set for the operand of a unary
// sign, where another sign is not allowed (erl reads - -1 as an
// expression, not a term). It returns nil when the term is bad.
func (p *parser) parseTerm(inSign bool) Term {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > MaxDepth {
		p.syntax("terms nest more than %d deep", MaxDepth)
		return nil
	}
	tok := p.tok
	switch tok.kind {
	case tAtom:
		p.next()
		return Atom{Name: tok.text, At: tok.pos}
	case tString:
		return p.parseStrings()
	case tInt:
		p.next()
		return Integer{Value: tok.num, At: tok.pos}
	case tFloat:
		p.next()
		return Float{Value: tok.flt, At: tok.pos}
	case tVar:
		p.next()
		p.fail(tok.pos, "a variable is not a term: names that start with an uppercase letter or _ are variables; quote an atom like that with '...'")
		return nil
	case tReserved:
		p.next()
		p.fail(tok.pos, "a reserved word is not an atom unless it is quoted: write it as '...'")
		return nil
	case tError:
		if tok.fatal {
			p.syntax("")
			return nil
		}
		if tok.sub == tString {
			return p.parseStrings()
		}
		p.next()
		p.fail(tok.pos, "%s", tok.err)
		return nil
	case tPunct:
		switch tok.text {
		case "{":
			return p.parseTuple()
		case "[":
			return p.parseList()
		case "#":
			return p.parseMap()
		case "<<":
			return p.parseBinary()
		case "(":
			p.next()
			t := p.parseTerm(inSign)
			if p.abort {
				return nil
			}
			if !p.isPunct(")") {
				p.syntax("expected ')' to close the '(' at %s, found %s", tok.pos, describe(p.tok))
				return nil
			}
			p.next()
			return t
		case "-", "+":
			return p.parseSigned(inSign)
		}
	}
	p.syntax("expected a term, found %s", describe(tok))
	return nil
}

// parseStrings reads adjacent string literals, which Erlang joins into one.
func (p *parser) parseStrings() Term {
	pos := p.tok.pos
	var b []byte
	ok := true
	for p.tok.kind == tString || p.tok.kind == tError && !p.tok.fatal && p.tok.sub == tString {
		if p.tok.kind == tError {
			p.fail(p.tok.pos, "%s", p.tok.err)
			ok = false
		} else {
			b = append(b, p.tok.text...)
		}
		p.next()
	}
	if !ok {
		return nil
	}
	return String{Value: string(b), At: pos}
}

func (p *parser) parseSigned(inSign bool) Term {
	sign := p.tok
	p.next()
	if !inSign {
		p.signErr = false
	} else if !p.signErr { // once for a chain like -(-(-(1)))
		p.fail(sign.pos, "only one sign may come before a number")
		p.signErr = true
	}
	t := p.parseTerm(true)
	if p.abort || t == nil {
		return nil
	}
	switch v := t.(type) {
	case Integer:
		if sign.text == "-" {
			return Integer{Value: new(big.Int).Neg(v.big()), At: sign.pos}
		}
		return Integer{Value: v.Value, At: sign.pos}
	case Float:
		if sign.text == "-" {
			return Float{Value: -v.Value, At: sign.pos}
		}
		return Float{Value: v.Value, At: sign.pos}
	}
	p.fail(sign.pos, "a sign ('%s') may only come before a number", sign.text)
	return nil
}

func (p *parser) parseTuple() Term {
	open := p.tok
	p.next()
	var elems []Term
	if p.isPunct("}") {
		p.next()
		return Tuple{At: open.pos}
	}
	for {
		e := p.parseTerm(false)
		if p.abort {
			return nil
		}
		elems = append(elems, e)
		switch {
		case p.isPunct(","):
			p.next()
		case p.isPunct("}"):
			p.next()
			return Tuple{Elems: elems, At: open.pos}
		default:
			p.syntax("expected ',' or '}' in the tuple opened at %s, found %s", open.pos, describe(p.tok))
			return nil
		}
	}
}

// parseList reads a list. A tail that is itself written as a list
// ([1 | [2 | [3]]]) is read in the same loop, so such chains cost no
// depth and no copying.
func (p *parser) parseList() Term {
	open := p.tok
	p.next()
	var elems []Term
	var tail Term
	closers := 1 // ']' still to read
	if p.isPunct("]") {
		p.next()
		return List{At: open.pos}
	}
elements:
	for {
		e := p.parseTerm(false)
		if p.abort {
			return nil
		}
		elems = append(elems, e)
		switch {
		case p.isPunct(","):
			p.next()
		case p.isPunct("]"):
			break elements
		case p.isPunct("|"):
			p.next()
			if p.isPunct("[") {
				p.next()
				closers++
				if p.isPunct("]") { // [... | []]
					p.next()
					closers--
					break elements
				}
				continue
			}
			t := p.parseTerm(false)
			if p.abort {
				return nil
			}
			switch t := t.(type) {
			case List: // [1 | ([2])]
				elems = append(elems, t.Elems...)
				tail = t.Tail
			case String: // [1 | "ab"] is [1, $a, $b]
				for _, r := range t.Value {
					elems = append(elems, Integer{Value: big.NewInt(int64(r)), At: t.At})
				}
			default:
				tail = t
			}
			break elements
		default:
			p.syntax("expected ',', '|' or ']' in the list opened at %s, found %s", open.pos, describe(p.tok))
			return nil
		}
	}
	for ; closers > 0; closers-- {
		if !p.isPunct("]") {
			p.syntax("expected ']' to close the list opened at %s, found %s", open.pos, describe(p.tok))
			return nil
		}
		p.next()
	}
	return List{Elems: elems, Tail: tail, At: open.pos}
}

func (p *parser) parseMap() Term {
	open := p.tok
	p.next()
	if !p.isPunct("{") {
		p.syntax("expected '{' after '#' (records are not terms), found %s", describe(p.tok))
		return nil
	}
	p.next()
	var pairs []MapPair
	if p.isPunct("}") {
		p.next()
		return Map{At: open.pos}
	}
	for {
		k := p.parseTerm(false)
		if p.abort {
			return nil
		}
		switch {
		case p.isPunct("=>"):
		case p.isPunct(":="):
			p.fail(p.tok.pos, "':=' updates a map and is not allowed in a literal; use '=>'")
		default:
			p.syntax("expected '=>' after the key in the map opened at %s, found %s", open.pos, describe(p.tok))
			return nil
		}
		p.next()
		v := p.parseTerm(false)
		if p.abort {
			return nil
		}
		pairs = append(pairs, MapPair{Key: k, Value: v})
		switch {
		case p.isPunct(","):
			p.next()
		case p.isPunct("}"):
			p.next()
			return Map{Pairs: pairs, At: open.pos}
		default:
			p.syntax("expected ',' or '}' in the map opened at %s, found %s", open.pos, describe(p.tok))
			return nil
		}
	}
}

func (p *parser) parseBinary() Term {
	open := p.tok
	p.next()
	value := []byte{}
	if p.isPunct(">>") {
		p.next()
		return Binary{Value: value, At: open.pos}
	}
	for {
		segPos := p.tok.pos
		v := p.parseTerm(false)
		if p.abort {
			return nil
		}
		supported := true // no size, no type but utf8
		if p.isPunct(":") {
			p.fail(p.tok.pos, "binary segment sizes are not supported")
			supported = false
			p.next()
			p.parseTerm(false)
			if p.abort {
				return nil
			}
		}
		utf8Type := false
		if p.isPunct("/") {
			p.next()
			utf8Type = p.parseBinaryType()
			if p.abort {
				return nil
			}
			supported = supported && utf8Type
		}
		if v != nil && supported {
			if b, good := p.segmentBytes(segPos, v, utf8Type); good {
				value = append(value, b...)
			}
		}
		switch {
		case p.isPunct(","):
			p.next()
		case p.isPunct(">>"):
			p.next()
			if p.bad { // an error in a segment; the term is dropped anyway
				return nil
			}
			return Binary{Value: value, At: open.pos}
		default:
			p.syntax("expected ',' or '>>' in the binary opened at %s, found %s", open.pos, describe(p.tok))
			return nil
		}
	}
}

// parseBinaryType reads a type list after '/' (utf8, big-unsigned,
// unit:8) and reports whether it is exactly utf8, the one supported.
func (p *parser) parseBinaryType() bool {
	pos := p.tok.pos
	n, isUTF8 := 0, false
	for {
		if p.tok.kind != tAtom {
			p.syntax("expected a type after '/' in the binary, found %s", describe(p.tok))
			return false
		}
		isUTF8 = p.tok.text == "utf8"
		n++
		p.next()
		if p.isPunct(":") {
			p.next()
			if p.tok.kind != tInt {
				p.syntax("expected an integer after ':' in the binary type, found %s", describe(p.tok))
				return false
			}
			isUTF8 = false
			p.next()
		}
		if !p.isPunct("-") {
			break
		}
		p.next()
	}
	if n != 1 || !isUTF8 {
		p.fail(pos, "binary segment types other than /utf8 are not supported")
		return false
	}
	return true
}

func (p *parser) segmentBytes(pos Pos, v Term, isUTF8 bool) ([]byte, bool) {
	switch v := v.(type) {
	case Integer:
		n, ok := v.Int64()
		switch {
		case isUTF8 && ok && n >= 0 && n <= utf8.MaxRune && !(n >= 0xD800 && n <= 0xDFFF):
			return utf8.AppendRune(nil, rune(n)), true
		case isUTF8:
			p.fail(pos, "binary segment is not a Unicode code point")
			return nil, false
		case ok && n >= 0 && n <= 255:
			return []byte{byte(n)}, true
		}
		p.fail(pos, "binary segment does not fit in a byte (0..255); erl would truncate it")
		return nil, false
	case String:
		if isUTF8 {
			return []byte(v.Value), true
		}
		b := make([]byte, 0, len(v.Value))
		for _, r := range v.Value {
			if r > 255 {
				p.fail(pos, "binary string has a character above 255, which erl would truncate; write <<\"...\"/utf8>>")
				return nil, false
			}
			b = append(b, byte(r))
		}
		return b, true
	}
	p.fail(pos, "binary segment must be an integer or a string, not %s", kindOf(v))
	return nil, false
}

// kindOf names the kind of a term, for messages that must not show it.
func kindOf(t Term) string {
	switch t := t.(type) {
	case Atom:
		return "an atom"
	case String:
		return "a string"
	case Binary:
		return "a binary"
	case Integer:
		return "an integer"
	case Float:
		return "a float"
	case Tuple:
		return fmt.Sprintf("a tuple of %d", len(t.Elems))
	case List:
		if t.Tail != nil {
			return "an improper list"
		}
		return "a list"
	case Map:
		return "a map"
	}
	return "nothing"
}
