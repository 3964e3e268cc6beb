package console

import (
	"errors"
	"log/slog"
	"math/big"
	"reflect"
	"strings"
	"testing"

	"github.com/ergo-services/ergo/etf"
)

// Text arrives however a Go node or an Erlang shell sends it.
func TestText(t *testing.T) {
	for _, c := range []struct {
		in   etf.Term
		want string
		ok   bool
	}{
		{[]byte("cave-1"), "cave-1", true},                  // <<"cave-1">>
		{[]byte("h\xc3\xa9"), "hé", true},                   // <<"hé"/utf8>>
		{[]byte("h\xe9"), "hé", true},                       // <<"hé">>: Latin-1
		{"cave-1", "cave-1", true},                          // "cave-1" (STRING_EXT)
		{"h\xe9llo", "héllo", true},                         // "héllo": one byte per character
		{etf.List{104, 9731}, "h☃", true},                   // [104, 9731]
		{etf.List{}, "", true},                              // ""
		{etf.Atom("cave-1"), "cave-1", true},                // 'cave-1'
		{etf.String("x"), "x", true},                        // from a Go node
		{etf.List{104, etf.Atom("x")}, "", false},           // not text
		{etf.List{-1}, "", false},                           // not a code point
		{42, "", false},                                     // not text
		{etf.Tuple{etf.Atom("a")}, "", false},               // not text
		{etf.List{int64(0x110000)}, "", false},              // beyond Unicode
		{etf.List{big.NewInt(104), uint8(105)}, "hi", true}, // any integer type
	} {
		got, ok := text(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("text(%#v) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestNumber(t *testing.T) {
	for _, c := range []struct {
		in   etf.Term
		want float64
		ok   bool
	}{
		{50, 50, true}, {int64(7), 7, true}, {2.5, 2.5, true}, {[]byte("12"), 12, true},
		{"1e3", 1000, true}, {etf.Atom("abc"), 0, false}, {etf.Tuple{}, 0, false},
	} {
		got, ok := number(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("number(%#v) = %v, %v", c.in, got, ok)
		}
	}
}

func TestPlain(t *testing.T) {
	in := etf.Tuple{etf.Atom("ok"), etf.Map{
		etf.Atom("id"): etf.String("cave-1"), etf.Atom("n"): 3, etf.Atom("f"): 2.5,
		etf.Atom("yes"): true, etf.Atom("l"): etf.List{[]byte("a"), etf.Atom("b")},
	}}
	want := []any{"ok", map[string]any{"id": "cave-1", "n": int64(3), "f": 2.5, "yes": true, "l": []any{"a", "b"}}}
	if got := Plain(in); !reflect.DeepEqual(got, want) {
		t.Fatalf("Plain: %#v", got)
	}
}

func TestInterpret(t *testing.T) {
	if v, err := Interpret(etf.Atom("ok")); v != nil || err != nil {
		t.Fatal(v, err)
	}
	if v, err := Interpret(etf.Tuple{etf.Atom("ok"), 3}); v != 3 || err != nil {
		t.Fatal(v, err)
	}
	var re *ReplyError
	if _, err := Interpret(etf.Tuple{etf.Atom("error"), etf.Atom("not_active")}); !errors.As(err, &re) || re.Reason != "not_active" {
		t.Fatal(err)
	}
	if _, err := Interpret(etf.Tuple{etf.Atom("error"), []byte("bad value")}); err == nil || err.Error() != "bad value" {
		t.Fatal(err)
	}
	if _, err := Interpret(etf.Tuple{etf.Atom("error"), etf.Tuple{etf.Atom("x"), 1}}); err == nil || err.Error() != "[x 1]" {
		t.Fatal(err)
	}
}

func TestBuild(t *testing.T) {
	for _, c := range []struct {
		cmd  string
		args []string
		want etf.Term
	}{
		{"info", nil, etf.Atom("info")},
		{"board", []string{"cave-1"}, etf.Tuple{etf.Atom("board"), etf.String("cave-1")}},
		{"kill", []string{"cave-1"}, etf.Tuple{etf.Atom("kill"), etf.String("cave-1")}},
		{"notice", []string{"a", "b"}, etf.Tuple{etf.Atom("notice"), etf.String("a b")}},
		{"set", []string{"log_level", "warn"}, etf.Tuple{etf.Atom("set"), etf.Atom("log_level"), etf.String("warn")}},
		{"drain", nil, etf.Atom("drain")},
	} {
		got, err := Build(c.cmd, c.args)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("Build(%s %v) = %#v, %v", c.cmd, c.args, got, err)
		}
	}
	for _, bad := range [][]string{{"nope"}, {"board"}, {"board", "a", "b"}, {"notice"}, {"set", "x"}, {"info", "extra"}} {
		if _, err := Build(bad[0], bad[1:]); !errors.Is(err, ErrUsage) {
			t.Errorf("Build(%v): %v", bad, err)
		}
	}
}

func TestLevels(t *testing.T) {
	for s, l := range map[string]slog.Level{"debug": slog.LevelDebug, "INFO": slog.LevelInfo, "warn": slog.LevelWarn, "warning": slog.LevelWarn, "error": slog.LevelError} {
		got, ok := parseLevel(s)
		if !ok || got != l {
			t.Errorf("parseLevel(%q) = %v %v", s, got, ok)
		}
		if name := levelName(got); !strings.HasPrefix(strings.ToLower(s), name) {
			t.Errorf("levelName(%v) = %s", got, name)
		}
	}
	if _, ok := parseLevel("loud"); ok {
		t.Error("loud is a level")
	}
}

func FuzzBuild(f *testing.F) {
	for _, s := range []string{"info", "board cave-1", "notice hello  world", "set log_level debug", "kill", "set a b c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			return
		}
		v, err := Build(fields[0], fields[1:])
		if (v == nil) == (err == nil) {
			t.Fatalf("Build(%q) = %v, %v", line, v, err)
		}
	})
}
