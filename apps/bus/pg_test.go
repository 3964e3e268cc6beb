package bus

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"testing"

	"github.com/ergo-services/ergo/etf"
)

// fakeFx records what the pg state machine does.
type fakeFx struct {
	me      etf.Pid
	nextRef uint32
	log     []string
}

func (f *fakeFx) self() etf.Pid { return f.me }
func (f *fakeFx) monitor(pid etf.Pid) etf.Ref {
	f.nextRef++
	f.log = append(f.log, fmt.Sprintf("monitor %d", pid.ID))
	return etf.Ref{Node: f.me.Node, ID: [5]uint32{f.nextRef}}
}
func (f *fakeFx) send(to etf.Pid, msg etf.Term) {
	f.log = append(f.log, fmt.Sprintf("send %d %s", to.ID, show(msg)))
}
func (f *fakeFx) cast(to etf.Pid, msg etf.Term) {
	f.log = append(f.log, fmt.Sprintf("cast %d %s", to.ID, show(msg)))
}
func (f *fakeFx) sendScope(node string, msg etf.Term) {
	f.log = append(f.log, fmt.Sprintf("scope %s %s", node, show(msg)))
}
func (f *fakeFx) take() []string { l := f.log; f.log = nil; return l }

// show renders terms compactly: pids as their ID, lists sorted.
func show(t etf.Term) string {
	switch v := t.(type) {
	case etf.Pid:
		return fmt.Sprint(v.ID)
	case etf.Atom:
		return string(v)
	case etf.Tuple:
		s := "{"
		for i, e := range v {
			if i > 0 {
				s += ","
			}
			s += show(e)
		}
		return s + "}"
	case etf.List:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = show(e)
		}
		sort.Strings(parts)
		s := "["
		for i, p := range parts {
			if i > 0 {
				s += ","
			}
			s += p
		}
		return s + "]"
	}
	return fmt.Sprint(t)
}

func pid(node string, id uint64) etf.Pid { return etf.Pid{Node: etf.Atom(node), ID: id, Creation: 1} }

func ids(pids []etf.Pid) []uint64 {
	out := make([]uint64, len(pids))
	for i, p := range pids {
		out[i] = p.ID
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func expect(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %q\n want %q", what, got, want)
	}
}

func expectMembers(t *testing.T, v *groupView, group etf.Term, want ...uint64) {
	t.Helper()
	got := ids(v.members(groupKey(group)))
	if len(got) == 0 && len(want) == 0 {
		return
	}
	sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("members of %v: got %v want %v", group, got, want)
	}
}

func newTestPG() (*pgState, *fakeFx, *groupView) {
	fx := &fakeFx{me: pid("me@h", 1)}
	v := newGroupView()
	return newPGState(fx, v), fx, v
}

func TestPGDiscoverAndSync(t *testing.T) {
	s, fx, v := newTestPG()
	s.start([]string{"b@h", "c@h"})
	expect(t, "start", fx.take(), []string{"scope b@h {discover,1}", "scope c@h {discover,1}"})

	local := pid("me@h", 10)
	if err := s.joinLocal(groupServer, []etf.Pid{local}); err != nil {
		t.Fatal(err)
	}
	expect(t, "join with no peer", fx.take(), []string{"monitor 10"})

	peer := pid("b@h", 100)
	s.discover(peer)
	expect(t, "first discover", fx.take(), []string{
		"cast 100 {sync,1,[{ebus_ps,[10]}]}", "monitor 100", "send 100 {discover,1}"})
	s.discover(peer)
	expect(t, "second discover", fx.take(), []string{"cast 100 {sync,1,[{ebus_ps,[10]}]}"})

	s.sync(peer, []groupPids{{groupServer, []etf.Pid{pid("b@h", 101)}}, {etf.Atom("g2"), []etf.Pid{pid("b@h", 102)}}})
	expectMembers(t, v, groupServer, 10, 101)
	expectMembers(t, v, etf.Atom("g2"), 102)
	if r := ids(v.remote(groupKey(groupServer))); !reflect.DeepEqual(r, []uint64{101}) {
		t.Fatalf("remote %v", r)
	}

	// A later sync replaces the peer's groups wholesale.
	s.sync(peer, []groupPids{{groupServer, []etf.Pid{pid("b@h", 103)}}})
	expectMembers(t, v, groupServer, 10, 103)
	expectMembers(t, v, etf.Atom("g2"))
	s.sync(peer, nil)
	expectMembers(t, v, groupServer, 10)

	// A sync from a peer never discovered makes it known (and monitored).
	other := pid("c@h", 200)
	s.sync(other, []groupPids{{groupServer, []etf.Pid{pid("c@h", 201)}}})
	expect(t, "sync from unknown", fx.take(), []string{"monitor 200"})
	expectMembers(t, v, groupServer, 10, 201)
}

