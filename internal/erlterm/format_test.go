package erlterm_test

import (
	"math"
	"strings"
	"testing"

	"github.com/tavernhq/tavern/internal/erlterm"
)

func TestFormat(t *testing.T) {
	cases := []struct {
		term T
		want string
	}{
		{a("ok"), "ok"},
		{a("foo_bar@x1"), "foo_bar@x1"},
		{a("café"), "café"},
		{a("Foo"), "'Foo'"},
		{a("_x"), "'_x'"},
		{a("1a"), "'1a'"},
		{a(""), "''"},
		{a("hello world"), "'hello world'"},
		{a("it's"), `'it\'s'`},
		{a("end"), "'end'"},
		{a("maybe"), "'maybe'"},
		{a("else"), "'else'"},
		{a("tavern@127.0.0.1"), "'tavern@127.0.0.1'"},
		{a("☃"), "'☃'"},
		{s(""), `""`},
		{s("a\"b\\c\nd\te\rf"), `"a\"b\\c\nd\te\rf"`},
		{s("it's"), `"it's"`},
		{s("\x00\x1b\x7f\u0085\u00a0"), `"\x{0}\x{1B}\x{7F}\x{85}\x{A0}"`},
		{s("snow ☃ é 😀"), `"snow ☃ é 😀"`},
		{i(0), "0"},
		{i(-42), "-42"},
		{big10("123456789012345678901234567890"), "123456789012345678901234567890"},
		{erlterm.Integer{}, "0"},
		{f(0), "0.0"},
		{f(math.Copysign(0, -1)), "-0.0"},
		{f(1), "1.0"},
		{f(-2.5), "-2.5"},
		{f(0.1), "0.1"},
		{f(1e15), "1000000000000000.0"},
		{f(1e16), "1.0e16"},
		{f(1.5e-7), "1.5e-7"},
		{f(0.0001), "0.0001"},
		{f(5e-324), "5.0e-324"},
		{f(math.MaxFloat64), "1.7976931348623157e308"},
		{bin(), "<<>>"},
		{bins("text\n"), `<<"text\n">>`},
		{bins("é€"), `<<"é€"/utf8>>`},
		{bin(0xE9), "<<233>>"},
		{bin(1, 2, 255), "<<1,2,255>>"},
		{bins("a\x00b"), "<<97,0,98>>"},
		{tup(), "{}"},
		{tup(a("a"), i(1)), "{a, 1}"},
		{lst(), "[]"},
		{lst(a("a"), a("b")), "[a, b]"},
		{imp(a("c"), a("a"), a("b")), "[a, b | c]"},
		{imp(a("c")), "c"},
		{mp(), "#{}"},
		{mp(a("a"), i(1), s("b"), lst()), `#{a => 1, "b" => []}`},
		{tup(i(-1), mp(a("k"), i(-2)), imp(i(-3), i(-4))), "{-1, #{k => -2}, [-4 | -3]}"},
	}
	for _, c := range cases {
		if got := erlterm.Format(c.term); got != c.want {
			t.Errorf("Format(%#v) = %s, want %s", c.term, got, c.want)
		}
		if got := c.term.String(); got != c.want {
			t.Errorf("String() = %s, want %s", got, c.want)
		}
		// Each output reads back to the term.
		if c.term != nil && !strings.HasPrefix(c.want, "c") {
			roundTrip(t, c.term)
		}
	}
}

