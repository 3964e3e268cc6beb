package erlterm

import (
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Width is the line width Format aims for.
const Width = 80

// Format renders t as Erlang text that Parse (and erl) read back to a term
// Equal to t. A term that fits in Width columns is written on one line;
// a longer one is broken across lines, one element per line, indented in
// the style of a hand-written sys.config:
//
//	[{node, [{name, "tavern-dev@127.0.0.1"},
//	         {cookie, "change-me"}]}]
//
// The text has no terminating '.'. Atoms are quoted when they need to be
// (and for the words 'maybe' and 'else', reserved in newer OTPs). Floats
// are written with the fewest digits that read back exactly, always with
// a '.' (1.0, 2.5e-7). Binaries are written as <<"text">> when every byte
// is printable ASCII, as <<"text"/utf8>> when they are printable UTF-8,
// and as <<1,2,3>> otherwise.
//
// Some Go values have no Erlang text and do not read back: a NaN or
// infinite Float, an Atom longer than 255 characters, a String that is not
// valid UTF-8 (bad bytes are written as U+FFFD), a List with a Tail but no
// elements (written as just the tail), and a List whose Tail is a List or
// String (written as [1 | [2]], which reads as [1, 2]).
func Format(t Term) string {
	return FormatAt(t, 0)
}

// FormatAt renders t like Format for text that starts at column col
// (0-based) of its line: it fits lines to Width from there, and indents
// continuation lines to align under it.
func FormatAt(t Term, col int) string {
	var b strings.Builder
	writeTerm(&b, t, col)
	return b.String()
}

// FormatFlat renders t like Format but always on one line.
func FormatFlat(t Term) string {
	var b strings.Builder
	w := flatWriter{b: &b, limit: -1}
	w.term(t)
	return b.String()
}

// hangLimit is the furthest column at which a value hangs after its key
// ({Key, Value} and Key => Value); past it the value starts a new line.
const hangLimit = Width / 2

// writeTerm writes t starting at column col (0-based), breaking it across
// lines if it does not fit.
func writeTerm(b *strings.Builder, t Term, col int) {
	if fits(t, Width-col) {
		(&flatWriter{b: b, limit: -1}).term(t)
		return
	}
	switch t := t.(type) {
	case Tuple:
		b.WriteByte('{')
		// {Key, Value}: a short key stays on the opening line and the
		// value hangs after it.
		if len(t.Elems) == 2 && isAtomic(t.Elems[0]) && fits(t.Elems[0], hangLimit) {
			first := FormatFlat(t.Elems[0])
			inner := col + 1 + utf8.RuneCountInString(first) + 2
			if inner <= hangLimit || fits(t.Elems[1], Width-inner-1) {
				b.WriteString(first)
				b.WriteString(", ")
				writeTerm(b, t.Elems[1], inner)
				b.WriteByte('}')
				return
			}
		}
		writeSeq(b, t.Elems, col+1)
		b.WriteByte('}')
	case List:
		if len(t.Elems) == 0 {
			if t.Tail == nil {
				b.WriteString("[]")
			} else {
				writeTerm(b, t.Tail, col)
			}
			return
		}
		b.WriteByte('[')
		writeSeq(b, t.Elems, col+1)
		if t.Tail != nil {
			b.WriteString(" |\n")
			indent(b, col+1)
			writeTerm(b, t.Tail, col+1)
		}
		b.WriteByte(']')
	case Map:
		b.WriteString("#{")
		for i, kv := range t.Pairs {
			if i > 0 {
				b.WriteString(",\n")
				indent(b, col+2)
			}
			if fits(kv.Key, hangLimit) {
				k := FormatFlat(kv.Key)
				b.WriteString(k)
				inner := col + 2 + utf8.RuneCountInString(k) + 4
				if inner <= hangLimit || fits(kv.Value, Width-inner-1) {
					b.WriteString(" => ")
					writeTerm(b, kv.Value, inner)
					continue
				}
			} else {
				writeTerm(b, kv.Key, col+2)
			}
			b.WriteString(" =>\n")
			indent(b, col+4)
			writeTerm(b, kv.Value, col+4)
		}
		b.WriteByte('}')
	default: // atoms, strings, numbers and binaries are never broken
		(&flatWriter{b: b, limit: -1}).term(t)
	}
}

// writeSeq writes the elements of a broken tuple or list, the first at
// the current position and each later one aligned at column col. Runs of
// atomic elements (atoms, numbers, strings) fill lines up to Width; every
// other element starts a line of its own.
func writeSeq(b *strings.Builder, elems []Term, col int) {
	cur := col      // the column after the last element, if it is atomic
	inline := false // whether the next atomic element may join the line
	for i, e := range elems {
		atomic := isAtomic(e)
		if i > 0 {
			b.WriteByte(',')
			var text string
			if atomic && inline {
				text = FormatFlat(e)
			}
			// +2 for ", " and +1 for the ',' or closer that follows.
			if text != "" && cur+2+utf8.RuneCountInString(text)+1 <= Width {
				b.WriteByte(' ')
				b.WriteString(text)
				cur += 2 + utf8.RuneCountInString(text)
				continue
			}
			b.WriteByte('\n')
			indent(b, col)
			cur = col
		}
		if atomic {
			text := FormatFlat(e)
			b.WriteString(text)
			cur += utf8.RuneCountInString(text)
			inline = true
		} else {
			writeTerm(b, e, col)
			inline = false
		}
	}
}

func isAtomic(t Term) bool {
	switch t.(type) {
	case Atom, Integer, Float, String, Binary:
		return true
	}
	return false
}

func indent(b *strings.Builder, n int) {
	for range n {
		b.WriteByte(' ')
	}
}

// fits reports whether t written flat takes at most width columns. It
// stops measuring once the width is exceeded, so that deciding how to lay
// out a big term costs no more than Width per nesting level.
func fits(t Term, width int) bool {
	var b strings.Builder
	w := flatWriter{b: &b, limit: width}
	w.term(t)
	return !w.over
}

// flatWriter writes a term on one line. With a limit >= 0 it stops
// writing, and sets over, once it has written more than limit runes.
type flatWriter struct {
	b     *strings.Builder
	limit int
	n     int
	over  bool
}

func (w *flatWriter) str(s string) {
	if w.over {
		return
	}
	w.b.WriteString(s)
	if w.limit >= 0 {
		w.n += utf8.RuneCountInString(s)
		if w.n > w.limit {
			w.over = true
		}
	}
}

// tooLong reports, in O(1), that a leaf of n bytes cannot fit in what is
// left of the limit: its text has at least n/4 runes.
func (w *flatWriter) tooLong(n int) bool {
	if w.limit >= 0 && n/4 > w.limit-w.n {
		w.over = true
	}
	return w.over
}

func (w *flatWriter) term(t Term) {
	if w.over {
		return
	}
	switch t := t.(type) {
	case String:
		if w.tooLong(len(t.Value)) {
			return
		}
	case Binary:
		if w.tooLong(len(t.Value) * 4) {
			return
		}
	case Atom:
		if w.tooLong(len(t.Name)) {
			return
		}
	case Integer:
		// A b-bit integer has more than b/4 decimal digits.
		if w.tooLong(t.big().BitLen()) {
			return
		}
	}
	switch t := t.(type) {
	case Atom:
		w.str(quoteAtom(t.Name))
	case String:
		w.str(quoteString(t.Value, '"'))
	case Integer:
		w.str(t.big().String())
	case Float:
		w.str(formatFloat(t.Value))
	case Binary:
		w.str(formatBinary(t.Value))
	case Tuple:
		w.str("{")
		for i, e := range t.Elems {
			if i > 0 {
				w.str(", ")
			}
			w.term(e)
		}
		w.str("}")
	case List:
		if len(t.Elems) == 0 && t.Tail != nil {
			w.term(t.Tail)
			return
		}
		w.str("[")
		for i, e := range t.Elems {
			if i > 0 {
				w.str(", ")
			}
			w.term(e)
		}
		if t.Tail != nil {
			w.str(" | ")
			w.term(t.Tail)
		}
		w.str("]")
	case Map:
		w.str("#{")
		for i, kv := range t.Pairs {
			if i > 0 {
				w.str(", ")
			}
			w.term(kv.Key)
			w.str(" => ")
			w.term(kv.Value)
		}
		w.str("}")
	case nil:
		w.str("'$nil'") // not a term Parse produces; something readable
	}
}

// AtomNeedsQuotes reports whether the atom name must be quoted to read
// back as that atom.
func AtomNeedsQuotes(name string) bool {
	if name == "" || reservedWords[name] || name == "maybe" || name == "else" {
		return true
	}
	for i, r := range name {
		if i == 0 && !isLower(r) || !isNameCh(r) {
			return true
		}
	}
	return false
}

func quoteAtom(name string) string {
	if AtomNeedsQuotes(name) {
		return quoteString(name, '\'')
	}
	return name
}

// quoteString writes s in quotes q with Erlang escapes for the quote, the
// backslash and every character that is not printable.
func quoteString(s string, q byte) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte(q)
	for _, r := range s {
		switch r {
		case rune(q), '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if unicode.IsPrint(r) {
				b.WriteRune(r)
			} else {
				b.WriteString(`\x{`)
				b.WriteString(strings.ToUpper(strconv.FormatInt(int64(r), 16)))
				b.WriteByte('}')
			}
		}
	}
	b.WriteByte(q)
	return b.String()
}

