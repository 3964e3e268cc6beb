package board

import (
	"fmt"
	"testing"
)

// recordOut is an Output that keeps what it was given.
type recordOut struct {
	frames []string
	room   int // frames it takes before it is "full"
	closed int
}

func (o *recordOut) Send(frame []byte) bool {
	if len(o.frames) >= o.room {
		return false
	}
	o.frames = append(o.frames, string(frame))
	return true
}

func (o *recordOut) Close(code int, _ string) { o.closed = code }

func TestFeedTakesTheShortWayOnlyWhenNothingWaits(t *testing.T) {
	out := &recordOut{room: 3}
	f := newFeed(out)
	f.setLast(10)

	if f.tryEvents(11, [][]byte{[]byte("e11")}) || f.pending != 1 {
		t.Fatalf("a closed feed wrote (pending %d)", f.pending)
	}
	f.done(1)
	f.setOpen(true)
	if !f.tryEvents(11, [][]byte{[]byte("e11")}) || f.last() != 11 {
		t.Fatalf("an open feed with nothing waiting did not write e11 (last %d)", f.last())
	}
	if f.tryEvents(13, [][]byte{[]byte("e13")}) || f.pending != 1 {
		t.Fatal("a feed wrote past a gap")
	}
	// e13 waits in the mailbox now: neither an event nor a presence
	// change may overtake it.
	if f.tryEvents(12, [][]byte{[]byte("e12")}) || f.tryFrame([]byte("p")) || f.pending != 3 {
		t.Fatalf("a feed wrote while its messages wait (pending %d)", f.pending)
	}
	f.done(3)
	if !f.tryEvents(12, [][]byte{[]byte("e12"), []byte("e13")}) || f.last() != 13 {
		t.Fatalf("events 12-13 not written (last %d)", f.last())
	}
	if fmt.Sprint(out.frames) != "[e11 e12 e13]" {
		t.Fatalf("written %v", out.frames)
	}
	// The queue is full: the client is closed (1013) and nothing is lost
	// silently: the feed closes.
	if !f.tryEvents(14, [][]byte{[]byte("e14")}) || out.closed != 1013 || f.open {
		t.Fatalf("full queue: closed %d, open %v", out.closed, f.open)
	}
	if f.tryFrame([]byte("p")) {
		t.Fatal("a feed closed by a full queue wrote")
	}

	if none := newFeed(nil); func() bool { none.setOpen(true); return none.open }() {
		t.Fatal("a feed without a connection opened")
	}
}

func TestMemberClosesFeedsWhileHeldAndUncountsDrops(t *testing.T) {
	m := NewMember("alice", &recordOut{room: 10}, 0)
	m.Direct = &recordOut{room: 10}
	a := &membership{board: "a", phase: joined, local: true, feed: newFeed(m.Direct)}
	b := &membership{board: "b", phase: joined, local: false, feed: newFeed(m.Direct)}
	m.boards["a"], m.boards["b"] = a, b
	m.syncFeed(a)
	m.syncFeed(b)
	if !a.feed.open || b.feed.open {
		t.Fatalf("open: local %v, remote %v", a.feed.open, b.feed.open)
	}
	m.SetHeld(true)
	if a.feed.open {
		t.Fatal("a feed stayed open while the session holds frames back")
	}
	m.SetHeld(false)
	if !a.feed.open {
		t.Fatal("the feed did not reopen after the hold")
	}

	a.feed.pending = 2
	m.Released([]FeedRef{{Board: "a", Feed: a.feed.id}, {Board: "a", Feed: a.feed.id + 1000}, {Board: "b", Feed: a.feed.id}})
	if a.feed.pending != 1 {
		t.Fatalf("pending %d after one drop of this feed (others named other feeds)", a.feed.pending)
	}
}

// A board writes to a member's connection itself while nothing of it
// waits in the member's mailbox; once something does, everything after
// it waits its turn there, presence changes included.
func TestFeedKeepsTheOrderOfTheMailbox(t *testing.T) {
	tn := startNode(t, sqliteDSN(t), nil)
	probe := tn.probe()
	alice, alice2, bob := tn.client("alice"), tn.client("alice"), tn.client("bob")
	for _, c := range []*client{alice, alice2, bob} {
		c.join("hall", -1, "")
		c.until("joined", nil)
		c.expect("presence")
	}
	joinsBob := func(m map[string]any) bool { return fmt.Sprint(m["joins"]) == "[bob]" }
	alice.until("presence", joinsBob)
	alice2.until("presence", joinsBob)
	alice.opUntilAck("hall", "a1", put("e1", 1))
	for _, c := range []*client{alice, alice2, bob} {
		c.until("ev", nil)
	}

	// bob's process is held: an ev of alice still reaches bob, by the feed.
	release := bob.block(probe)
	alice.opUntilAck("hall", "a2", put("e2", 2))
	if e := bob.until("ev", nil); seqOf(e) != 2 {
		t.Fatalf("bob: %v", e)
	}
	release()
	alice.until("ev", nil)
	if bob.direct.Load() == 0 {
		t.Fatal("no frame came to bob through his feed")
	}

	// alice2 is alice too: alice's evs come to it by message (after the
	// ack, on a connection of hers). Held, it must get nothing before
	// them: not carol's arrival, not carol's ev.
	alice2.until("ev", func(m map[string]any) bool { return seqOf(m) == 2 })
	release = alice2.block(probe)
	alice.opUntilAck("hall", "a3", put("e3", 3))
	alice.until("ev", nil)
	carol := tn.client("carol")
	carol.join("hall", -1, "")
	carol.until("joined", nil)
	carol.expect("presence")
	carol.opUntilAck("hall", "c1", put("e4", 4))
	bob.until("ev", func(m map[string]any) bool { return seqOf(m) == 4 })
	alice2.nothingYet()
	release()
	if e := alice2.expect("ev"); seqOf(e) != 3 {
		t.Fatalf("alice2 first: %v", e)
	}
	if p := alice2.expect("presence"); fmt.Sprint(p["joins"]) != "[carol]" {
		t.Fatalf("alice2 second: %v", p)
	}
	if e := alice2.expect("ev"); seqOf(e) != 4 || e["user"] != "carol" {
		t.Fatalf("alice2 third: %v", e)
	}
}