func TestFormatBreaksLongTerms(t *testing.T) {
	cfg := lst(
		tup(a("node"), lst(
			tup(a("name"), s("tavern-dev@127.0.0.1")),
			tup(a("cookie"), s("change-me")),
			tup(a("dist_listen"), s("127.0.0.1:25100")))),
		tup(a("gateway"), lst(tup(a("listen"), s("127.0.0.1:8080")), tup(a("auth"), a("dev")))),
		tup(a("m"), mp(a("a_rather_long_key"), lst(s("some text to make it long"), s("and more text")),
			tup(a("k")), i(1))),
		imp(a("tail"), s(strings.Repeat("x", 70)), i(2)),
	)
	want := `[{node, [{name, "tavern-dev@127.0.0.1"},
         {cookie, "change-me"},
         {dist_listen, "127.0.0.1:25100"}]},
 {gateway, [{listen, "127.0.0.1:8080"}, {auth, dev}]},
 {m, #{a_rather_long_key => ["some text to make it long", "and more text"],
       {k} => 1}},
 ["xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 2 |
  tail]]`
	got := erlterm.Format(cfg)
	if got != want {
		t.Errorf("Format =\n%s\nwant\n%s", got, want)
	}
	if flat := erlterm.FormatFlat(cfg); strings.Contains(flat, "\n") {
		t.Errorf("FormatFlat has a newline: %s", flat)
	}
	roundTrip(t, cfg)
}

func TestFormatRoundTripsConstructedTerms(t *testing.T) {
	var all []T
	for _, tc := range parseCases {
		all = append(all, tc.want...)
	}
	all = append(all,
		a("with\nnewline"), a("back\\slash"), a("ünï"), s("\u2028\ufeff"),
		bins("\xff\xfe"), bins("ok\xc3"), f(math.SmallestNonzeroFloat64), f(-math.MaxFloat64),
		f(123456789.123456789), f(1e21), f(1e-5), f(2.5e-5),
		big10("-"+strings.Repeat("9", 500)),
		tup(all...), lst(all...), imp(tup(all...), all...),
	)
	for _, term := range all {
		roundTrip(t, term)
	}
}

// roundTrip checks that Parse(Format(t)) is t.
func roundTrip(t *testing.T, term T) {
	t.Helper()
	for _, text := range []string{erlterm.Format(term), erlterm.FormatFlat(term)} {
		got, err := erlterm.Parse("f", []byte(text+"."))
		if err != nil {
			t.Errorf("Parse(Format(%v)): %v\ntext: %s", term, err, text)
			continue
		}
		if len(got) != 1 || !erlterm.Equal(got[0], term) {
			t.Errorf("Parse(Format(t)) = %v\nwant %v\ntext: %s", got, term, text)
		}
	}
}

func TestEqual(t *testing.T) {
	same := [][2]T{
		{lst(), erlterm.List{Elems: []T{}}},
		{bin(), erlterm.Binary{Value: []byte{}}},
		{erlterm.Integer{}, i(0)},
		{erlterm.Atom{Name: "a", At: erlterm.Pos{Line: 1, Col: 1}}, a("a")},
		{f(math.NaN()), f(math.NaN())},
	}
	for _, p := range same {
		if !erlterm.Equal(p[0], p[1]) {
			t.Errorf("Equal(%v, %v) = false", p[0], p[1])
		}
	}
	differ := [][2]T{
		{s("ab"), lst(i('a'), i('b'))},
		{f(0), f(math.Copysign(0, -1))},
		{f(1), i(1)},
		{lst(a("a")), imp(lst(), a("a"))},
		{tup(a("a")), lst(a("a"))},
		{mp(a("a"), i(1)), mp(a("a"), i(2))},
		{a("a"), nil},
	}
	for _, p := range differ {
		if erlterm.Equal(p[0], p[1]) {
			t.Errorf("Equal(%v, %v) = true", p[0], p[1])
		}
	}
}

func TestAtomNeedsQuotes(t *testing.T) {
	for name, want := range map[string]bool{
		"ok": false, "a@b": false, "x_1": false, "ß": false,
		"Ok": true, "_": true, "a-b": true, "a.b": true, "": true, "end": true, "÷": true,
	} {
		if got := erlterm.AtomNeedsQuotes(name); got != want {
			t.Errorf("AtomNeedsQuotes(%q) = %v, want %v", name, got, want)
		}
	}
}
