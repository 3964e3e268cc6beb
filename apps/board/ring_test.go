package board

import (
	"fmt"
	"strings"
	"testing"
)

func TestFrameRingKeepsTheLastFramesInOrder(t *testing.T) {
	const keep = 5
	var r frameRing
	frame := func(seq int) []byte { return []byte(fmt.Sprintf("ev%d%s", seq, strings.Repeat("x", seq%7))) }
	for seq := 1; seq <= 103; seq++ {
		r.push(frame(seq), int64(seq), keep)
		if r.last != int64(seq) || r.len() < min(seq, keep) || r.len() > 2*keep {
			t.Fatalf("after %d: last %d, %d frames", seq, r.last, r.len())
		}
		got := r.lastN(min(seq, keep))
		for i, f := range got {
			want := frame(seq - len(got) + 1 + i)
			if string(f) != string(want) {
				t.Fatalf("after %d: frame %d is %q, want %q", seq, i, f, want)
			}
		}
	}
	// What lastN returns cannot grow into the next frame.
	got := r.lastN(2)
	got[0] = append(got[0], '!')
	if string(r.lastN(1)[0]) != string(frame(103)) {
		t.Fatal("appending to a returned frame wrote over the ring")
	}
	r.reset()
	if r.len() != 0 || r.last != 0 {
		t.Fatal("reset kept frames")
	}
}
