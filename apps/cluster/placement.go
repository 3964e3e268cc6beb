package cluster

import (
	"hash/fnv"
	"slices"
	"sync/atomic"
)

// Owner picks the node that owns a board: rendezvous (highest random
// weight) hashing of the board id over the live nodes. Every node that
// sees the same live set picks the same owner, and a node joining or
// leaving moves only the boards it gains or held.
func Owner(board string, live []string) string {
	var (
		best  string
		bestW uint64
	)
	for _, n := range live {
		w := weight(n, board)
		if best == "" || w > bestW || (w == bestW && n < best) {
			best, bestW = n, w
		}
	}
	return best
}

func weight(node, board string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(node))
	h.Write([]byte{0})
	h.Write([]byte(board))
	// fnv's low bits mix poorly for similar keys: finish with a mixer.
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// Placement is the live view a node's router reads on every locate: who
// is up right now, as this node's membership sees it.
type Placement struct {
	self string
	live atomic.Pointer[[]string]
}

// NewPlacement starts with this node alone.
func NewPlacement(self string) *Placement {
	p := &Placement{self: self}
	p.set([]string{self})
	return p
}

// Self is this node's name.
func (p *Placement) Self() string { return p.self }

// Live returns the sorted live nodes, this one included.
func (p *Placement) Live() []string { return *p.live.Load() }

// Owner is the owner of a board among the live nodes.
func (p *Placement) Owner(board string) string { return Owner(board, p.Live()) }

// OwnerWithout is the owner if node were down: where to go when the
// owner could not be reached.
func (p *Placement) OwnerWithout(board, node string) string {
	live := p.Live()
	rest := make([]string, 0, len(live))
	for _, n := range live {
		if n != node {
			rest = append(rest, n)
		}
	}
	return Owner(board, rest)
}

// set replaces the live set; it reports whether it changed.
func (p *Placement) set(live []string) bool {
	live = slices.Clone(live)
	slices.Sort(live)
	live = slices.Compact(live)
	if old := p.live.Load(); old != nil && slices.Equal(*old, live) {
		return false
	}
	p.live.Store(&live)
	return true
}
