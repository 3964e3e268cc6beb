package board

// frameRing keeps a board's last ev frames, for joins with "since", back
// to back in one byte slice and their ends in another: the GC sees two
// objects, neither with pointers, instead of one per op (up to twice
// replay_keep per busy board, most of a busy node's live heap with the
// op ids; longer GC mark phases are a node's p99 latency).
type frameRing struct {
	buf  []byte
	ends []int // ends[i] is where frame i ends in buf
	last int64 // seq of the last frame (0: none)
}

func (r *frameRing) reset() {
	r.buf, r.ends, r.last = r.buf[:0], r.ends[:0], 0
}

func (r *frameRing) len() int { return len(r.ends) }

// push adds the frame of seq (the one after the last), keeping at least
// keep frames: when twice that many are held, it drops all but the last
// keep-1 at once, so the copying costs O(1) per push.
func (r *frameRing) push(frame []byte, seq int64, keep int) {
	if len(r.ends) >= 2*keep {
		r.dropOldest(len(r.ends) - keep + 1)
	}
	r.buf = append(r.buf, frame...)
	r.ends = append(r.ends, len(r.buf))
	r.last = seq
}

func (r *frameRing) dropOldest(n int) {
	cut := r.ends[n-1]
	r.buf = append(r.buf[:0], r.buf[cut:]...) // overlapping: append moves it as memmove does
	for i := n; i < len(r.ends); i++ {
		r.ends[i-n] = r.ends[i] - cut
	}
	r.ends = r.ends[:len(r.ends)-n]
}

// lastN returns the last n frames (n <= len), as slices of the ring that
// are valid until the next push: copy them before keeping them.
func (r *frameRing) lastN(n int) [][]byte {
	out := make([][]byte, n)
	first := len(r.ends) - n
	for i := range out {
		start := 0
		if first+i > 0 {
			start = r.ends[first+i-1]
		}
		end := r.ends[first+i]
		out[i] = r.buf[start:end:end]
	}
	return out
}
