package rules

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestApply(t *testing.T) {
	cases := []struct {
		name string
		ops  []string // applied in order to populated(); all must succeed
		want string   // the snapshot after
	}{
		{"nothing", nil,
			`{"entities":[{"id":"e1","asset":"orc","pos":[0,0,0],"rot":0,"props":{}},{"id":"e2","asset":"chest","pos":[1,0,2],"rot":180,"props":{"hp":12,"name":"Grok","tags":["loot"]}},{"id":"e3","asset":"door","pos":[5,0,5],"rot":90,"props":{"open":false}}]}`},
		{"move keeps rot", []string{`{"kind":"move","entity":"e2","pos":[3,0,7]}`},
			`{"entities":[{"id":"e1","asset":"orc","pos":[0,0,0],"rot":0,"props":{}},{"id":"e2","asset":"chest","pos":[3,0,7],"rot":180,"props":{"hp":12,"name":"Grok","tags":["loot"]}},{"id":"e3","asset":"door","pos":[5,0,5],"rot":90,"props":{"open":false}}]}`},
		{"move with rot", []string{`{"kind":"move","entity":"e1","pos":[-1.5,0.25,1e21],"rot":-0.5}`},
			`{"entities":[{"id":"e1","asset":"orc","pos":[-1.5,0.25,1e+21],"rot":-0.5,"props":{}},{"id":"e2","asset":"chest","pos":[1,0,2],"rot":180,"props":{"hp":12,"name":"Grok","tags":["loot"]}},{"id":"e3","asset":"door","pos":[5,0,5],"rot":90,"props":{"open":false}}]}`},
		{"put replaces whole entity", []string{`{"kind":"put","entities":[{"id":"e2","asset":"mimic","pos":[9,9,9]}]}`},
			`{"entities":[{"id":"e1","asset":"orc","pos":[0,0,0],"rot":0,"props":{}},{"id":"e2","asset":"mimic","pos":[9,9,9],"rot":0,"props":{}},{"id":"e3","asset":"door","pos":[5,0,5],"rot":90,"props":{"open":false}}]}`},
		{"put last wins", []string{`{"kind":"put","entities":[{"id":"e0","asset":"a","pos":[1,1,1],"props":{"x":1}},{"id":"e0","asset":"b","pos":[2,2,2],"rot":3},{"id":"e3","asset":"c","pos":[0,0,0]},{"id":"e3","asset":"d","pos":[0,0,1]}]}`},
			`{"entities":[{"id":"e0","asset":"b","pos":[2,2,2],"rot":3,"props":{}},{"id":"e1","asset":"orc","pos":[0,0,0],"rot":0,"props":{}},{"id":"e2","asset":"chest","pos":[1,0,2],"rot":180,"props":{"hp":12,"name":"Grok","tags":["loot"]}},{"id":"e3","asset":"d","pos":[0,0,1],"rot":0,"props":{}}]}`},
		{"put empty", []string{`{"kind":"put","entities":[]}`},
			`{"entities":[{"id":"e1","asset":"orc","pos":[0,0,0],"rot":0,"props":{}},{"id":"e2","asset":"chest","pos":[1,0,2],"rot":180,"props":{"hp":12,"name":"Grok","tags":["loot"]}},{"id":"e3","asset":"door","pos":[5,0,5],"rot":90,"props":{"open":false}}]}`},
		{"put keeps null props and sorts keys", []string{`{"kind":"put","entities":[{"id":"e1","asset":"orc","pos":[0,0,0],"props":{"z":null,"a":{"b" : [ 1, 2 ]},"<":"\u0041"}}]}`},
			`{"entities":[{"id":"e1","asset":"orc","pos":[0,0,0],"rot":0,"props":{"<":"\u0041","a":{"b":[1,2]},"z":null}},{"id":"e2","asset":"chest","pos":[1,0,2],"rot":180,"props":{"hp":12,"name":"Grok","tags":["loot"]}},{"id":"e3","asset":"door","pos":[5,0,5],"rot":90,"props":{"open":false}}]}`},
		{"patch merges, null removes, shallow", []string{`{"kind":"patch","entity":"e2","props":{"hp":7,"name":null,"missing":null,"tags":{"t":1},"new":"n"}}`},
			`{"entities":[{"id":"e1","asset":"orc","pos":[0,0,0],"rot":0,"props":{}},{"id":"e2","asset":"chest","pos":[1,0,2],"rot":180,"props":{"hp":7,"new":"n","tags":{"t":1}}},{"id":"e3","asset":"door","pos":[5,0,5],"rot":90,"props":{"open":false}}]}`},
		{"patch remove all", []string{`{"kind":"patch","entity":"e3","props":{"open":null}}`},
			`{"entities":[{"id":"e1","asset":"orc","pos":[0,0,0],"rot":0,"props":{}},{"id":"e2","asset":"chest","pos":[1,0,2],"rot":180,"props":{"hp":12,"name":"Grok","tags":["loot"]}},{"id":"e3","asset":"door","pos":[5,0,5],"rot":90,"props":{}}]}`},
		{"patch empty", []string{`{"kind":"patch","entity":"e3","props":{}}`},
			`{"entities":[{"id":"e1","asset":"orc","pos":[0,0,0],"rot":0,"props":{}},{"id":"e2","asset":"chest","pos":[1,0,2],"rot":180,"props":{"hp":12,"name":"Grok","tags":["loot"]}},{"id":"e3","asset":"door","pos":[5,0,5],"rot":90,"props":{"open":false}}]}`},
		{"del ignores unknown", []string{`{"kind":"del","entities":["e2","e404","e2"]}`},
			`{"entities":[{"id":"e1","asset":"orc","pos":[0,0,0],"rot":0,"props":{}},{"id":"e3","asset":"door","pos":[5,0,5],"rot":90,"props":{"open":false}}]}`},
		{"del empty", []string{`{"kind":"del","entities":[]}`},
			`{"entities":[{"id":"e1","asset":"orc","pos":[0,0,0],"rot":0,"props":{}},{"id":"e2","asset":"chest","pos":[1,0,2],"rot":180,"props":{"hp":12,"name":"Grok","tags":["loot"]}},{"id":"e3","asset":"door","pos":[5,0,5],"rot":90,"props":{"open":false}}]}`},
		{"del all then put", []string{`{"kind":"del","entities":["e1","e2","e3"]}`, `{"kind":"put","entities":[{"id":"x","asset":"a\"b\\c\n\u0001é","pos":[0.1,1e-7,-0]}]}`},
			`{"entities":[{"id":"x","asset":"a\"b\\c\n\u0001é","pos":[0.1,1e-7,-0],"rot":0,"props":{}}]}`},
		{"chat and roll change nothing", []string{`{"kind":"chat","text":"hi"}`, `{"kind":"roll","dice":"3d8-2"}`},
			`{"entities":[{"id":"e1","asset":"orc","pos":[0,0,0],"rot":0,"props":{}},{"id":"e2","asset":"chest","pos":[1,0,2],"rot":180,"props":{"hp":12,"name":"Grok","tags":["loot"]}},{"id":"e3","asset":"door","pos":[5,0,5],"rot":90,"props":{"open":false}}]}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := populated(t)
			for _, o := range c.ops {
				mustApply(t, st, o)
			}
			if got := string(st.Snapshot()); got != c.want {
				t.Errorf("snapshot\n got %s\nwant %s", got, c.want)
			}
			checkRoundTrip(t, st)
		})
	}
}

func TestEmptySnapshot(t *testing.T) {
	st := NewState(Limits{})
	if got := string(st.Snapshot()); got != `{"entities":[]}` {
		t.Errorf("empty snapshot = %s", got)
	}
	checkRoundTrip(t, st)
}

// TestApplyErrors checks not_found and the board limits, and that a failed
// op leaves the snapshot byte-identical.
func TestApplyErrors(t *testing.T) {
	cases := []struct {
		name, op, code, msg string
	}{
		{"move missing", `{"kind":"move","entity":"e9","pos":[3,0,7]}`, CodeNotFound, "move: entity e9 not found"},
		{"move missing with rot", `{"kind":"move","entity":"e9","pos":[3,0,7],"rot":1}`, CodeNotFound, "move: entity e9 not found"},
		{"patch missing", `{"kind":"patch","entity":"ghost","props":{"a":1}}`, CodeNotFound, "patch: entity ghost not found"},
		{"patch missing empty", `{"kind":"patch","entity":"ghost","props":{}}`, CodeNotFound, "patch: entity ghost not found"},
		{"patch props over", `{"kind":"patch","entity":"e3","props":{"open":null,"p":"` + strings.Repeat("x", 65536-7) + `"}}`, CodeBadOp, "patch: props of entity e3 would be 65537 bytes, limit 65536"},
		{"patch props grow over", `{"kind":"patch","entity":"e3","props":{"p":"` + strings.Repeat("x", 65536-8-len(`,"open":false`)+1) + `"}}`, CodeBadOp, "limit 65536"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := populated(t)
			before := string(st.Snapshot())
			op := mustDecode(t, c.op)
			res, err := st.Apply(op, newRand())
			if res != nil {
				t.Errorf("result %s on error", res)
			}
			if got := code(t, err); got != c.code {
				t.Fatalf("error %v, want code %s", err, c.code)
			}
			if msg := err.(*Error).Msg; !strings.Contains(msg, c.msg) {
				t.Errorf("Msg = %q, want %q", msg, c.msg)
			}
			if after := string(st.Snapshot()); after != before {
				t.Errorf("state changed by a failed op:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
	st := populated(t)
	_, err := st.Apply(mustDecode(t, `{"kind":"move","entity":"e9","pos":[3,0,7]}`), nil)
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrBadOp) {
		t.Errorf("errors.Is mismatch for %v", err)
	}
	if !errors.Is(err, &Error{Code: CodeNotFound, Msg: "move: entity e9 not found"}) {
		t.Errorf("errors.Is with message mismatch for %v", err)
	}
	if err.Error() != "not_found: move: entity e9 not found" {
		t.Errorf("Error() = %q", err.Error())
	}
	if _, err := st.Apply(nil, nil); code(t, err) != CodeBadOp {
		t.Errorf("Apply(nil) = %v, want bad_op", err)
	}
	if _, err := st.Apply(&Op{Kind: "nope"}, nil); code(t, err) != CodeBadOp {
		t.Errorf("Apply(unknown kind) = %v, want bad_op", err)
	}
}

func TestPatchPropsLimit(t *testing.T) {
	st := NewState(DefaultLimits())
	mustApply(t, st, `{"kind":"put","entities":[{"id":"e1","asset":"a","pos":[0,0,0],"props":{"k":1}}]}`)
	// {"k":1,"p":"xxx"}: 8 bytes for {"p":""}, 6 for "k":1 and its comma.
	at := `{"kind":"patch","entity":"e1","props":{"p":"` + strings.Repeat("x", 65536-8-6) + `"}}`
	over := `{"kind":"patch","entity":"e1","props":{"p":"` + strings.Repeat("x", 65536-8-6+1) + `"}}`
	before := string(st.Snapshot())
	if _, err := st.Apply(mustDecode(t, over), nil); code(t, err) != CodeBadOp {
		t.Fatalf("one over: %v, want bad_op", err)
	}
	if string(st.Snapshot()) != before {
		t.Fatal("failed patch changed the state")
	}
	mustApply(t, st, at)
	if n := propsLen(t, st, "e1"); n != 65536 {
		t.Fatalf("props are %d bytes, want 65536", n)
	}
	// Replacing a value by a same-size one at the limit is fine; one byte more is not.
	mustApply(t, st, `{"kind":"patch","entity":"e1","props":{"k":2}}`)
	if _, err := st.Apply(mustDecode(t, `{"kind":"patch","entity":"e1","props":{"k":22}}`), nil); code(t, err) != CodeBadOp {
		t.Fatalf("grow by one: %v, want bad_op", err)
	}
	// Removing one and adding another in the same patch counts the result.
	mustApply(t, st, `{"kind":"patch","entity":"e1","props":{"k":null,"j":3}}`)
	if n := propsLen(t, st, "e1"); n != 65536 {
		t.Fatalf("props are %d bytes, want 65536", n)
	}
	mustApply(t, st, `{"kind":"patch","entity":"e1","props":{"p":null}}`)
	if n := propsLen(t, st, "e1"); n != len(`{"j":3}`) {
		t.Fatalf("props are %d bytes, want 7", n)
	}
	// Keys count escaped as the snapshot writes them.
	mustApply(t, st, `{"kind":"patch","entity":"e1","props":{"j":null,"a\"\n\u0001":1}}`)
	if n := propsLen(t, st, "e1"); n != len(`{"a\"\n\u0001":1}`) {
		t.Fatalf("props are %d bytes, want %d", n, len(`{"a\"\n\u0001":1}`))
	}
}

// propsLen measures an entity's props in the snapshot and checks the
// incremental count against it.
func propsLen(t *testing.T, st *State, id string) int {
	t.Helper()
	var snap struct {
		Entities []struct {
			ID    string          `json:"id"`
			Props json.RawMessage `json:"props"`
		} `json:"entities"`
	}
	if err := json.Unmarshal(st.Snapshot(), &snap); err != nil {
		t.Fatal(err)
	}
	for _, e := range snap.Entities {
		if e.ID == id {
			got := propsSize(len(st.ents[id].props), st.ents[id].propsBody)
			if got != len(e.Props) {
				t.Fatalf("counted %d bytes, snapshot has %d: %s", got, len(e.Props), trunc(string(e.Props)))
			}
			return len(e.Props)
		}
	}
	t.Fatalf("no entity %s", id)
	return 0
}

func TestMaxEntities(t *testing.T) {
	lim := DefaultLimits()
	st := NewState(lim)
	for i := 0; i < 99; i++ {
		mustApply(t, st, putOf("b"+strconv.Itoa(i)+"x", 1000))
	}
	mustApply(t, st, putOf("last", 999))
	if st.Len() != 99999 {
		t.Fatalf("Len = %d", st.Len())
	}
	// exactly at the limit: one new id, repeated, plus replacements
	mustApply(t, st, `{"kind":"put","entities":[{"id":"new","asset":"a","pos":[0,0,0]},{"id":"new","asset":"b","pos":[0,0,0]},{"id":"last0","asset":"r","pos":[0,0,0]}]}`)
	if st.Len() != 100000 {
		t.Fatalf("Len = %d", st.Len())
	}
	before := string(st.Snapshot())
	// one over, even when the op also replaces existing entities
	_, err := st.Apply(mustDecode(t, `{"kind":"put","entities":[{"id":"last1","asset":"changed","pos":[0,0,0]},{"id":"over","asset":"a","pos":[0,0,0]}]}`), nil)
	if code(t, err) != CodeBadOp || !strings.Contains(err.Error(), "100001 entities, limit 100000") {
		t.Fatalf("one over: %v", err)
	}
	if string(st.Snapshot()) != before {
		t.Fatal("failed put changed the state")
	}
	// replacing at the limit is fine, and so is putting after a del
	mustApply(t, st, `{"kind":"put","entities":[{"id":"new","asset":"c","pos":[1,0,0]}]}`)
	mustApply(t, st, `{"kind":"del","entities":["new"]}`)
	mustApply(t, st, `{"kind":"put","entities":[{"id":"over","asset":"a","pos":[0,0,0]}]}`)
	if st.Len() != 100000 {
		t.Fatalf("Len = %d", st.Len())
	}

	small := NewState(Limits{MaxEntities: 2})
	mustApply(t, small, putOf("e", 2))
	if _, err := small.Apply(mustDecode(t, putOf("f", 1)), nil); code(t, err) != CodeBadOp {
		t.Fatalf("custom limit: %v", err)
	}
}

// TestApplyLimitsOfState: Apply enforces the state's own limits even when
// the op was decoded with larger ones.
func TestApplyLimitsOfState(t *testing.T) {
	st := NewState(Limits{MaxPutEntities: 1, MaxPropsBytes: 8})
	if _, err := st.Apply(mustDecode(t, putOf("e", 2)), nil); code(t, err) != CodeBadOp {
		t.Errorf("put of 2: %v", err)
	}
	if _, err := st.Apply(mustDecode(t, `{"kind":"put","entities":[{"id":"e","asset":"a","pos":[0,0,0],"props":{"p":"x"}}]}`), nil); code(t, err) != CodeBadOp {
		t.Errorf("props of 9: %v", err)
	}
	mustApply(t, st, `{"kind":"put","entities":[{"id":"e","asset":"a","pos":[0,0,0],"props":{"p":""}}]}`)
}

// TestOpReuse: one op applied to two states, then a patch on one, leaves the
// other alone (no shared maps).
func TestOpReuse(t *testing.T) {
	put := mustDecode(t, `{"kind":"put","entities":[{"id":"e1","asset":"a","pos":[0,0,0],"props":{"a":1}}]}`)
	a, b := NewState(Limits{}), NewState(Limits{})
	for _, st := range []*State{a, b} {
		if _, err := st.Apply(put, nil); err != nil {
			t.Fatal(err)
		}
	}
	mustApply(t, a, `{"kind":"patch","entity":"e1","props":{"a":null,"b":2}}`)
	if got := string(b.Snapshot()); got != `{"entities":[{"id":"e1","asset":"a","pos":[0,0,0],"rot":0,"props":{"a":1}}]}` {
		t.Errorf("b changed: %s", got)
	}
	c := NewState(Limits{})
	if _, err := c.Apply(put, nil); err != nil {
		t.Fatal(err)
	}
	if got := string(c.Snapshot()); got != string(b.Snapshot()) {
		t.Errorf("op changed by a patch elsewhere: %s", got)
	}
}

func TestCloneAndGet(t *testing.T) {
	st := populated(t)
	st.Snapshot() // warm the sorted cache
	c := st.Clone()
	mustApply(t, c, `{"kind":"patch","entity":"e2","props":{"hp":1}}`)
	mustApply(t, c, `{"kind":"move","entity":"e1","pos":[1,1,1]}`)
	mustApply(t, c, `{"kind":"put","entities":[{"id":"e0","asset":"a","pos":[0,0,0]}]}`)
	if string(st.Snapshot()) == string(c.Snapshot()) {
		t.Fatal("clone shares state")
	}
	if string(st.Snapshot()) != string(populated(t).Snapshot()) {
		t.Fatal("original changed by its clone")
	}
	e, ok := st.Get("e2")
	if !ok || e.ID != "e2" || e.Asset != "chest" || e.Pos != [3]float64{1, 0, 2} || e.Rot != 180 || string(e.Props["name"]) != `"Grok"` {
		t.Fatalf("Get = %+v, %v", e, ok)
	}
	e.Props["name"] = json.RawMessage(`"changed"`)
	if e2, _ := st.Get("e2"); string(e2.Props["name"]) != `"Grok"` {
		t.Fatal("Get returned shared props")
	}
	if e, ok := st.Get("e1"); !ok || e.Props == nil {
		t.Fatalf("Get props nil: %+v", e)
	}
	if _, ok := st.Get("nope"); ok {
		t.Fatal("Get of a missing entity")
	}
	if st.Limits() != DefaultLimits() {
		t.Fatal("Limits")
	}
}
