package rules

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode: Decode never panics and fails only with bad_op; an op it
// accepts applies to a fresh and to populated boards without panicking,
// fails only with bad_op or not_found, and a failed Apply leaves the board
// as it was. Ops are decoded under the default limits and under tiny ones,
// so that small inputs reach every limit.
func FuzzDecode(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "ops", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata/ops: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	tiny := Limits{MaxPutEntities: 3, MaxEntities: 4, MaxPropsBytes: 40, MaxChatChars: 5}
	full := populated(f)
	full.Snapshot()
	fullTiny := full.Clone()
	fullTiny.lim = tiny

	f.Fuzz(func(t *testing.T, data []byte) {
		for _, lim := range []Limits{DefaultLimits(), tiny} {
			op, err := Decode(data, lim)
			if err != nil {
				if c := code(t, err); c != CodeBadOp {
					t.Fatalf("Decode error code %q: %v", c, err)
				}
				continue
			}
			if !json.Valid(op.Raw) {
				t.Fatalf("Raw not valid JSON: %q", op.Raw)
			}
			again, err := Decode(op.Raw, lim)
			if err != nil || string(again.Raw) != string(op.Raw) || again.Kind != op.Kind {
				t.Fatalf("Decode(Raw) = %v; Raw %q", err, op.Raw)
			}
			states := []*State{NewState(lim), full.Clone()}
			if lim == tiny {
				states[1] = fullTiny.Clone()
			}
			for _, st := range states {
				fuzzApply(t, st, op)
			}
		}
	})
}

func fuzzApply(t *testing.T, st *State, op *Op) {
	before := string(st.Snapshot())
	res, err := st.Apply(op, newRand())
	if err != nil {
		if c := code(t, err); c != CodeBadOp && c != CodeNotFound {
			t.Fatalf("Apply error code %q: %v", c, err)
		}
		if res != nil {
			t.Fatalf("result %s with error", res)
		}
		if after := string(st.Snapshot()); after != before {
			t.Fatalf("failed Apply changed the state:\nbefore %s\nafter  %s", before, after)
		}
		return
	}
	if (op.Kind == KindRoll) != (res != nil) {
		t.Fatalf("kind %s, result %s", op.Kind, res)
	}
	if res != nil && !json.Valid(res) {
		t.Fatalf("result not JSON: %s", res)
	}
	if st.Len() > st.lim.MaxEntities {
		t.Fatalf("%d entities, limit %d", st.Len(), st.lim.MaxEntities)
	}
	for id, e := range st.ents {
		if n := propsSize(len(e.props), e.propsBody); n > st.lim.MaxPropsBytes {
			t.Fatalf("entity %s props %d bytes, limit %d", id, n, st.lim.MaxPropsBytes)
		}
	}
	switch op.Kind {
	case KindPut, KindMove, KindPatch, KindDel:
		checkRoundTrip(t, st)
	}
}
