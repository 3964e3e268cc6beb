package rules

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestValidID(t *testing.T) {
	re := regexp.MustCompile(IDPattern)
	cases := []string{"", "a", "e9", "A-z_0", strings.Repeat("a", 64), strings.Repeat("a", 65),
		"a b", "a.b", "é", "a\n", "a/b", "-", "_", "x\x00", "cave-1", "ＡＢ"}
	for _, c := range cases {
		if got, want := ValidID(c), re.MatchString(c); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", c, got, want)
		}
	}
}

func TestDecodeOK(t *testing.T) {
	cases := []struct {
		name, in, kind string
	}{
		{"put", `{"kind":"put","entities":[{"id":"e1","asset":"orc","pos":[0,0,0]}]}`, KindPut},
		{"put full", `{"kind":"put","entities":[{"id":"e1","asset":"orc","pos":[0,1.5,-2],"rot":-45.5,"props":{"a":1}}]}`, KindPut},
		{"put empty", `{"kind":"put","entities":[]}`, KindPut},
		{"put empty asset", `{"kind":"put","entities":[{"id":"e1","asset":"","pos":[0,0,0]}]}`, KindPut},
		{"put props null value", `{"kind":"put","entities":[{"id":"e1","asset":"a","pos":[0,0,0],"props":{"a":null}}]}`, KindPut},
		{"put ids at 64", `{"kind":"put","entities":[{"id":"` + strings.Repeat("Z", 64) + `","asset":"a","pos":[0,0,0]}]}`, KindPut},
		{"move", `{"kind":"move","entity":"e9","pos":[3,0,7]}`, KindMove},
		{"move rot", `{"kind":"move","entity":"e9","pos":[3,0,7],"rot":1e300}`, KindMove},
		{"move exponent", `{"kind":"move","entity":"e9","pos":[1E2,-0,1e-400]}`, KindMove},
		{"patch", `{"kind":"patch","entity":"e1","props":{"a":null,"b":{"c":[1]}}}`, KindPatch},
		{"patch empty", `{"kind":"patch","entity":"e1","props":{}}`, KindPatch},
		{"del", `{"kind":"del","entities":["e1","e2"]}`, KindDel},
		{"del empty", `{"kind":"del","entities":[]}`, KindDel},
		{"chat", `{"kind":"chat","text":"hello"}`, KindChat},
		{"chat one", `{"kind":"chat","text":" "}`, KindChat},
		{"chat escapes", `{"kind":"chat","text":"\ud83c\udfb2\n\u0000"}`, KindChat},
		{"roll", `{"kind":"roll","dice":"d20"}`, KindRoll},
		{"extra fields", `{"kind":"roll","dice":"d20","who":"me","n":[1,{}]}`, KindRoll},
		{"whitespace", " \n{ \"kind\" : \"chat\" , \"text\" : \"x\" }\t", KindChat},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			op, err := Decode([]byte(c.in), DefaultLimits())
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if op.Kind != c.kind {
				t.Errorf("Kind = %q, want %q", op.Kind, c.kind)
			}
		})
	}
}

