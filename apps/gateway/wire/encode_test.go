package wire

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"
)

// fieldsOf decodes an encoder's output, failing unless it is one compact
// JSON object.
func fieldsOf(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var c bytes.Buffer
	if err := json.Compact(&c, b); err != nil {
		t.Fatalf("invalid JSON %s: %v", b, err)
	}
	if !bytes.Equal(c.Bytes(), b) {
		t.Fatalf("not compact: %s", b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not an object %s: %v", b, err)
	}
	return m
}

func TestEncoders(t *testing.T) {
	r := Ref{S: "7", OK: true}
	lim := Limits{MaxFrame: 65536, OpsPerSec: 200, OpsBurst: 200}
	tests := []struct {
		name string
		got  []byte
		want string // the exact expected bytes
	}{
		{"welcome", Welcome(r, "alice", "n1@host", lim),
			`{"t":"welcome","ref":"7","user":"alice","node":"n1@host","limits":{"max_frame":65536,"ops_per_sec":200,"ops_burst":200}}`},
		{"welcome no ref fractional rate", Welcome(Ref{}, "bob", "n", Limits{MaxFrame: 1024, OpsPerSec: 0.5, OpsBurst: 1}),
			`{"t":"welcome","user":"bob","node":"n","limits":{"max_frame":1024,"ops_per_sec":0.5,"ops_burst":1}}`},
		{"welcome non-finite rate", Welcome(Ref{}, "u", "n", Limits{OpsPerSec: math.Inf(1)}),
			`{"t":"welcome","user":"u","node":"n","limits":{"max_frame":0,"ops_per_sec":0,"ops_burst":0}}`},
		{"welcome empty ref", Welcome(Ref{S: "", OK: true}, "u", "n", lim),
			`{"t":"welcome","ref":"","user":"u","node":"n","limits":{"max_frame":65536,"ops_per_sec":200,"ops_burst":200}}`},
		{"joined snapshot", Joined(Ref{S: "2", OK: true}, "cave-1", 57, json.RawMessage(`{"entities":[]}`)),
			`{"t":"joined","ref":"2","board":"cave-1","seq":57,"snapshot":{"entities":[]}}`},
		{"joined since", Joined(Ref{S: "2", OK: true}, "cave-1", 57, nil),
			`{"t":"joined","ref":"2","board":"cave-1","seq":57}`},
		{"joined no ref", Joined(Ref{}, "b", 0, json.RawMessage(`{"entities":[]}`)),
			`{"t":"joined","board":"b","seq":0,"snapshot":{"entities":[]}}`},
		{"ack", Ack(Ref{S: "3", OK: true}, "cave-1", "alice-0017", 58, false),
			`{"t":"ack","ref":"3","board":"cave-1","id":"alice-0017","seq":58}`},
		{"ack dup", Ack(Ref{}, "cave-1", "alice-0017", 58, true),
			`{"t":"ack","board":"cave-1","id":"alice-0017","seq":58,"dup":true}`},
		{"ev", Event("cave-1", 58, "alice", "alice-0017", json.RawMessage(`{"kind":"move","entity":"e9","pos":[3,0,7]}`), nil),
			`{"t":"ev","board":"cave-1","seq":58,"user":"alice","id":"alice-0017","op":{"kind":"move","entity":"e9","pos":[3,0,7]}}`},
		{"ev roll", Event("b", 9, "bob", "r1", json.RawMessage(`{"kind":"roll","dice":"2d6+1"}`), json.RawMessage(`{"rolls":[3,5],"total":9}`)),
			`{"t":"ev","board":"b","seq":9,"user":"bob","id":"r1","op":{"kind":"roll","dice":"2d6+1"},"result":{"rolls":[3,5],"total":9}}`},
		{"ev nil op", Event("b", 1, "u", "i", nil, nil),
			`{"t":"ev","board":"b","seq":1,"user":"u","id":"i","op":{}}`},
		{"presence full", PresenceFull("b", []string{"carol", "alice", "bob", "alice"}),
			`{"t":"presence","board":"b","users":["alice","bob","carol"]}`},
		{"presence full empty", PresenceFull("b", nil),
			`{"t":"presence","board":"b","users":[]}`},
		{"presence delta", PresenceDelta("b", []string{"carol"}, []string{"bob"}),
			`{"t":"presence","board":"b","joins":["carol"],"leaves":["bob"]}`},
		{"presence delta empty", PresenceDelta("b", nil, []string{}),
			`{"t":"presence","board":"b","joins":[],"leaves":[]}`},
		{"left", Left(Ref{S: "4", OK: true}, "cave-1"), `{"t":"left","ref":"4","board":"cave-1"}`},
		{"left no ref", Left(Ref{}, "cave-1"), `{"t":"left","board":"cave-1"}`},
		{"pong", Pong(Ref{S: "5", OK: true}), `{"t":"pong","ref":"5"}`},
		{"pong no ref", Pong(Ref{}), `{"t":"pong"}`},
		{"notice", Notice("server restarts in 5 min"), `{"t":"notice","text":"server restarts in 5 min"}`},
		{"error", ErrorMsg(&Error{Code: CodeBadOp, Msg: "move: entity e9 not found", Ref: "3", HasRef: true}),
			`{"t":"error","ref":"3","code":"bad_op","msg":"move: entity e9 not found"}`},
		{"error no ref", ErrorMsg(&Error{Code: CodeBadRequest, Msg: "message is not valid JSON"}),
			`{"t":"error","code":"bad_request","msg":"message is not valid JSON"}`},
		{"escaping", Notice("a\"b\\c\n\t\x01<>&\u2028\xff é 🎲"),
			`{"t":"notice","text":"a\"b\\c\n\t\u0001<>&\u2028\ufffd é 🎲"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fieldsOf(t, tt.got)
			if string(tt.got) != tt.want {
				t.Fatalf("\n got  %s\n want %s", tt.got, tt.want)
			}
		})
	}
}

func TestPresenceDoesNotModifyArgument(t *testing.T) {
	users := []string{"b", "a", "a"}
	PresenceFull("x", users)
	PresenceDelta("x", users, users)
	if !reflect.DeepEqual(users, []string{"b", "a", "a"}) {
		t.Fatalf("argument modified: %v", users)
	}
}

// TestEncodersRoundTrip checks that the documented fields, and only they,
// come back through encoding/json.
func TestEncodersRoundTrip(t *testing.T) {
	s := "weird \"str\" \\ \u0000 \xfe\u2029 ✓"
	want := "weird \"str\" \\ \u0000 \ufffd\u2029 ✓"
	r := Ref{S: s, OK: true}
	check := func(b []byte, expect map[string]any) {
		t.Helper()
		if got := fieldsOf(t, b); !reflect.DeepEqual(got, expect) {
			t.Fatalf("\n got  %#v\n want %#v", got, expect)
		}
	}
	check(Welcome(r, s, s, Limits{MaxFrame: 1, OpsPerSec: 2.5, OpsBurst: 3}), map[string]any{
		"t": "welcome", "ref": want, "user": want, "node": want,
		"limits": map[string]any{"max_frame": 1.0, "ops_per_sec": 2.5, "ops_burst": 3.0}})
	check(Joined(r, s, 1, json.RawMessage(`{"entities":[{"id":"e1"}]}`)), map[string]any{
		"t": "joined", "ref": want, "board": want, "seq": 1.0,
		"snapshot": map[string]any{"entities": []any{map[string]any{"id": "e1"}}}})
	check(Ack(r, s, s, 2, true), map[string]any{"t": "ack", "ref": want, "board": want, "id": want, "seq": 2.0, "dup": true})
	check(Event(s, 3, s, s, json.RawMessage(`{"kind":"chat","text":"hi"}`), json.RawMessage(`{"total":1}`)), map[string]any{
		"t": "ev", "board": want, "seq": 3.0, "user": want, "id": want,
		"op": map[string]any{"kind": "chat", "text": "hi"}, "result": map[string]any{"total": 1.0}})
	check(PresenceFull(s, []string{s}), map[string]any{"t": "presence", "board": want, "users": []any{want}})
	check(PresenceDelta(s, []string{s}, nil), map[string]any{"t": "presence", "board": want, "joins": []any{want}, "leaves": []any{}})
	check(Left(r, s), map[string]any{"t": "left", "ref": want, "board": want})
	check(Pong(r), map[string]any{"t": "pong", "ref": want})
	check(Notice(s), map[string]any{"t": "notice", "text": want})
	check(ErrorMsg(&Error{Code: s, Msg: s, Ref: s, HasRef: true}), map[string]any{"t": "error", "ref": want, "code": want, "msg": want})
}

// TestAppendStringMatchesEncodingJSON compares the string escaping with
// encoding/json's (HTML escaping off) on tricky inputs; FuzzDecode does the
// same on arbitrary ones.
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "\x00\x1f\x7f", "\"\\/", "\b\f\n\r\t", "\u2028\u2029", "\xff\xfe", "\xed\xa0\x80",
		"é🎲", "a\xc3", "<script>&amp;</script>"} {
		if got, want := appendString(nil, s), marshalString(s); !bytes.Equal(got, want) {
			t.Errorf("appendString(%q) = %s, encoding/json %s", s, got, want)
		}
	}
}

func marshalString(s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		panic(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func BenchmarkEvent(b *testing.B) {
	op := json.RawMessage(`{"kind":"move","entity":"e9","pos":[3,0,7]}`)
	b.ReportAllocs()
	for b.Loop() {
		Event("cave-1", 58, "alice", "alice-0017", op, nil)
	}
}
