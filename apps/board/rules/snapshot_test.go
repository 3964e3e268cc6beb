package rules

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

// checkRoundTrip checks LoadSnapshot(Snapshot()) gives an identical
// snapshot, and that the snapshot reads back with encoding/json to the same
// entities Get returns.
func checkRoundTrip(t testing.TB, st *State) {
	t.Helper()
	snap := st.Snapshot()
	if !json.Valid(snap) {
		t.Fatalf("snapshot is not valid JSON: %s", trunc(string(snap)))
	}
	st2, err := LoadSnapshot(snap, st.Limits())
	if err != nil {
		t.Fatalf("LoadSnapshot: %v", err)
	}
	if got := st2.Snapshot(); string(got) != string(snap) {
		t.Fatalf("round trip differs:\n got %s\nwant %s", trunc(string(got)), trunc(string(snap)))
	}
	if st2.Len() != st.Len() {
		t.Fatalf("Len %d != %d", st2.Len(), st.Len())
	}
	var decoded struct {
		Entities []Entity `json:"entities"`
	}
	if err := json.Unmarshal(snap, &decoded); err != nil {
		t.Fatalf("encoding/json cannot read the snapshot: %v", err)
	}
	for i, e := range decoded.Entities {
		if i > 0 && decoded.Entities[i-1].ID >= e.ID {
			t.Fatalf("not sorted: %s before %s", decoded.Entities[i-1].ID, e.ID)
		}
		g, ok := st.Get(e.ID)
		if !ok || g.Asset != e.Asset || g.Pos != e.Pos || g.Rot != e.Rot || len(g.Props) != len(e.Props) {
			t.Fatalf("entity %s: snapshot %+v, Get %+v", e.ID, e, g)
		}
		for k, v := range g.Props {
			if string(e.Props[k]) != string(v) {
				t.Fatalf("entity %s prop %q: snapshot %s, Get %s", e.ID, k, e.Props[k], v)
			}
		}
		if n := propsSize(len(st2.ents[e.ID].props), st2.ents[e.ID].propsBody); n != propsSize(len(st.ents[e.ID].props), st.ents[e.ID].propsBody) {
			t.Fatalf("entity %s: props size %d after load, want the same", e.ID, n)
		}
	}
}

func TestSnapshotNumbers(t *testing.T) {
	nums := []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 1e-6, 1e-7, 123456789, 1e20, 1e21, 1.7976931348623157e308, 5e-324, -2.5e-10, 1.0 / 3}
	st := NewState(Limits{})
	for i, f := range nums {
		b, _ := json.Marshal(f)
		mustApply(t, st, `{"kind":"put","entities":[{"id":"n`+string(rune('a'+i))+`","asset":"a","pos":[`+string(b)+`,0,0],"rot":`+string(b)+`}]}`)
		e, _ := st.Get("n" + string(rune('a'+i)))
		if math.Float64bits(e.Pos[0]) != math.Float64bits(f) || math.Float64bits(e.Rot) != math.Float64bits(f) {
			t.Errorf("%v read as %v", f, e.Pos[0])
		}
		// The snapshot writes numbers as encoding/json does.
		if got := string(appendFloat(nil, f)); got != string(b) {
			t.Errorf("appendFloat(%v) = %s, encoding/json %s", f, got, b)
		}
	}
	checkRoundTrip(t, st)
}

func TestSnapshotStrings(t *testing.T) {
	st := NewState(Limits{})
	assets := []string{"", "plain", `q"uote`, `back\slash`, "ctl\x00\x01\x1f\x7f", "\b\f\n\r\t", "<html>&amp;", "é🎲", "\u2028\u2029", "\ufffd"}
	for i, a := range assets {
		b, _ := json.Marshal(a)
		mustApply(t, st, `{"kind":"put","entities":[{"id":"s`+string(rune('a'+i))+`","asset":`+string(b)+`,"pos":[0,0,0],"props":{`+string(b)+`:`+string(b)+`}}]}`)
		e, _ := st.Get("s" + string(rune('a'+i)))
		if e.Asset != a {
			t.Errorf("asset %q read as %q", a, e.Asset)
		}
		if got, want := quotedLen(a), len(appendString(nil, a)); got != want {
			t.Errorf("quotedLen(%q) = %d, want %d", a, got, want)
		}
		var back string
		if err := json.Unmarshal(appendString(nil, a), &back); err != nil || back != a {
			t.Errorf("appendString(%q) reads back as %q, %v", a, back, err)
		}
	}
	checkRoundTrip(t, st)
}