func TestDecodeBadOp(t *testing.T) {
	long := strings.Repeat("a", 65)
	cases := []struct {
		name, in, msg string // msg: a substring of Error.Msg
	}{
		// the op itself
		{"empty", ``, "op: not valid JSON"},
		{"not json", `{kind:move}`, "op: not valid JSON"},
		{"two values", `{"kind":"chat","text":"a"} {}`, "op: not valid JSON"},
		{"array", `["kind","move"]`, "op: expected a JSON object"},
		{"string", `"move"`, "op: expected a JSON object"},
		{"null", `null`, "op: expected a JSON object"},
		{"number", `1`, "op: expected a JSON object"},
		{"invalid utf8", "{\"kind\":\"chat\",\"text\":\"\xff\"}", "op: not valid UTF-8"},
		{"lone high surrogate", `{"kind":"chat","text":"\ud800"}`, "unpaired surrogate"},
		{"lone low surrogate", `{"kind":"chat","text":"\udc00x"}`, "unpaired surrogate"},
		{"reversed surrogates", `{"kind":"chat","text":"\udfb2\ud83c"}`, "unpaired surrogate"},
		{"high then char", `{"kind":"chat","text":"\ud83cx"}`, "unpaired surrogate"},
		{"surrogate in key", `{"kind":"chat","text":"a","\ud800":1}`, "unpaired surrogate"},
		{"duplicate key", `{"kind":"move","entity":"e1","entity":"e2","pos":[0,0,0]}`, `duplicate key "entity"`},
		{"duplicate escaped key", `{"kind":"chat","text":"a","\u0074ext":"b"}`, `duplicate key "text"`},
		{"duplicate nested key", `{"kind":"patch","entity":"e1","props":{"a":{"b":1,"b":2}}}`, `duplicate key "b"`},
		{"duplicate key in big object", `{"kind":"patch","entity":"e1","props":{"a":1,"b":1,"c":1,"d":1,"e":1,"f":1,"g":1,"h":1,"i":1,"j":1,"k":1,"l":1,"m":1,"n":1,"o":1,"p":1,"q":1,"r":1,"s":1,"a":2}}`, `duplicate key "a"`},
		{"no kind", `{"entity":"e1"}`, "op: kind: missing"},
		{"kind number", `{"kind":1}`, "op: kind: expected a string"},
		{"kind null", `{"kind":null}`, "op: kind: expected a string"},
		{"unknown kind", `{"kind":"teleport"}`, `op: unknown kind "teleport"`},
		{"kind case", `{"kind":"Move","entity":"e1","pos":[0,0,0]}`, `op: unknown kind "Move"`},
		{"kind empty", `{"kind":""}`, `op: unknown kind ""`},

		// put
		{"put no entities", `{"kind":"put"}`, "put: entities: missing"},
		{"put entities null", `{"kind":"put","entities":null}`, "put: entities: expected a list"},
		{"put entities object", `{"kind":"put","entities":{}}`, "put: entities: expected a list"},
		{"put entity not object", `{"kind":"put","entities":["e1"]}`, "put: entities[0]: expected an object"},
		{"put entity null", `{"kind":"put","entities":[null]}`, "put: entities[0]: expected an object"},
		{"put no id", `{"kind":"put","entities":[{"asset":"a","pos":[0,0,0]}]}`, "put: entities[0].id: missing"},
		{"put id number", `{"kind":"put","entities":[{"id":1,"asset":"a","pos":[0,0,0]}]}`, "put: entities[0].id: expected a string id"},
		{"put id empty", `{"kind":"put","entities":[{"id":"","asset":"a","pos":[0,0,0]}]}`, "put: entities[0].id: invalid id"},
		{"put id 65", `{"kind":"put","entities":[{"id":"` + long + `","asset":"a","pos":[0,0,0]}]}`, "put: entities[0].id: invalid id"},
		{"put id space", `{"kind":"put","entities":[{"id":"a b","asset":"a","pos":[0,0,0]}]}`, "put: entities[0].id: invalid id"},
		{"put id unicode", `{"kind":"put","entities":[{"id":"é","asset":"a","pos":[0,0,0]}]}`, "put: entities[0].id: invalid id"},
		{"put no asset", `{"kind":"put","entities":[{"id":"e1","pos":[0,0,0]}]}`, "put: entities[0].asset: missing"},
		{"put asset number", `{"kind":"put","entities":[{"id":"e1","asset":3,"pos":[0,0,0]}]}`, "put: entities[0].asset: expected a string"},
		{"put asset null", `{"kind":"put","entities":[{"id":"e1","asset":null,"pos":[0,0,0]}]}`, "put: entities[0].asset: expected a string"},
		{"put no pos", `{"kind":"put","entities":[{"id":"e1","asset":"a"}]}`, "put: entities[0].pos: missing"},
		{"put pos two", `{"kind":"put","entities":[{"id":"e1","asset":"a","pos":[0,0]}]}`, "put: entities[0].pos: expected three numbers"},
		{"put pos four", `{"kind":"put","entities":[{"id":"e1","asset":"a","pos":[0,0,0,0]}]}`, "put: entities[0].pos: expected three numbers"},
		{"put pos string", `{"kind":"put","entities":[{"id":"e1","asset":"a","pos":[0,"1",0]}]}`, "put: entities[0].pos: expected three numbers"},
		{"put pos null item", `{"kind":"put","entities":[{"id":"e1","asset":"a","pos":[0,null,0]}]}`, "put: entities[0].pos: expected three numbers"},
		{"put pos object", `{"kind":"put","entities":[{"id":"e1","asset":"a","pos":{"x":0,"y":0,"z":0}}]}`, "put: entities[0].pos: expected three numbers"},
		{"put pos overflow", `{"kind":"put","entities":[{"id":"e1","asset":"a","pos":[0,0,1e999]}]}`, "put: entities[0].pos: expected three numbers"},
		{"put pos neg overflow", `{"kind":"put","entities":[{"id":"e1","asset":"a","pos":[-1e309,0,0]}]}`, "put: entities[0].pos: expected three numbers"},
		{"put rot string", `{"kind":"put","entities":[{"id":"e1","asset":"a","pos":[0,0,0],"rot":"90"}]}`, "put: entities[0].rot: expected a number"},
		{"put rot null", `{"kind":"put","entities":[{"id":"e1","asset":"a","pos":[0,0,0],"rot":null}]}`, "put: entities[0].rot: expected a number"},
		{"put rot overflow", `{"kind":"put","entities":[{"id":"e1","asset":"a","pos":[0,0,0],"rot":2e308}]}`, "put: entities[0].rot: expected a number"},
		{"put props list", `{"kind":"put","entities":[{"id":"e1","asset":"a","pos":[0,0,0],"props":[]}]}`, "put: entities[0].props: expected an object"},
		{"put props null", `{"kind":"put","entities":[{"id":"e1","asset":"a","pos":[0,0,0],"props":null}]}`, "put: entities[0].props: expected an object"},
		{"put second bad", `{"kind":"put","entities":[{"id":"e1","asset":"a","pos":[0,0,0]},{"id":"e2","asset":"a","pos":[0,0]}]}`, "put: entities[1].pos: expected three numbers"},

		// move
		{"move no entity", `{"kind":"move","pos":[0,0,0]}`, "move: entity: missing"},
		{"move entity number", `{"kind":"move","entity":9,"pos":[0,0,0]}`, "move: entity: expected a string id"},
		{"move entity bad", `{"kind":"move","entity":"e 9","pos":[0,0,0]}`, "move: entity: invalid id"},
		{"move no pos", `{"kind":"move","entity":"e9"}`, "move: pos: missing"},
		{"move bad pos", `{"kind":"move","entity":"e9","pos":[3,0]}`, "move: pos: expected three numbers"},
		{"move pos null", `{"kind":"move","entity":"e9","pos":null}`, "move: pos: expected three numbers"},
		{"move pos bools", `{"kind":"move","entity":"e9","pos":[true,false,true]}`, "move: pos: expected three numbers"},
		{"move pos nested", `{"kind":"move","entity":"e9","pos":[[1],2,3]}`, "move: pos: expected three numbers"},
		{"move rot string", `{"kind":"move","entity":"e9","pos":[0,0,0],"rot":"x"}`, "move: rot: expected a number"},
		{"move rot null", `{"kind":"move","entity":"e9","pos":[0,0,0],"rot":null}`, "move: rot: expected a number"},

		// patch
		{"patch no entity", `{"kind":"patch","props":{}}`, "patch: entity: missing"},
		{"patch bad entity", `{"kind":"patch","entity":"","props":{}}`, "patch: entity: invalid id"},
		{"patch no props", `{"kind":"patch","entity":"e1"}`, "patch: props: missing"},
		{"patch props list", `{"kind":"patch","entity":"e1","props":[1]}`, "patch: props: expected an object"},
		{"patch props null", `{"kind":"patch","entity":"e1","props":null}`, "patch: props: expected an object"},
		{"patch props string", `{"kind":"patch","entity":"e1","props":"{}"}`, "patch: props: expected an object"},

		// del
		{"del no entities", `{"kind":"del"}`, "del: entities: missing"},
		{"del entities string", `{"kind":"del","entities":"e1"}`, "del: entities: expected a list of ids"},
		{"del entities null", `{"kind":"del","entities":null}`, "del: entities: expected a list of ids"},
		{"del id number", `{"kind":"del","entities":["e1",2]}`, "del: entities[1]: expected a string id"},
		{"del id object", `{"kind":"del","entities":[{"id":"e1"}]}`, "del: entities[0]: expected a string id"},
		{"del id invalid", `{"kind":"del","entities":["e1","a/b"]}`, "del: entities[1]: invalid id"},
		{"del id too long", `{"kind":"del","entities":["` + long + `"]}`, "del: entities[0]: invalid id"},

		// chat
		{"chat no text", `{"kind":"chat"}`, "chat: text: missing"},
		{"chat text number", `{"kind":"chat","text":1}`, "chat: text: expected a string"},
		{"chat text null", `{"kind":"chat","text":null}`, "chat: text: expected a string"},
		{"chat empty", `{"kind":"chat","text":""}`, "chat: text: empty"},

		// roll
		{"roll no dice", `{"kind":"roll"}`, "roll: dice: missing"},
		{"roll dice number", `{"kind":"roll","dice":20}`, "roll: dice: expected a string"},
		{"roll bad dice", `{"kind":"roll","dice":"0d6"}`, `roll: dice: invalid dice "0d6"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			op, err := Decode([]byte(c.in), DefaultLimits())
			if err == nil {
				t.Fatalf("Decode succeeded (kind %q), want bad_op %q", op.Kind, c.msg)
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeBadOp {
				t.Fatalf("error %v, want *Error bad_op", err)
			}
			if !errors.Is(err, ErrBadOp) || errors.Is(err, ErrNotFound) {
				t.Errorf("errors.Is does not match the code")
			}
			if !strings.Contains(e.Msg, c.msg) {
				t.Errorf("Msg = %q, want it to contain %q", e.Msg, c.msg)
			}
		})
	}
}

// TestDecodeLimits checks every limit exactly at and one over.
func TestDecodeLimits(t *testing.T) {
	lim := DefaultLimits()
	put1 := func(props string) string {
		return `{"kind":"put","entities":[{"id":"e1","asset":"a","pos":[0,0,0],"props":` + props + `}]}`
	}
	chat := func(s string) string { return `{"kind":"chat","text":"` + s + `"}` }
	cases := []struct {
		name string
		in   string
		ok   bool
	}{
		{"put 1000", putOf("e", 1000), true},
		{"put 1001", putOf("e", 1001), false},
		{"props 65536", put1(propsOfSize(65536)), true},
		{"props 65537", put1(propsOfSize(65537)), false},
		// escaped keys count as the snapshot writes them: "\u0070" is "p".
		{"props 65536 escaped key", put1(`{"\u0070":"` + strings.Repeat("x", 65536-8) + `"}`), true},
		// string values count as sent (compacted, escapes kept).
		{"props value escapes count", put1(`{"p":"\u0078` + strings.Repeat("x", 65536-8-1) + `"}`), false},
		{"chat 2000 ascii", chat(strings.Repeat("a", 2000)), true},
		{"chat 2001 ascii", chat(strings.Repeat("a", 2001)), false},
		{"chat 2000 multibyte", chat(strings.Repeat("é", 1000) + strings.Repeat("🎲", 1000)), true},
		{"chat 2001 multibyte", chat(strings.Repeat("é", 1001) + strings.Repeat("🎲", 1000)), false},
		{"chat 2000 escaped pairs", chat(strings.Repeat(`\ud83c\udfb2`, 2000)), true},
		{"chat 2001 escaped pairs", chat(strings.Repeat(`\ud83c\udfb2`, 2001)), false},
		{"chat 2000 combining", chat(strings.Repeat("e\u0301", 1000)), true},
		{"chat 2001 combining", chat(strings.Repeat("e\u0301", 1000) + "x"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode([]byte(c.in), lim)
			if c.ok && err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !c.ok && code(t, err) != CodeBadOp {
				t.Fatalf("Decode error %v, want bad_op", err)
			}
		})
	}
}

func TestDecodeCustomLimits(t *testing.T) {
	lim := Limits{MaxPutEntities: 2, MaxPropsBytes: 10, MaxChatChars: 3}
	for _, c := range []struct {
		in string
		ok bool
	}{
		{putOf("e", 2), true},
		{putOf("e", 3), false},
		{`{"kind":"put","entities":[{"id":"e","asset":"a","pos":[0,0,0],"props":{"p":"xx"}}]}`, true},
		{`{"kind":"put","entities":[{"id":"e","asset":"a","pos":[0,0,0],"props":{"p":"xxx"}}]}`, false},
		{`{"kind":"chat","text":"abc"}`, true},
		{`{"kind":"chat","text":"abcd"}`, false},
	} {
		_, err := Decode([]byte(c.in), lim)
		if (err == nil) != c.ok {
			t.Errorf("Decode(%s) error %v, want ok=%v", c.in, err, c.ok)
		}
	}
}

func TestDecodeRaw(t *testing.T) {
	cases := []struct{ in, raw string }{
		{`{"kind":"move","entity":"e9","pos":[3,0,7]}`, `{"kind":"move","entity":"e9","pos":[3,0,7]}`},
		{" {\n  \"kind\" : \"chat\",\n  \"text\" : \"a  b\" , \"z\" : [ 1 , 2 ] }\n", `{"kind":"chat","text":"a  b","z":[1,2]}`},
		// values and escapes are kept as sent, no HTML escaping, order kept
		{`{"text":"<b>\u0041\/</b>","kind":"chat"}`, `{"text":"<b>\u0041\/</b>","kind":"chat"}`},
		{`{"kind":"move","entity":"e1","pos":[1.50,1E2,-0.0],"rot":1e-400}`, `{"kind":"move","entity":"e1","pos":[1.50,1E2,-0.0],"rot":1e-400}`},
		{`{"kind":"put","entities":[ {"id":"e1","asset":"a","pos":[0,0,0],"extra":{ "k" : true } } ]}`, `{"kind":"put","entities":[{"id":"e1","asset":"a","pos":[0,0,0],"extra":{"k":true}}]}`},
	}
	for _, c := range cases {
		op := mustDecode(t, c.in)
		if string(op.Raw) != c.raw {
			t.Errorf("Raw = %s, want %s", op.Raw, c.raw)
		}
		if !json.Valid(op.Raw) {
			t.Errorf("Raw is not valid JSON: %s", op.Raw)
		}
		again := mustDecode(t, string(op.Raw))
		if string(again.Raw) != string(op.Raw) {
			t.Errorf("Decode(Raw).Raw = %s, want %s", again.Raw, op.Raw)
		}
	}
	// Raw does not alias the caller's buffer.
	in := []byte(`{"kind":"chat","text":"abc"}`)
	op := mustDecode(t, string(in))
	op2, _ := Decode(in, DefaultLimits())
	in[len(in)-3] = 'X'
	if string(op2.Raw) != string(op.Raw) {
		t.Errorf("Raw aliases the input: %s", op2.Raw)
	}
}

func TestDecodeAccessors(t *testing.T) {
	if got := mustDecode(t, `{"kind":"move","entity":"e9","pos":[3,0,7]}`).Entity(); got != "e9" {
		t.Errorf("Entity = %q", got)
	}
	if got := mustDecode(t, `{"kind":"chat","text":"hi \u00e9"}`).Text(); got != "hi é" {
		t.Errorf("Text = %q", got)
	}
	if got := mustDecode(t, `{"kind":"roll","dice":"2d6-1"}`).Dice(); got != (Dice{2, 6, -1}) {
		t.Errorf("Dice = %+v", got)
	}
}

func TestLimits(t *testing.T) {
	if err := DefaultLimits().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Limits{}).Validate(); err != nil {
		t.Fatal(err)
	}
	if got := (Limits{}).withDefaults(); got != DefaultLimits() {
		t.Errorf("zero limits = %+v, want defaults", got)
	}
	err := Limits{MaxEntities: -1, MaxChatChars: -2}.Validate()
	if !errors.Is(err, ErrBadLimits) || !strings.Contains(err.Error(), "MaxEntities") || !strings.Contains(err.Error(), "MaxChatChars") {
		t.Errorf("Validate = %v, want both fields reported", err)
	}
}
