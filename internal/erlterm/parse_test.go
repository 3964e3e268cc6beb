package erlterm_test

import (
	"errors"
	"io/fs"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tavernhq/tavern/internal/erlterm"
)

type T = erlterm.Term

func a(name string) T { return erlterm.Atom{Name: name} }
func s(v string) T    { return erlterm.String{Value: v} }
func i(v int64) T     { return erlterm.NewInt(v) }
func f(v float64) T   { return erlterm.Float{Value: v} }
func tup(es ...T) T   { return erlterm.Tuple{Elems: es} }
func lst(es ...T) T   { return erlterm.List{Elems: es} }
func bin(b ...byte) T { return erlterm.Binary{Value: b} }
func bins(v string) T { return erlterm.Binary{Value: []byte(v)} }
func imp(tail T, es ...T) T {
	return erlterm.List{Elems: es, Tail: tail}
}

func big10(v string) T {
	n, ok := new(big.Int).SetString(v, 10)
	if !ok {
		panic(v)
	}
	return erlterm.Integer{Value: n}
}

func mp(kvs ...T) T {
	var m erlterm.Map
	for k := 0; k < len(kvs); k += 2 {
		m.Pairs = append(m.Pairs, erlterm.MapPair{Key: kvs[k], Value: kvs[k+1]})
	}
	return m
}

func chars(v string) []T {
	var ts []T
	for _, r := range v {
		ts = append(ts, i(int64(r)))
	}
	return ts
}

type parseCase struct {
	name string
	src  string
	want []T
}

