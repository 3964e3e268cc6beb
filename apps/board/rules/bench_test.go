package rules

import (
	"fmt"
	"testing"
)

// board100k returns a full default board: 100,000 entities, a few props each.
func board100k(b *testing.B) *State {
	b.Helper()
	st := NewState(DefaultLimits())
	for i := 0; i < 100; i++ {
		var ents []byte
		ents = append(ents, `{"kind":"put","entities":[`...)
		for j := 0; j < 1000; j++ {
			if j > 0 {
				ents = append(ents, ',')
			}
			ents = fmt.Appendf(ents, `{"id":"e%d-%d","asset":"goblin","pos":[%d.5,0,%d.25],"rot":90,"props":{"hp":12,"name":"Gob %d","tags":["a","b"]}}`, i, j, i, j, j)
		}
		ents = append(ents, "]}"...)
		mustApply(b, st, string(ents))
	}
	if st.Len() != 100000 {
		b.Fatalf("Len = %d", st.Len())
	}
	return st
}

func BenchmarkApplyMove(b *testing.B) {
	st := board100k(b)
	op := mustDecode(b, `{"kind":"move","entity":"e50-500","pos":[3,0,7],"rot":45}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := st.Apply(op, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeMove(b *testing.B) {
	raw := []byte(`{"kind":"move","entity":"e50-500","pos":[3,0,7],"rot":45}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(raw, DefaultLimits()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSnapshot100k(b *testing.B) {
	st := board100k(b)
	st.Snapshot()
	b.ReportAllocs()
	var n int
	for b.Loop() {
		n = len(st.Snapshot())
	}
	b.ReportMetric(float64(n)/1e6, "MB/snapshot")
}

// BenchmarkSnapshot100kAfterPut measures the worst case: the id order must
// be rebuilt because a put added an id.
func BenchmarkSnapshot100kAfterPut(b *testing.B) {
	st := board100k(b)
	mustApply(b, st, `{"kind":"del","entities":["e0-0"]}`)
	put := mustDecode(b, `{"kind":"put","entities":[{"id":"new","asset":"a","pos":[0,0,0]}]}`)
	del := mustDecode(b, `{"kind":"del","entities":["new"]}`)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		op := put
		if i%2 == 1 {
			op = del
		}
		i++
		if _, err := st.Apply(op, nil); err != nil {
			b.Fatal(err)
		}
		st.Snapshot()
	}
}

func BenchmarkLoadSnapshot100k(b *testing.B) {
	snap := board100k(b).Snapshot()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := LoadSnapshot(snap, DefaultLimits()); err != nil {
			b.Fatal(err)
		}
	}
}
