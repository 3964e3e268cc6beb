package bus

import (
	"github.com/ergo-services/ergo/etf"
)

// pgEffects is what the pg state machine asks of its process; the scope
// server implements it on Ergo, tests with a recorder.
//
// There is no demonitor: Ergo 2.2.4's MakeRef repeats every 262,144 refs
// (node/core.go:217) and its monitor table maps a ref to the latest pid
// monitored under it, so demonitoring an old ref can remove a newer monitor
// of another pid. A monitor is kept until its DOWN, which is matched by pid
// and ref; a member that leaves all its groups keeps its entry, and its
// monitor, for a later join.
type pgEffects interface {
	self() etf.Pid
	monitor(pid etf.Pid) etf.Ref
	// send is a plain message; cast is gen_server:cast framing.
	send(to etf.Pid, msg etf.Term)
	cast(to etf.Pid, msg etf.Term)
	// sendScope sends to the scope server registered on node.
	sendScope(node string, msg etf.Term)
}

// pgState is one scope server's state, the same as OTP 25 pg's: local
// members it monitors and the groups they joined (once per join), and for
// each known peer scope its monitor and the groups and pids it reported.
// Every change is mirrored into the shared view.
type pgState struct {
	fx    pgEffects
	view  *groupView
	local map[etf.Pid]*localMember
	peers map[etf.Pid]*peerState
}

type localMember struct {
	ref    etf.Ref
	groups []etf.Term // once per join; may be empty (see pgEffects)
}

type peerState struct {
	ref    etf.Ref
	groups map[string]groupPids
}

func newPGState(fx pgEffects, view *groupView) *pgState {
	return &pgState{fx: fx, view: view, local: map[etf.Pid]*localMember{}, peers: map[etf.Pid]*peerState{}}
}

// start is pg's init: discover the scope on every connected node.
func (s *pgState) start(nodes []string) {
	for _, n := range nodes {
		s.fx.sendScope(n, discoverMsg(s.fx.self()))
	}
}

func (s *pgState) broadcast(msg etf.Term) {
	for peer := range s.peers {
		s.fx.send(peer, msg)
	}
}

// joinLocal is pg:join(Scope, Group, Pids) for pids of this node.
func (s *pgState) joinLocal(group etf.Term, pids []etf.Pid) error {
	me := s.fx.self()
	for _, p := range pids {
		if p.Node != me.Node {
			return ErrNotLocal
		}
	}
	if len(pids) == 0 {
		return nil
	}
	for _, p := range pids {
		m := s.local[p]
		if m == nil {
			m = &localMember{ref: s.fx.monitor(p)}
			s.local[p] = m
		}
		m.groups = append(m.groups, group)
	}
	s.view.add(group, pids, true)
	s.broadcast(joinMsg(me, group, pids))
	return nil
}

// leaveLocal is pg:leave(Scope, Group, Pids): ErrNotJoined when none of
// pids was in group. Only the pids that were are announced.
func (s *pgState) leaveLocal(group etf.Term, pids []etf.Pid) error {
	key := groupKey(group)
	var left []etf.Pid
	for _, p := range pids {
		m := s.local[p]
		if m == nil {
			continue
		}
		for i, g := range m.groups {
			if groupKey(g) == key {
				m.groups = append(m.groups[:i:i], m.groups[i+1:]...)
				left = append(left, p)
				break
			}
		}
	}
	if len(left) == 0 {
		return ErrNotJoined
	}
	s.view.remove(group, left, true)
	s.broadcast(leaveMsg(s.fx.self(), left, []etf.Term{group}))
	return nil
}

// down handles a monitor DOWN: a local member exited, or a peer scope
// did (its node may be gone).
func (s *pgState) down(pid etf.Pid, ref etf.Ref) {
	if m := s.local[pid]; m != nil {
		if m.ref != ref {
			return
		}
		delete(s.local, pid)
		if len(m.groups) == 0 {
			return
		}
		for _, g := range m.groups {
			s.view.remove(g, []etf.Pid{pid}, true)
		}
		s.broadcast(leaveMsg(s.fx.self(), []etf.Pid{pid}, m.groups))
		return
	}
	if p := s.peers[pid]; p != nil && p.ref == ref {
		s.dropPeer(pid)
	}
}