func TestPGRemoteJoinLeave(t *testing.T) {
	s, fx, v := newTestPG()
	peer := pid("b@h", 100)
	stranger := pid("x@h", 900)

	s.join(stranger, groupServer, []etf.Pid{pid("x@h", 901)})
	expectMembers(t, v, groupServer) // pg ignores peers it does not know

	s.discover(peer)
	fx.take()
	s.join(peer, groupServer, []etf.Pid{pid("b@h", 101)})
	s.join(peer, groupServer, []etf.Pid{pid("b@h", 102), pid("b@h", 103)})
	s.join(peer, etf.Atom("g2"), []etf.Pid{pid("b@h", 101)})
	expectMembers(t, v, groupServer, 101, 102, 103)

	// leave names pids and groups; a pid the peer never reported stays.
	s.join(stranger, groupServer, nil)
	s.leave(peer, []etf.Pid{pid("b@h", 101), pid("b@h", 999)}, []etf.Term{groupServer, etf.Atom("g2")})
	expectMembers(t, v, groupServer, 102, 103)
	expectMembers(t, v, etf.Atom("g2"))

	// The same pid joined twice leaves once per listed group.
	s.join(peer, groupServer, []etf.Pid{pid("b@h", 102)})
	expectMembers(t, v, groupServer, 102, 102, 103)
	s.leave(peer, []etf.Pid{pid("b@h", 102)}, []etf.Term{groupServer})
	expectMembers(t, v, groupServer, 102, 103)

	// The peer's DOWN, with its monitor's ref, takes all it reported.
	s.down(peer, etf.Ref{ID: [5]uint32{99}})
	expectMembers(t, v, groupServer, 102, 103)
	s.down(peer, etf.Ref{Node: "me@h", ID: [5]uint32{1}})
	expectMembers(t, v, groupServer)
	if len(s.peers) != 0 {
		t.Fatal("peer kept")
	}
}

func TestPGNodeDown(t *testing.T) {
	s, fx, v := newTestPG()
	b, c := pid("b@h", 100), pid("c@h", 200)
	s.sync(b, []groupPids{{groupServer, []etf.Pid{pid("b@h", 101)}}})
	s.sync(c, []groupPids{{groupServer, []etf.Pid{pid("c@h", 201)}}})
	fx.take()
	s.nodeDown("b@h")
	expectMembers(t, v, groupServer, 201)
	s.nodeUp("b@h")
	s.nodeUp("me@h")
	expect(t, "nodeup", fx.take(), []string{"scope b@h {discover,1}"})
}

func TestPGLocal(t *testing.T) {
	s, fx, v := newTestPG()
	peer := pid("b@h", 100)
	s.discover(peer)
	fx.take()

	a, b := pid("me@h", 10), pid("me@h", 11)
	if err := s.joinLocal(groupServer, []etf.Pid{pid("b@h", 5)}); !errors.Is(err, ErrNotLocal) {
		t.Fatalf("remote pid joined: %v", err)
	}
	if err := s.joinLocal(groupServer, []etf.Pid{a}); err != nil {
		t.Fatal(err)
	}
	expect(t, "join one", fx.take(), []string{"monitor 10", "send 100 {join,1,ebus_ps,10}"})
	if err := s.joinLocal(groupServer, []etf.Pid{a, b}); err != nil {
		t.Fatal(err)
	}
	expect(t, "join two", fx.take(), []string{"monitor 11", "send 100 {join,1,ebus_ps,[10,11]}"})
	if err := s.joinLocal(etf.Atom("g2"), []etf.Pid{a}); err != nil {
		t.Fatal(err)
	}
	fx.take()
	expectMembers(t, v, groupServer, 10, 10, 11)

	if err := s.leaveLocal(etf.Atom("nope"), []etf.Pid{a}); !errors.Is(err, ErrNotJoined) {
		t.Fatalf("leave of a group not joined: %v", err)
	}
	if err := s.leaveLocal(groupServer, []etf.Pid{b}); err != nil {
		t.Fatal(err)
	}
	expect(t, "leave", fx.take(), []string{"send 100 {leave,1,11,[ebus_ps]}"})
	// b left everything but keeps its entry: no demonitor, and a second
	// join does not monitor again.
	if err := s.joinLocal(groupServer, []etf.Pid{b}); err != nil {
		t.Fatal(err)
	}
	expect(t, "rejoin", fx.take(), []string{"send 100 {join,1,ebus_ps,11}"})

	// a exits: it leaves every group it joined, as often as it joined.
	s.down(a, s.local[a].ref)
	expect(t, "exit", fx.take(), []string{"send 100 {leave,1,10,[ebus_ps,ebus_ps,g2]}"})
	expectMembers(t, v, groupServer, 11)
	expectMembers(t, v, etf.Atom("g2"))

	// The sync a peer gets carries local members only.
	s.sync(peer, []groupPids{{groupServer, []etf.Pid{pid("b@h", 101)}}})
	s.discover(peer)
	expect(t, "sync", fx.take(), []string{"cast 100 {sync,1,[{ebus_ps,[11]}]}"})
}

func TestRemoveEach(t *testing.T) {
	a, b, c := pid("n", 1), pid("n", 2), pid("n", 3)
	l := []etf.Pid{a, b, a, c}
	got := removeEach(l, []etf.Pid{a, c, pid("n", 9)})
	if !reflect.DeepEqual(ids(got), []uint64{1, 2}) {
		t.Fatalf("got %v", ids(got))
	}
	if !reflect.DeepEqual(ids(l), []uint64{1, 1, 2, 3}) {
		t.Fatal("input modified")
	}
	if same := removeEach(l, []etf.Pid{pid("n", 9)}); &same[0] != &l[0] {
		t.Fatal("no removal must return the input")
	}
}
