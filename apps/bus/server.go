package bus

import (
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"
)

// busServer is ebus_ps, the node's member of pg group ebus_ps: it keeps
// the topic table (subscriptions arrive as direct requests, exits of
// subscribers as DOWNs) and fans forward_to_local messages from other
// nodes out to local subscribers. Local publishers never go through it.
type busServer struct{ gen.Server }

type busState struct {
	in   *instance
	subs map[etf.Pid]*subscriber
	// joinWait is the pause before retrying to join the group.
	joinWait time.Duration
}

// subscriber is a monitored local subscriber. It keeps its entry, and
// its monitor, when it has no topic left, until it exits: see pgEffects
// on why monitors are never removed.
type subscriber struct {
	ref    etf.Ref
	topics map[string]struct{}
}

// Direct requests to the bus server.
type (
	subRequest struct {
		topic string
		pid   etf.Pid
	}
	unsubRequest struct {
		topic string
		pid   etf.Pid
	}
)

// joinGroup is the message the bus server sends itself to join ebus_ps.
type joinGroup struct{}

func (s *busServer) Init(sp *gen.ServerProcess, args ...etf.Term) error {
	in := args[0].(*instance)
	registry.Store(sp.NodeName(), in)
	st := &busState{in: in, subs: map[etf.Pid]*subscriber{}, joinWait: 50 * time.Millisecond}
	// A restarted server inherits the table: monitor its subscribers again.
	for pid, topics := range in.topics.byPid() {
		sub := &subscriber{ref: sp.MonitorProcess(pid), topics: map[string]struct{}{}}
		for _, t := range topics {
			sub.topics[t] = struct{}{}
		}
		st.subs[pid] = sub
	}
	sp.State = st
	in.server.Store(&procRef{p: sp.ProcessState.Process})
	// Init must not fail (a failing child panics its supervisor), so the
	// join, which needs the scope server, happens after it.
	_ = sp.Send(sp.Self(), joinGroup{})
	return nil
}

func (s *busServer) HandleInfo(sp *gen.ServerProcess, message etf.Term) gen.ServerStatus {
	st := sp.State.(*busState)
	st.info(sp, message)
	return gen.ServerStatusOK
}

func (st *busState) info(sp *gen.ServerProcess, message etf.Term) {
	switch m := message.(type) {
	case gen.MessageDown:
		st.down(m.Pid, m.Ref)
		return
	case joinGroup:
		st.join(sp)
		return
	}
	f, ok, err := parseForward(message)
	switch {
	case err != nil:
		st.in.log.Warn("bus: malformed forward_to_local", "node", sp.NodeName(), "err", err)
	case ok:
		st.in.stats.received.Add(1)
		st.in.deliverLocal(sp, f.from, f.hasFrom, f.topic, f.msg)
	default:
		// erlbus's server ignores what it does not know; so does this one.
	}
}

func (st *busState) join(sp *gen.ServerProcess) {
	_, err := st.in.direct(&st.in.scope, joinRequest{group: groupServer, pids: []etf.Pid{sp.Self()}})
	if err == nil {
		return
	}
	st.in.log.Warn("bus: cannot join group "+ServerName+"; retrying", "node", sp.NodeName(), "err", err, "in", st.joinWait)
	sp.SendAfter(sp.Self(), joinGroup{}, st.joinWait)
	st.joinWait = min(2*st.joinWait, 2*time.Second)
}

func (st *busState) sub(sp *gen.ServerProcess, topic string, pid etf.Pid) {
	s := st.subs[pid]
	if s == nil {
		// A pid that is already gone gets its DOWN (noproc) at once.
		s = &subscriber{ref: sp.MonitorProcess(pid), topics: map[string]struct{}{}}
		st.subs[pid] = s
	}
	if _, ok := s.topics[topic]; ok {
		return
	}
	s.topics[topic] = struct{}{}
	st.in.topics.add(topic, pid)
}

func (st *busState) unsub(topic string, pid etf.Pid) {
	s := st.subs[pid]
	if s == nil {
		return
	}
	if _, ok := s.topics[topic]; !ok {
		return
	}
	delete(s.topics, topic)
	st.in.topics.remove(topic, pid)
}

func (st *busState) down(pid etf.Pid, ref etf.Ref) {
	s := st.subs[pid]
	if s == nil || s.ref != ref {
		return
	}
	delete(st.subs, pid)
	for t := range s.topics {
		st.in.topics.remove(t, pid)
	}
}

func (s *busServer) HandleDirect(sp *gen.ServerProcess, ref etf.Ref, message interface{}) (interface{}, gen.DirectStatus) {
	st := sp.State.(*busState)
	switch m := message.(type) {
	case subRequest:
		st.sub(sp, m.topic, m.pid)
		return nil, nil
	case unsubRequest:
		st.unsub(m.topic, m.pid)
		return nil, nil
	case redeliver:
		st.info(sp, m.msg)
		return nil, nil
	}
	return nil, lib.ErrUnsupportedRequest
}

// HandleCall answers the subscribers query of other Go nodes, and, like
// erlbus's server, ok to anything else.
func (s *busServer) HandleCall(sp *gen.ServerProcess, from gen.ServerFrom, message etf.Term) (etf.Term, gen.ServerStatus) {
	st := sp.State.(*busState)
	if topic, ok := parseSubsQuery(message); ok {
		return pidList(st.in.topics.get(topic)), gen.ServerStatusOK
	}
	return atomOK, gen.ServerStatusOK
}

func (s *busServer) HandleCast(sp *gen.ServerProcess, message etf.Term) gen.ServerStatus {
	return gen.ServerStatusOK
}

func (s *busServer) Terminate(sp *gen.ServerProcess, reason string) {
	in := sp.State.(*busState).in
	in.clear(&in.server, sp.Self())
	switch reason {
	case "kill", "normal", "shutdown":
		// The node or the application stops. After a crash the restarted
		// server takes over the same instance, table included.
		registry.CompareAndDelete(sp.NodeName(), in)
	}
}
