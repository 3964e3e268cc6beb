package bus

import (
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"
	"github.com/ergo-services/ergo/node"
)

// scopeServer is the pg scope ebus_ps_pg: OTP 25 pg's protocol between
// scope servers of all nodes, Go or Erlang (see wire.go), on the pgState
// machine. It learns of nodes from Ergo's network event, where pg uses
// net_kernel:monitor_nodes, and from a look at the node's connections
// every peerCheck: Ergo 2.2.4 keeps the owner of the network event in a
// package variable (node/core.go:141), so when several nodes run in one
// OS process only the last one started gets the event. Ergo reports hidden
// connections too, so an Erlang node started with -hidden is discovered.
type scopeServer struct{ gen.Server }

const peerCheck = 500 * time.Millisecond

type scopeState struct {
	in *instance
	pg *pgState
	// connected is the nodes seen connected, by event or by look.
	connected map[string]bool
}

// checkPeers is the message the scope sends itself every peerCheck.
type checkPeers struct{}

// Direct requests to the scope server.
type (
	joinRequest struct {
		group etf.Term
		pids  []etf.Pid
	}
	leaveRequest struct {
		group etf.Term
		pids  []etf.Pid
	}
	// redeliver is a message that overflowed the mailbox (overflow.go).
	redeliver struct{ msg etf.Term }
	// resync asks a peer for its full state again, after one of its
	// updates was lost.
	resync struct{ peer etf.Pid }
)

// scopeFx performs pgState's effects as the scope server.
type scopeFx struct{ sp *gen.ServerProcess }

func (f scopeFx) self() etf.Pid                 { return f.sp.Self() }
func (f scopeFx) monitor(pid etf.Pid) etf.Ref   { return f.sp.MonitorProcess(pid) }
func (f scopeFx) send(to etf.Pid, msg etf.Term) { _ = f.sp.Send(to, msg) }
func (f scopeFx) cast(to etf.Pid, msg etf.Term) { _ = f.sp.Cast(to, msg) }
func (f scopeFx) sendScope(n string, msg etf.Term) {
	_ = f.sp.Send(gen.ProcessID{Name: ScopeName, Node: n}, msg)
}

func (s *scopeServer) Init(sp *gen.ServerProcess, args ...etf.Term) error {
	in := args[0].(*instance)
	registry.Store(sp.NodeName(), in)
	// A restarted scope knows nothing: peers dropped our members on the
	// old scope's DOWN, and will sync again on discover.
	in.view.reset()
	st := &scopeState{in: in, pg: newPGState(scopeFx{sp}, in.view), connected: map[string]bool{}}
	sp.State = st
	if err := sp.MonitorEvent(node.EventNetwork); err != nil {
		in.log.Warn("bus: scope cannot watch the network event; it looks every "+peerCheck.String(), "err", err)
	}
	nodes := connectedNodes(sp)
	for _, n := range nodes {
		st.connected[n] = true
	}
	in.setConnected(st.connected)
	st.pg.start(nodes)
	sp.SendAfter(sp.Self(), checkPeers{}, peerCheck)
	in.scope.Store(&procRef{p: sp.ProcessState.Process})
	return nil
}

// check compares the node's connections with those seen so far.
func (st *scopeState) check(sp *gen.ServerProcess) {
	now := map[string]bool{}
	for _, n := range connectedNodes(sp) {
		now[n] = true
		st.nodeUp(n)
	}
	for n := range st.connected {
		if !now[n] {
			st.nodeDown(n)
		}
	}
}

func (st *scopeState) nodeUp(n string) {
	if !st.connected[n] {
		st.connected[n] = true
		st.in.setConnected(st.connected)
		st.pg.nodeUp(n)
	}
}

// heard marks the node of a peer that wrote to us as connected, which it
// is, before its event or the next look says so.
func (st *scopeState) heard(peer etf.Pid) {
	if n := string(peer.Node); !st.connected[n] {
		st.connected[n] = true
		st.in.setConnected(st.connected)
	}
}

func (st *scopeState) nodeDown(n string) {
	if st.connected[n] {
		delete(st.connected, n)
		st.in.setConnected(st.connected)
	}
	st.pg.nodeDown(n)
}

// connectedNodes lists the nodes Ergo is connected to. gen.Process does
// not offer it; Ergo's process value carries the node's network methods.
func connectedNodes(sp *gen.ServerProcess) []string {
	if n, ok := sp.ProcessState.Process.(interface{ Nodes() []string }); ok {
		return n.Nodes()
	}
	return nil
}

func (s *scopeServer) HandleCast(sp *gen.ServerProcess, message etf.Term) gen.ServerStatus {
	st := sp.State.(*scopeState)
	st.handle(sp, message)
	return gen.ServerStatusOK
}

func (s *scopeServer) HandleInfo(sp *gen.ServerProcess, message etf.Term) gen.ServerStatus {
	st := sp.State.(*scopeState)
	st.handle(sp, message)
	return gen.ServerStatusOK
}

func (st *scopeState) handle(sp *gen.ServerProcess, message etf.Term) {
	switch m := message.(type) {
	case gen.MessageDown:
		st.pg.down(m.Pid, m.Ref)
		return
	case node.MessageEventNetwork:
		if m.Proxy {
			return
		}
		if m.Online {
			st.nodeUp(m.PeerName)
		} else {
			st.nodeDown(m.PeerName)
		}
		return
	case checkPeers:
		st.check(sp)
		sp.SendAfter(sp.Self(), checkPeers{}, peerCheck)
		return
	}
	msg, ok, err := parsePG(message)
	switch {
	case err != nil:
		st.in.log.Warn("bus: malformed pg message", "node", sp.NodeName(), "err", err)
	case ok:
		switch m := msg.(type) {
		case pgDiscover:
			st.heard(m.peer)
		case pgSync:
			st.heard(m.peer)
		}
		st.pg.handle(msg)
	default:
		// OTP's pg crashes on an unknown message; a Go scope ignores it.
		st.in.log.Debug("bus: scope ignores message", "node", sp.NodeName(), "msg", message)
	}
}

func (s *scopeServer) HandleDirect(sp *gen.ServerProcess, ref etf.Ref, message interface{}) (interface{}, gen.DirectStatus) {
	st := sp.State.(*scopeState)
	switch m := message.(type) {
	case joinRequest:
		return nil, st.pg.joinLocal(m.group, m.pids)
	case leaveRequest:
		return nil, st.pg.leaveLocal(m.group, m.pids)
	case redeliver:
		st.handle(sp, m.msg)
		return nil, nil
	case resync:
		// A sync is answered to any discover, and replaces all we knew.
		_ = sp.Send(m.peer, discoverMsg(sp.Self()))
		return nil, nil
	}
	return nil, lib.ErrUnsupportedRequest
}

func (s *scopeServer) HandleCall(sp *gen.ServerProcess, from gen.ServerFrom, message etf.Term) (etf.Term, gen.ServerStatus) {
	// OTP's pg accepts calls from its own node's API only.
	return etf.Atom("badarg"), gen.ServerStatusOK
}

func (s *scopeServer) Terminate(sp *gen.ServerProcess, reason string) {
	in := sp.State.(*scopeState).in
	in.clear(&in.scope, sp.Self())
}