// parseCases are inputs Parse accepts. TestErlAgreesOnTableCases checks
// that erl reads each to the same terms.
var parseCases = []parseCase{
	// files without terms
	{"empty file", "", nil},
	{"only white space", " \n\t\r\n", nil},
	{"only comments", "% one\n%% two\n%%% three", nil},
	{"NUL and NBSP are white space", "\x00a.\u00a0b.\u0085", []T{a("a"), a("b")}},

	// the full stop
	{"dot at end of file", "a.", []T{a("a")}},
	{"dot then comment", "a.% c\nb.%", []T{a("a"), a("b")}},
	{"dot then tab", "a.\tb.", []T{a("a"), a("b")}},
	{"CRLF line ends", "a.\r\nb.\r\n", []T{a("a"), a("b")}},
	{"integer then dot", "1.\n", []T{i(1)}},
	{"several terms", "a. {b}. [c].", []T{a("a"), tup(a("b")), lst(a("c"))}},

	// atoms
	{"bare atom", "foo.", []T{a("foo")}},
	{"atom with @ and digits", "foo_bar@x1.", []T{a("foo_bar@x1")}},
	{"node-like atom", "'tavern@127.0.0.1'.", []T{a("tavern@127.0.0.1")}},
	{"quoted atom", "'hello world'.", []T{a("hello world")}},
	{"quoted atom escapes", `'it\'s\\a\n'.`, []T{a("it's\\a\n")}},
	{"empty atom", "''.", []T{a("")}},
	{"quoted reserved word", "'end'.", []T{a("end")}},
	{"quoted uppercase", "'Foo'.", []T{a("Foo")}},
	{"Latin-1 letters in bare atom", "café. ætt. ßÿ.", []T{a("café"), a("ætt"), a("ßÿ")}},
	{"unicode quoted atom", "'☃ snow'.", []T{a("☃ snow")}},
	{"maybe and else are atoms in OTP 25", "maybe. else.", []T{a("maybe"), a("else")}},
	{"atom of 255 characters", strings.Repeat("a", 255) + ".", []T{a(strings.Repeat("a", 255))}},
	{"quoted atom of 255 characters", "'" + strings.Repeat("é", 255) + "'.", []T{a(strings.Repeat("é", 255))}},

	// strings
	{"empty string", `"".`, []T{s("")}},
	{"string", `"abc".`, []T{s("abc")}},
	{"named escapes", `"\b\d\e\f\n\r\s\t\v\\\"\'".`, []T{s("\b\x7f\x1b\f\n\r \t\v\\\"'")}},
	{"octal escapes", `"\0\12\101\1234".`, []T{s("\x00\nAS4")}},
	{"octal escape above 255", `"\777".`, []T{s("\u01ff")}},
	{"hex escapes", `"\x41\x{42}\x{1F600}\xff\x{0}".`, []T{s("AB\U0001F600\u00ff\x00")}},
	{"caret escapes", `"\^a\^Z\^@\^[\^_".`, []T{s("\x01\x1a\x00\x1b\x1f")}},
	{"unknown escape is the character", `"\q\z\(".`, []T{s("qz(")}},
	{"escaped newline", "\"a\\\nb\".", []T{s("a\nb")}},
	{"raw newline", "\"a\nb\".", []T{s("a\nb")}},
	{"raw control characters", "\"a\x00\x01b\".", []T{s("a\x00\x01b")}},
	{"unicode", `"snow ☃ café 😀".`, []T{s("snow ☃ café 😀")}},
	{"adjacent strings join", `"ab" "cd"` + "\n % c\n" + `"ef".`, []T{s("abcdef")}},
	{"percent in string", `"100%".`, []T{s("100%")}},

	// integers
	{"zero", "0.", []T{i(0)}},
	{"integer", "42.", []T{i(42)}},
	{"negative", "-7.", []T{i(-7)}},
	{"plus", "+3.", []T{i(3)}},
	{"sign then space", "- 5.", []T{i(-5)}},
	{"sign then comment", "-% c\n5.", []T{i(-5)}},
	{"sign then parens", "-((5)).", []T{i(-5)}},
	{"hex", "16#FF. 16#ff. -16#Ff.", []T{i(255), i(255), i(-255)}},
	{"binary", "2#1010.", []T{i(10)}},
	{"base 36", "36#Zz.", []T{i(35*36 + 35)}},
	{"base with leading zeros", "016#F.", []T{i(15)}},
	{"separators", "1_000_000. 16#DEAD_BEEF. 1_6#F.", []T{i(1000000), i(0xDEADBEEF), i(15)}},
	{"big", "123456789012345678901234567890.", []T{big10("123456789012345678901234567890")}},
	{"big negative", "-99999999999999999999.", []T{big10("-99999999999999999999")}},

	// character literals
	{"char", "$a.", []T{i('a')}},
	{"char escape", `$\n. $\s. $\101. $\x{1F600}. $\^G. $\\.`, []T{i('\n'), i(' '), i('A'), i(0x1F600), i(7), i('\\')}},
	{"char space", "$ .", []T{i(' ')}},
	{"char newline", "$\n.", []T{i('\n')}},
	{"char punctuation", "$$. $%. $'. $\". $..", []T{i('$'), i('%'), i('\''), i('"'), i('.')}},
	{"char Latin-1 and beyond", "$é. $☃.", []T{i(0xE9), i(0x2603)}},
	{"negative char", "-$a.", []T{i(-97)}},

	// floats
	{"float", "1.5.", []T{f(1.5)}},
	{"float exponent", "-2.0e3. 2.5E+2. 1.0e-10.", []T{f(-2000), f(250), f(1e-10)}},
	{"float separators", "1_000.000_1. 0.5e-1_0.", []T{f(1000.0001), f(0.5e-10)}},
	{"float extremes", "5.0e-324. 1.7976931348623157e308.", []T{f(5e-324), f(math.MaxFloat64)}},
	{"float underflows to zero", "1.0e-400.", []T{f(0)}},
	{"negative zero", "-0.0.", []T{f(math.Copysign(0, -1))}},
	{"plus float", "+1.5.", []T{f(1.5)}},

	// tuples
	{"empty tuple", "{}.", []T{tup()}},
	{"tuple", "{a, 1, \"s\"}.", []T{tup(a("a"), i(1), s("s"))}},
	{"nested tuples", "{a,{b,{}}}.", []T{tup(a("a"), tup(a("b"), tup()))}},

	// lists
	{"empty list", "[].", []T{lst()}},
	{"list", "[a, b].", []T{lst(a("a"), a("b"))}},
	{"improper list", "[a | b].", []T{imp(a("b"), a("a"))}},
	{"improper list of two", "[1, 2 | 3].", []T{imp(i(3), i(1), i(2))}},
	{"tail list joins", "[1 | [2 | [3]]].", []T{lst(i(1), i(2), i(3))}},
	{"tail list with tail", "[1 | [2 | x]].", []T{imp(a("x"), i(1), i(2))}},
	{"empty tail", "[1 | []].", []T{lst(i(1))}},
	{"tail list of empty list", "[1 | [[]]].", []T{lst(i(1), lst())}},
	{"string tail", `[$a | "bc"].`, []T{lst(chars("abc")...)}},
	{"empty string tail", `[x | ""].`, []T{lst(a("x"))}},
	{"parenthesised tail", "[1 | ([2])].", []T{lst(i(1), i(2))}},
	{"tuple tail", "[1 | {}].", []T{imp(tup(), i(1))}},
	{"list head", "[[a] | b].", []T{imp(a("b"), lst(a("a")))}},

	// maps
	{"empty map", "#{}.", []T{mp()}},
	{"map", "#{a => 1, \"b\" => [2]}.", []T{mp(a("a"), i(1), s("b"), lst(i(2)))}},
	{"map with space after #", "# {a => 1}.", []T{mp(a("a"), i(1))}},
	{"map keeps repeated keys", "#{a => 1, a => 2}.", []T{mp(a("a"), i(1), a("a"), i(2))}},
	{"map of compound keys", "#{#{} => [], {k} => #{x => y}}.", []T{mp(mp(), lst(), tup(a("k")), mp(a("x"), a("y")))}},

	// binaries
	{"empty binary", "<<>>. << >>. <<\"\">>.", []T{bin(), bin(), bin()}},
	{"text binary", `<<"abc">>.`, []T{bins("abc")}},
	{"byte binary", "<<1, 2, 255, 0>>.", []T{bin(1, 2, 255, 0)}},
	{"mixed segments", `<<$a, "bc", 10>>.`, []T{bins("abc\n")}},
	{"Latin-1 string segment", `<<"é\x{ff}">>.`, []T{bin(0xE9, 0xFF)}},
	{"utf8 string segment", `<<"é€"/utf8>>.`, []T{bins("é€")}},
	{"utf8 integer segment", "<<8364/utf8, $a/utf8>>.", []T{bins("€a")}},
	{"joined string segment", `<<"a" "b">>.`, []T{bins("ab")}},
	{"parenthesised segment", "<<(1), +2>>.", []T{bin(1, 2)}},

	// parentheses
	{"parentheses", "(a). ((({a}))).", []T{a("a"), tup(a("a"))}},
	{"parenthesised negative", "(-1). -(1).", []T{i(-1), i(-1)}},
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := erlterm.Parse("t.config", []byte(tc.src))
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.src, err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("Parse(%q) = %d terms %v, want %d %v", tc.src, len(got), got, len(tc.want), tc.want)
			}
			for k := range got {
				if !erlterm.Equal(got[k], tc.want[k]) {
					t.Errorf("Parse(%q) term %d = %s, want %s", tc.src, k, erlterm.Format(got[k]), erlterm.Format(tc.want[k]))
				}
			}
		})
	}
}