func TestSnapshotCacheAfterChanges(t *testing.T) {
	st := populated(t)
	s1 := string(st.Snapshot())
	mustApply(t, st, `{"kind":"del","entities":["e2"]}`)
	mustApply(t, st, `{"kind":"put","entities":[{"id":"e2","asset":"chest","pos":[1,0,2],"rot":180,"props":{"hp":12,"name":"Grok","tags":["loot"]}}]}`)
	if s2 := string(st.Snapshot()); s2 != s1 {
		t.Fatalf("del+put changed the snapshot:\n%s\n%s", s1, s2)
	}
	mustApply(t, st, `{"kind":"put","entities":[{"id":"a0","asset":"x","pos":[0,0,0]}]}`)
	if s3 := string(st.Snapshot()); !strings.HasPrefix(s3, `{"entities":[{"id":"a0"`) {
		t.Fatalf("new id missing or unsorted: %s", s3)
	}
	mustApply(t, st, `{"kind":"put","entities":[{"id":"a0","asset":"y","pos":[0,0,0]}]}`)
	if s3 := string(st.Snapshot()); !strings.HasPrefix(s3, `{"entities":[{"id":"a0","asset":"y"`) {
		t.Fatalf("replacing put not seen: %s", s3)
	}
	mustApply(t, st, `{"kind":"del","entities":["a0"]}`)
	if s4 := string(st.Snapshot()); s4 != s1 {
		t.Fatalf("after del: %s", s4)
	}
	// Sorting is by bytes: uppercase, digits, '-' and '_' in ASCII order.
	st = NewState(Limits{})
	mustApply(t, st, `{"kind":"put","entities":[{"id":"b","asset":"","pos":[0,0,0]},{"id":"_","asset":"","pos":[0,0,0]},{"id":"B","asset":"","pos":[0,0,0]},{"id":"-","asset":"","pos":[0,0,0]},{"id":"1","asset":"","pos":[0,0,0]}]}`)
	var ids []string
	for _, part := range strings.Split(string(st.Snapshot()), `{"id":"`)[1:] {
		ids = append(ids, part[:strings.IndexByte(part, '"')])
	}
	if got := strings.Join(ids, " "); got != "- 1 B _ b" {
		t.Errorf("order = %s", got)
	}
}

func TestLoadSnapshotLenient(t *testing.T) {
	// rot and props may be absent; whitespace and key order do not matter;
	// limits are not enforced on load.
	in := ` { "entities" : [ {"pos":[1,2,3],"asset":"a","id":"e2"} , {"id":"e1","asset":"b","pos":[0,0,0],"rot":5,"props":{"p":"` + strings.Repeat("x", 100) + `"}} ] , "seq": 5 }`
	st, err := LoadSnapshot([]byte(in), Limits{MaxEntities: 1, MaxPropsBytes: 10})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"entities":[{"id":"e1","asset":"b","pos":[0,0,0],"rot":5,"props":{"p":"` + strings.Repeat("x", 100) + `"}},{"id":"e2","asset":"a","pos":[1,2,3],"rot":0,"props":{}}]}`
	if got := string(st.Snapshot()); got != want {
		t.Errorf("got %s", got)
	}
	// but ops meet the limits
	if _, err := st.Apply(mustDecode(t, `{"kind":"put","entities":[{"id":"e3","asset":"a","pos":[0,0,0]}]}`), nil); code(t, err) != CodeBadOp {
		t.Errorf("put over the limit: %v", err)
	}
}

func TestLoadSnapshotBad(t *testing.T) {
	cases := []struct{ name, in, msg string }{
		{"empty", ``, "not valid JSON"},
		{"not object", `[]`, "expected a JSON object"},
		{"no entities", `{}`, "entities: missing"},
		{"entities null", `{"entities":null}`, "entities: expected a list"},
		{"entity not object", `{"entities":[1]}`, "entities[0]: expected an object"},
		{"bad id", `{"entities":[{"id":"a b","asset":"a","pos":[0,0,0]}]}`, "entities[0].id: invalid id"},
		{"no asset", `{"entities":[{"id":"a","pos":[0,0,0]}]}`, "entities[0].asset: missing"},
		{"bad pos", `{"entities":[{"id":"a","asset":"a","pos":[0,0]}]}`, "entities[0].pos: expected three numbers"},
		{"bad rot", `{"entities":[{"id":"a","asset":"a","pos":[0,0,0],"rot":null}]}`, "entities[0].rot: expected a number"},
		{"bad props", `{"entities":[{"id":"a","asset":"a","pos":[0,0,0],"props":[]}]}`, "entities[0].props: expected an object"},
		{"duplicate id", `{"entities":[{"id":"a","asset":"a","pos":[0,0,0]},{"id":"a","asset":"a","pos":[0,0,0]}]}`, "entities[1].id: a listed twice"},
		{"duplicate key", `{"entities":[{"id":"a","asset":"a","asset":"b","pos":[0,0,0]}]}`, "duplicate key"},
		{"invalid utf8", "{\"entities\":[{\"id\":\"a\",\"asset\":\"\xc3\",\"pos\":[0,0,0]}]}", "not valid UTF-8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadSnapshot([]byte(c.in), Limits{})
			if !errors.Is(err, ErrBadSnapshot) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err = %v, want ErrBadSnapshot with %q", err, c.msg)
			}
		})
	}
}