// nodeDown drops every peer scope of node at once; their DOWNs, which
// Ergo sends as well, then find nothing.
func (s *pgState) nodeDown(node string) {
	for pid := range s.peers {
		if string(pid.Node) == node {
			s.dropPeer(pid)
		}
	}
}

func (s *pgState) nodeUp(node string) {
	if node == string(s.fx.self().Node) {
		return
	}
	s.fx.sendScope(node, discoverMsg(s.fx.self()))
}

func (s *pgState) dropPeer(pid etf.Pid) {
	p := s.peers[pid]
	delete(s.peers, pid)
	for _, g := range p.groups {
		s.view.remove(g.group, g.pids, false)
	}
}

// discover answers a peer with our local groups and, the first time,
// monitors it and discovers it back.
func (s *pgState) discover(peer etf.Pid) {
	me := s.fx.self()
	if peer == me {
		return
	}
	s.fx.cast(peer, syncMsg(me, s.view.localGroups()))
	if _, known := s.peers[peer]; known {
		return
	}
	s.peers[peer] = &peerState{ref: s.fx.monitor(peer), groups: map[string]groupPids{}}
	s.fx.send(peer, discoverMsg(me))
}

// sync replaces all we know of peer's groups with what it sent.
func (s *pgState) sync(peer etf.Pid, groups []groupPids) {
	if peer == s.fx.self() {
		return
	}
	p := s.peers[peer]
	if p == nil {
		p = &peerState{ref: s.fx.monitor(peer), groups: map[string]groupPids{}}
		s.peers[peer] = p
	}
	next := make(map[string]groupPids, len(groups))
	for _, g := range groups {
		k := groupKey(g.group)
		if prev, dup := next[k]; dup {
			g.pids = appendCopy(prev.pids, g.pids)
		}
		next[k] = g
	}
	for k, old := range p.groups {
		if n, ok := next[k]; ok && samePids(n.pids, old.pids) {
			continue
		}
		s.view.remove(old.group, old.pids, false)
	}
	for k, n := range next {
		if old, ok := p.groups[k]; ok && samePids(n.pids, old.pids) {
			continue
		}
		s.view.add(n.group, n.pids, false)
	}
	p.groups = next
}

// join adds pids a known peer reports; pg ignores unknown peers (a node
// flickering, or one outside the overlay).
func (s *pgState) join(peer etf.Pid, group etf.Term, pids []etf.Pid) {
	p := s.peers[peer]
	if p == nil || len(pids) == 0 {
		return
	}
	k := groupKey(group)
	g := p.groups[k]
	g.group = group
	g.pids = appendCopy(g.pids, pids)
	p.groups[k] = g
	s.view.add(group, pids, false)
}

// leave removes pids from groups of a known peer. Only pids that peer
// had reported are removed from the view.
func (s *pgState) leave(peer etf.Pid, pids []etf.Pid, groups []etf.Term) {
	p := s.peers[peer]
	if p == nil {
		return
	}
	for _, group := range groups {
		k := groupKey(group)
		g, ok := p.groups[k]
		if !ok {
			continue
		}
		var gone []etf.Pid
		rest := g.pids
		for _, pid := range pids {
			next := removeEach(rest, []etf.Pid{pid})
			if len(next) < len(rest) {
				gone = append(gone, pid)
				rest = next
			}
		}
		if len(rest) == 0 {
			delete(p.groups, k)
		} else {
			p.groups[k] = groupPids{group: g.group, pids: rest}
		}
		s.view.remove(g.group, gone, false)
	}
}

// handle dispatches a parsed pg message.
func (s *pgState) handle(m any) {
	switch v := m.(type) {
	case pgDiscover:
		s.discover(v.peer)
	case pgSync:
		s.sync(v.peer, v.groups)
	case pgJoin:
		s.join(v.peer, v.group, v.pids)
	case pgLeave:
		s.leave(v.peer, v.pids, v.groups)
	}
}

// samePids compares as multisets.
func samePids(a, b []etf.Pid) bool {
	if len(a) != len(b) {
		return false
	}
	return len(removeEach(a, b)) == 0
}