func formatBinary(v []byte) string {
	if len(v) == 0 {
		return "<<>>"
	}
	ascii := true
	for _, c := range v {
		if (c < ' ' || c > '~') && c != '\n' && c != '\t' && c != '\r' {
			ascii = false
			break
		}
	}
	if ascii {
		return "<<" + quoteString(string(v), '"') + ">>"
	}
	if utf8.Valid(v) {
		printable := true
		for _, r := range string(v) {
			if !unicode.IsPrint(r) && r != '\n' && r != '\t' && r != '\r' {
				printable = false
				break
			}
		}
		if printable {
			return "<<" + quoteString(string(v), '"') + "/utf8>>"
		}
	}
	var b strings.Builder
	b.WriteString("<<")
	for i, c := range v {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(c)))
	}
	b.WriteString(">>")
	return b.String()
}

// formatFloat writes f with the fewest digits that read back exactly,
// always with a '.' and a digit after it, as Erlang requires.
func formatFloat(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return strconv.FormatFloat(f, 'g', -1, 64) // no Erlang text; see Format
	}
	abs := math.Abs(f)
	if abs == 0 || abs >= 1e-4 && abs < 1e16 {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // 1e+21, 1.5e-07
	mant, exp, _ := strings.Cut(s, "e")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	sign := ""
	if exp[0] == '-' {
		sign = "-"
	}
	exp = strings.TrimLeft(exp[1:], "0")
	return mant + "e" + sign + exp
}
