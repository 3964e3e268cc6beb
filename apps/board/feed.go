package board

import (
	"sync"
	"sync/atomic"

	"github.com/ergo-services/ergo/etf"

	"github.com/tavernhq/tavern/apps/gateway/wire"
)

// Feed is the short way from a board actor to one member's connection
// on the same node: the board writes an event's frame into the
// connection's queue itself instead of sending it to the member's process,
// which would copy it there. At 8 members a board, that message was most
// of a node's messages and a good part of its CPU (docs/BENCHMARKS.md).
//
// The member (its process, through Member) stays in charge: the board
// takes the short way only while the member has opened the feed (joined,
// nothing held back) and nothing of this board waits in the member's
// mailbox (pending), and only for the event that follows the last one the
// client got (lastSeq). Otherwise the board sends the message as before,
// counted in pending, and the member handles it in order. So the client's
// stream stays exactly as the messages alone would make it: in seq order,
// no gap, no duplicate, presence changes in their place.
//
// Both sides hold mu: the board while it writes, the member while it reads
// or moves lastSeq and opens or closes the feed.
type Feed struct {
	id  uint64 // stamped on the messages counted in pending
	out Output // the connection; safe for concurrent use

	mu      sync.Mutex
	lastSeq int64 // the last event the client got or will get next
	open    bool
	pending int // messages of this feed in the member's mailbox
}

var feedIDs atomic.Uint64

// newFeed returns a closed feed writing to out (nil: a member without a
// connection of its own, whose feed only keeps lastSeq).
func newFeed(out Output) *Feed {
	return &Feed{id: feedIDs.Add(1), out: out}
}

// FeedRef names a feed's counted message that never reached the member
// (gateway_overflow dropped it): Member.Released makes up for it.
type FeedRef struct {
	Board string
	Feed  uint64
}

// JoinLocal is Join from a member on the board's own node that offers its
// Feed. It is never sent between nodes (a pointer has no ETF form).
type JoinLocal struct {
	Join
	Feed *Feed
}

// last and setLast are lastSeq for the member.
func (f *Feed) last() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastSeq
}

func (f *Feed) setLast(seq int64) {
	f.mu.Lock()
	f.lastSeq = seq
	f.mu.Unlock()
}

// advance moves lastSeq to seq if seq is the next event: the member's
// message path, which the board does not race (pending > 0).
func (f *Feed) advance(seq int64) (dup, next bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case seq <= f.lastSeq:
		return true, false
	case seq == f.lastSeq+1:
		f.lastSeq = seq
		return false, true
	}
	return false, false
}

func (f *Feed) setOpen(open bool) {
	f.mu.Lock()
	f.open = open && f.out != nil
	f.mu.Unlock()
}

// done: the member has handled a counted message.
func (f *Feed) done(n int) {
	f.mu.Lock()
	f.pending -= n
	f.mu.Unlock()
}

// count: the board sends a message of this feed.
func (f *Feed) count() {
	f.mu.Lock()
	f.pending++
	f.mu.Unlock()
}

// Board side. Each try writes what it was given and reports true, or
// counts the message the caller must now send and reports false.

// tryEvents writes the events first, first+1, ... when they follow the
// client's last one.
func (f *Feed) tryEvents(first int64, frames [][]byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.open || f.pending > 0 || first != f.lastSeq+1 {
		f.pending++
		return false
	}
	for _, frame := range frames {
		if !f.out.Send(frame) {
			f.tooSlow()
			return true
		}
		f.lastSeq++
	}
	return true
}

// tryFrame writes a frame that has no seq (a presence change).
func (f *Feed) tryFrame(frame []byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.open || f.pending > 0 {
		f.pending++
		return false
	}
	if !f.out.Send(frame) {
		f.tooSlow()
	}
	return true
}

// tooSlow: the client's queue is full. It cannot be kept gap-free, so it
// is closed with 1013 and resumes with since, as a member would do.
func (f *Feed) tooSlow() {
	f.open = false
	f.out.Close(wire.CloseTryAgain, "client too slow")
}

// feedDirect is how one delivery to a member with a feed goes.
type feedDirect struct {
	authors []string // users of the events: their own connections take the message way
	// unknown: the authors are not known (events replayed at a reload),
	// so every member gets them the message way.
	unknown bool
	try     func(f *Feed) bool
	stamp   func(id uint64) etf.Term // the message, counted on feed id
}

func (d *feedDirect) byAuthor(user string) bool {
	if d.unknown {
		return true
	}
	for _, a := range d.authors {
		if a == user {
			return true
		}
	}
	return false
}