type errorCase struct {
	name string
	src  string
	errs []string // each the start of one error's text, after "t.config:"
	// stricter marks inputs that erl accepts and Parse deliberately
	// rejects (see Parse); the erl test checks that erl accepts them.
	stricter bool
}

var errorCases = []errorCase{
	// tokens that are not terms
	{"variable", "Foo.", []string{"1:1: a variable is not a term"}, false},
	{"underscore", "[_].", []string{"1:2: a variable is not a term"}, false},
	{"reserved word", "end.", []string{"1:1: a reserved word is not an atom"}, false},
	{"reserved word in list", "[a, of].", []string{"1:5: a reserved word"}, false},
	{"records", "#rec{a = 1}.", []string{"1:2: expected '{' after '#' (records are not terms), found an atom"}, false},
	{"map update", "#{a := 1}.", []string{"1:5: ':=' updates a map"}, false},
	{"map without arrow", "#{a, 1}.", []string{"1:4: expected '=>' after the key"}, false},
	{"operator", "1 + 2.", []string{"1:3: expected '.' after the term, found '+'"}, false},
	{"list append", `"a" ++ "b".`, []string{"1:5: expected '.' after the term, found '++'"}, false},
	{"remote", "a:b.", []string{"1:2: expected '.' after the term, found ':'"}, false},
	{"fun", "fun() -> ok end.", []string{"1:1: a reserved word", "1:4: expected '.' after the term, found '('"}, false},
	{"adjacent atoms", "'a' 'b'.", []string{"1:5: expected '.' after the term, found an atom"}, false},

	// signs
	{"double sign", "- -1.", []string{"1:3: only one sign may come before a number"}, false},
	{"sign of negative in parens", "-(-1).", []string{"1:3: only one sign"}, false},
	{"sign of atom", "-a.", []string{"1:1: a sign ('-') may only come before a number"}, false},
	{"sign of string", `+"a".`, []string{"1:1: a sign ('+') may only come before a number"}, false},
	{"sign of list", "[-[]].", []string{"1:2: a sign ('-')"}, false},

	// numbers
	{"dot after integer", "1.e5.", []string{"1:2: a '.' ends a term only when"}, false},
	{"no exponent digits", "1.5e.", []string{"1:1: illegal float: no digits in the exponent"}, false},
	{"no exponent digits after sign", "[1.5e+].", []string{"1:2: illegal float"}, false},
	{"float overflow", "1.0e999.", []string{"1:1: illegal float: out of range"}, false},
	{"float just over max", "1.7976931348623159e308.", []string{"1:1: illegal float: out of range"}, false},
	{"base without digits", "16#.", []string{"1:1: illegal integer: no digits after the base"}, false},
	{"base 1", "1#0.", []string{"1:1: illegal base"}, false},
	{"base 37", "37#1.", []string{"1:1: illegal base"}, false},
	{"digit outside base", "2#102.", []string{"1:5: expected '.' after the term, found an integer"}, false},
	{"letter after hex", "16#FFG.", []string{"1:6: expected '.' after the term, found a variable"}, false},
	{"trailing underscore", "1_.", []string{"1:2: expected '.' after the term, found a variable"}, false},
	{"char at end of file", "$", []string{"1:1: unterminated character literal"}, false},
	{"long integer", strings.Repeat("9", 1001) + ".", []string{"1:1: integer literal is longer than 1000"}, true},

	// strings, atoms and escapes
	{"surrogate escape", `"a\x{D800}".`, []string{"1:3: bad escape: \\x{...} is not a Unicode character"}, false},
	{"escape above Unicode", `"\x{110000}".`, []string{"1:2: bad escape"}, false},
	{"noncharacter escape", `'\x{FFFE}'.`, []string{"1:2: bad escape"}, false},
	{"empty hex escape", `"\x{}".`, []string{"1:2: bad escape"}, false},
	{"short hex escape", `"\x4".`, []string{"1:2: bad escape: \\x must be followed by two hex digits"}, false},
	{"unclosed hex escape", `"\x{41".`, []string{"1:2: bad escape"}, false},
	{"caret digit", `"\^1".`, []string{"1:2: bad escape: \\^"}, true},
	{"caret question mark", `$\^?.`, []string{"1:1: bad escape: \\^"}, true},
	{"unterminated string", `["abc, d].`, []string{"1:2: unterminated string (it starts here)"}, false},
	{"unterminated atom", "['abc, d].", []string{"1:2: unterminated quoted atom"}, false},
	{"unterminated escape", `"abc\`, []string{"1:1: unterminated string"}, false},
	{"atom too long", strings.Repeat("a", 256) + ".", []string{"1:1: atom is longer than 255 characters"}, false},
	{"quoted atom too long", "'" + strings.Repeat("é", 256) + "'.", []string{"1:1: atom is longer than 255 characters"}, false},
	{"several escape errors report the first", `"\x{D800}\x{D801}".`, []string{"1:2: bad escape"}, false},
	{"bad string among joined strings", `"a" "\x4" "b".`, []string{"1:6: bad escape"}, false},

	// characters
	{"byte order mark", "\ufeff[a].", []string{"1:1: illegal character: a byte order mark"}, false},
	{"typographic quotes", "{name, “x”}.", []string{"1:8: illegal character: a typographic quote"}, false},
	{"character above Latin-1", "[a, ☃].", []string{"1:5: illegal character outside a string"}, false},
	{"Latin-1 punctuation", "[a, ¿].", []string{"1:5: expected a term, found a stray character"}, false},
	{"invalid UTF-8", "[a].\n[\xff].", []string{"2:2: invalid UTF-8"}, false},
	{"noncharacter in string", "\"a\uFFFEb\".", []string{"1:3: illegal character in a string"}, false},

	// binaries
	{"byte too big", "<<256>>.", []string{"1:3: binary segment does not fit in a byte"}, true},
	{"negative byte", "<<1, -1>>.", []string{"1:6: binary segment does not fit in a byte"}, true},
	{"string above Latin-1", `<<"€">>.`, []string{"1:3: binary string has a character above 255"}, true},
	{"segment size", "<<1:16>>.", []string{"1:4: binary segment sizes are not supported"}, true},
	{"segment type", "<<1/integer>>.", []string{"1:5: binary segment types other than /utf8"}, true},
	{"segment type list", "<<1/big-unsigned>>.", []string{"1:5: binary segment types other than /utf8"}, true},
	{"segment unit without size", "<<1/integer-unit:8>>.", []string{"1:5: binary segment types other than /utf8"}, false},
	{"float segment", "<<1.5>>.", []string{"1:3: binary segment must be an integer or a string, not a float"}, false},
	{"binary type on string", `<<"a"/binary>>.`, []string{"1:7: binary segment types other than /utf8"}, false},
	{"unsupported segment reported once", `<<"€"/binary, "€":8>>.`, []string{"1:7: binary segment types other than /utf8", "1:18: binary segment sizes are not supported"}, false},
	{"atom segment", "<<a>>.", []string{"1:3: binary segment must be an integer or a string, not an atom"}, false},
	{"list segment", "<<[1]>>.", []string{"1:3: binary segment must be an integer or a string, not a list"}, false},
	{"binary segment", `<<<<"a">>>>.`, []string{"1:3: binary segment must be an integer or a string, not a binary"}, false},
	{"surrogate utf8", "<<16#D800/utf8>>.", []string{"1:3: binary segment is not a Unicode code point"}, false},
	{"unclosed binary", "<<1, 2.", []string{"1:7: expected ',' or '>>' in the binary opened at 1:1, found '.'"}, false},

	// structure
	{"missing dot at end of file", "[a]", []string{"1:4: missing '.' at the end of the term"}, false},
	{"missing dot between terms", "[a]\n[b].", []string{"2:1: expected '.' after the term, found '['"}, false},
	{"empty term", "a. .", []string{"1:4: expected a term before '.'"}, false},
	{"lone dot", ".", []string{"1:1: expected a term before '.'"}, false},
	{"dot not followed by space", "a.b.", []string{"1:2: a '.' ends a term only when"}, false},
	{"terms not separated", "{a,b}.{c}.", []string{"1:6: a '.' ends a term only when"}, false},
	{"list without comma", "[a b].", []string{"1:4: expected ',', '|' or ']' in the list opened at 1:1, found an atom"}, false},
	{"two tails", "[a | b | c].", []string{"1:8: expected ']' to close the list opened at 1:1, found '|'"}, false},
	{"element after tail", "[a | b, c].", []string{"1:7: expected ']'"}, false},
	{"element after tail list", "[1 | [2], 3].", []string{"1:9: expected ']'"}, false},
	{"tail without head", "[| a].", []string{"1:2: expected a term, found '|'"}, false},
	{"trailing comma in tuple", "{a,}.", []string{"1:4: expected a term, found '}'"}, false},
	{"trailing comma in list", "[a,].", []string{"1:4: expected a term, found ']'"}, false},
	{"mismatched bracket", "[{a, 1]].", []string{"1:7: expected ',' or '}' in the tuple opened at 1:2, found ']'"}, false},
	{"comma in parens", "(a, b).", []string{"1:3: expected ')' to close the '(' at 1:1, found ','"}, false},
	{"empty parens", "().", []string{"1:2: expected a term, found ')'"}, false},
	{"unclosed list at end of file", "[{a, 1}", []string{"1:8: expected ',', '|' or ']' in the list opened at 1:1, found the end of the file"}, false},

	// recovery: several errors at once, and no cascades
	{"errors in separate terms", "[A].\n[b].\n[end].\n{c d}.\n[ok].",
		[]string{"1:2: a variable", "3:2: a reserved word", "4:4: expected ',' or '}'"}, false},
	{"local errors in one term", `[Foo, "\x4", <<256>>, 'end', 1.5e, {ok}, when].`,
		[]string{"1:2: a variable", "1:8: bad escape", "1:16: binary segment does not fit", "1:30: illegal float", "1:42: a reserved word"}, false},
	{"structural error stops the term", "[{a b}, Foo].\n[Bar].",
		[]string{"1:5: expected ',' or '}'", "2:2: a variable"}, false},
	{"illegal character stops the term", "[“a”, “b”, Foo].\n[ok].",
		[]string{"1:2: illegal character: a typographic quote"}, false},
	{"unterminated string swallows the rest", "[a, \"b].\n[Foo].\n",
		[]string{"1:5: unterminated string"}, false},
}

func TestParseErrors(t *testing.T) {
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, tc.src, tc.errs)
		})
	}
}

func checkErrors(t *testing.T, src string, want []string) {
	t.Helper()
	terms, err := erlterm.Parse("t.config", []byte(src))
	if err == nil {
		t.Fatalf("Parse(%q) = %v, want errors %q", src, terms, want)
	}
	if terms != nil {
		t.Errorf("Parse(%q) returned terms %v with its error", src, terms)
	}
	var list erlterm.ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("Parse(%q) error %T is not an ErrorList", src, err)
	}
	var got []string
	for _, e := range list {
		got = append(got, e.Error())
	}
	if len(got) != len(want) {
		t.Fatalf("Parse(%q) errors:\n  %s\nwant %d errors:\n  %s", src, strings.Join(got, "\n  "), len(want), strings.Join(want, "\n  "))
	}
	for k := range want {
		if !strings.HasPrefix(got[k], "t.config:"+want[k]) {
			t.Errorf("Parse(%q) error %d = %q, want it to start with %q", src, k, got[k], "t.config:"+want[k])
		}
	}
}

func TestPositions(t *testing.T) {
	src := "% header\n{é, \"ü\", [x | y],\n\t#{k => <<\"b\">>}, -(1), (2.5)}.\n  'q'."
	terms, err := erlterm.Parse("t.config", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	tuple := terms[0].(erlterm.Tuple)
	list := tuple.Elems[2].(erlterm.List)
	m := tuple.Elems[3].(erlterm.Map)
	for _, c := range []struct {
		what string
		got  erlterm.Pos
		want erlterm.Pos
	}{
		{"tuple", tuple.Pos(), erlterm.Pos{Line: 2, Col: 1}},
		{"atom é", tuple.Elems[0].Pos(), erlterm.Pos{Line: 2, Col: 2}},
		{"string after é (columns count runes)", tuple.Elems[1].Pos(), erlterm.Pos{Line: 2, Col: 5}},
		{"list", list.Pos(), erlterm.Pos{Line: 2, Col: 10}},
		{"list element", list.Elems[0].Pos(), erlterm.Pos{Line: 2, Col: 11}},
		{"list tail", list.Tail.Pos(), erlterm.Pos{Line: 2, Col: 15}},
		{"map after a tab", m.Pos(), erlterm.Pos{Line: 3, Col: 2}},
		{"map key", m.Pairs[0].Key.Pos(), erlterm.Pos{Line: 3, Col: 4}},
		{"map value", m.Pairs[0].Value.Pos(), erlterm.Pos{Line: 3, Col: 9}},
		{"signed number is at its sign", tuple.Elems[4].Pos(), erlterm.Pos{Line: 3, Col: 19}},
		{"parenthesised term is at the term", tuple.Elems[5].Pos(), erlterm.Pos{Line: 3, Col: 26}},
		{"second term", terms[1].Pos(), erlterm.Pos{Line: 4, Col: 3}},
	} {
		if c.got != c.want {
			t.Errorf("%s at %v, want %v", c.what, c.got, c.want)
		}
	}
}

func TestNestingLimit(t *testing.T) {
	d := erlterm.MaxDepth
	ok := strings.Repeat("[", d) + strings.Repeat("]", d) + "."
	if _, err := erlterm.Parse("t.config", []byte(ok)); err != nil {
		t.Errorf("%d nested lists: %v", d, err)
	}
	for _, open := range []string{"[", "{", "#{a => ", "(", "<<(", "-(", "[a | {"} {
		src := strings.Repeat(open, 100_000) + ".\n[ok]. [Foo]."
		want := []string{"1:", "2:8: a variable"}
		if open == "-(" {
			want = append([]string{"1:3: only one sign"}, want...)
		}
		checkErrors(t, src, want)
		_, err := erlterm.Parse("t.config", []byte(src))
		if !strings.Contains(err.Error(), "terms nest more than 1000 deep") {
			t.Errorf("%q x 100000: %v", open, err)
		}
	}
	deep := strings.Repeat("[", d+1) + strings.Repeat("]", d+1) + "."
	checkErrors(t, deep, []string{"1:1001: terms nest more than 1000 deep"})
}

func TestTailChainsCostNoDepth(t *testing.T) {
	n := 10 * erlterm.MaxDepth
	var b strings.Builder
	for k := range n {
		b.WriteString("[" + string(rune('a'+k%26)) + "|")
	}
	b.WriteString("[]" + strings.Repeat("]", n) + ".")
	terms, err := erlterm.Parse("t.config", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if l := terms[0].(erlterm.List); len(l.Elems) != n || l.Tail != nil {
		t.Errorf("got %d elements, tail %v; want %d, proper", len(l.Elems), l.Tail, n)
	}
}

func TestTooManyErrors(t *testing.T) {
	src := strings.Repeat("[Foo].\n", 1000)
	_, err := erlterm.Parse("t.config", []byte(src))
	var list erlterm.ErrorList
	if !errors.As(err, &list) {
		t.Fatal(err)
	}
	if len(list) != erlterm.MaxErrors+1 {
		t.Errorf("%d errors, want %d", len(list), erlterm.MaxErrors+1)
	}
	if last := list[len(list)-1].Msg; last != "too many errors; giving up" {
		t.Errorf("last error %q", last)
	}
}

func TestErrorText(t *testing.T) {
	cases := []struct {
		err  erlterm.Error
		want string
	}{
		{erlterm.Error{File: "sys.config", Pos: erlterm.Pos{Line: 3, Col: 12}, Msg: "bad"}, "sys.config:3:12: bad"},
		{erlterm.Error{Pos: erlterm.Pos{Line: 3, Col: 12}, Msg: "bad"}, "3:12: bad"},
		{erlterm.Error{File: "sys.config", Msg: "bad"}, "sys.config: bad"},
		{erlterm.Error{Msg: "TAVERN_DSN: bad"}, "TAVERN_DSN: bad"},
	}
	for _, c := range cases {
		if got := c.err.Error(); got != c.want {
			t.Errorf("Error() = %q, want %q", got, c.want)
		}
	}
	e1 := &erlterm.Error{File: "f", Pos: erlterm.Pos{Line: 2, Col: 1}, Msg: "two"}
	e2 := &erlterm.Error{File: "f", Pos: erlterm.Pos{Line: 1, Col: 5}, Msg: "one"}
	e3 := &erlterm.Error{Msg: "env"}
	list := erlterm.ErrorList{e3, e1, e2}
	list.Sort()
	if got, want := list.Error(), "f:1:5: one\nf:2:1: two\nenv"; got != want {
		t.Errorf("sorted list = %q, want %q", got, want)
	}
	var err error = list
	var target *erlterm.Error
	if !errors.As(err, &target) || target != e2 {
		t.Errorf("errors.As found %v, want the first error", target)
	}
	if !errors.Is(err, e1) {
		t.Error("errors.Is does not find an error of the list")
	}
	if (erlterm.ErrorList{}).Err() != nil {
		t.Error("empty ErrorList.Err() is not nil")
	}
}

func TestParseFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sys.config")
	if err := os.WriteFile(path, []byte("[{a, 1}].\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	terms, err := erlterm.ParseFile(path)
	if err != nil || len(terms) != 1 {
		t.Fatalf("ParseFile = %v, %v", terms, err)
	}
	_, err = erlterm.ParseFile(filepath.Join(dir, "missing.config"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "missing.config") {
		t.Errorf("missing file: %v", err)
	}
	if err := os.WriteFile(path, []byte("[{a, 1}"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = erlterm.ParseFile(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+":1:8: ") {
		t.Errorf("syntax error: %v", err)
	}
}

func TestInt64(t *testing.T) {
	for _, c := range []struct {
		src  string
		want int64
		ok   bool
	}{
		{"0.", 0, true},
		{"-9223372036854775808.", math.MinInt64, true},
		{"9223372036854775807.", math.MaxInt64, true},
		{"9223372036854775808.", 0, false},
		{"-9223372036854775809.", 0, false},
	} {
		terms, err := erlterm.Parse("t", []byte(c.src))
		if err != nil {
			t.Fatal(err)
		}
		got, ok := terms[0].(erlterm.Integer).Int64()
		if got != c.want || ok != c.ok {
			t.Errorf("%s Int64() = %d, %v; want %d, %v", c.src, got, ok, c.want, c.ok)
		}
	}
	if v, ok := (erlterm.Integer{}).Int64(); v != 0 || !ok {
		t.Errorf("zero Integer Int64() = %d, %v", v, ok)
	}
}

// TestLargeInputsAreLinear parses and formats inputs of about a megabyte
// built to trip a quadratic algorithm; each would take minutes if one
// were hiding in the scanner, the parser or Format.
func TestLargeInputsAreLinear(t *testing.T) {
	const n = 100_000
	inputs := map[string]string{
		"long list":           "[" + strings.Repeat("a,", n) + "a].",
		"long string":         `"` + strings.Repeat("x\\n", n*3) + `".`,
		"many joined strings": strings.Repeat(`"ab" `, n) + ".",
		"long binary":         "<<" + strings.Repeat("255,", n) + "0>>.",
		"long binary string":  `<<"` + strings.Repeat("é", n*3) + `">>.`,
		"big map":             "#{" + strings.Repeat("k => {v},", n) + "k => v}.",
		"long comment":        "%" + strings.Repeat("c", n*10) + "\nok.",
		"many terms":          strings.Repeat("{a}.\n", n),
		"many errors":         strings.Repeat("[A].\n", n),
		"tail chain":          strings.Repeat("[1|", n) + "[]" + strings.Repeat("]", n) + ".",
		"wide and deep":       strings.Repeat("[", 900) + strings.Repeat("{a, \"text\"},", n/10) + "x" + strings.Repeat("]", 900) + ".",
		"long atom run":       strings.Repeat("a", n*10) + ".",
		"unterminated string": `"` + strings.Repeat("a", n*10),
		"many dots":           strings.Repeat(". ", n),
	}
	for name, src := range inputs {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			terms, _ := erlterm.Parse("big", []byte(src))
			for _, term := range terms[:min(len(terms), 10)] {
				_ = erlterm.Format(term)
				_ = erlterm.FormatFlat(term)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}
