package bus

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"
)

// instance is one node's bus: what its processes share with the callers
// of the API on that node. Several nodes may run in one OS process (the
// tests do), so instances are found by node name.
type instance struct {
	cfg    Config
	log    *slog.Logger
	topics *topicTable
	view   *groupView
	stats  counters

	// server and scope are the running bus and scope servers, for direct
	// requests; nil while they restart.
	server atomicProc
	scope  atomicProc

	// connected is the set of nodes the scope knows to be connected,
	// replaced whole on each change. Publishes go to members of these
	// nodes only: a send to any other would make Ergo dial the node, and
	// the publisher wait for it (pg's own sends are noconnect).
	connected atomic.Pointer[map[string]struct{}]
}

func (in *instance) isConnected(node etf.Atom) bool {
	m := in.connected.Load()
	if m == nil {
		return false
	}
	_, ok := (*m)[string(node)]
	return ok
}

// setConnected is called by the scope server only.
func (in *instance) setConnected(nodes map[string]bool) {
	m := make(map[string]struct{}, len(nodes))
	for n := range nodes {
		m[n] = struct{}{}
	}
	in.connected.Store(&m)
}

type procRef struct{ p gen.Process }

type atomicProc = atomic.Pointer[procRef]

func newInstance(cfg Config, log *slog.Logger) *instance {
	return &instance{cfg: cfg, log: log, topics: newTopicTable(), view: newGroupView()}
}

var registry sync.Map // node name -> *instance

func lookup(p gen.Process) (*instance, error) {
	if p == nil {
		return nil, ErrNotRunning
	}
	v, ok := registry.Load(p.NodeName())
	if !ok {
		return nil, ErrNotRunning
	}
	return v.(*instance), nil
}

// counters are the Stats, updated atomically from any process.
type counters struct {
	published, forwarded, forwardErrors, received, delivered,
	droppedFull, droppedGone, shed, dispatched, scopeOverflow atomic.Uint64
}

// Stats counts what one node's bus did since it started.
type Stats struct {
	Published     uint64 // Pub and PubFrom calls on this node
	Forwarded     uint64 // forward_to_local messages sent to other nodes
	ForwardErrors uint64 // forward_to_local sends that failed (no route to the node)
	Received      uint64 // forward_to_local messages received from other nodes
	Delivered     uint64 // messages put into local subscribers' mailboxes
	// DroppedFull counts messages a local subscriber missed because its
	// mailbox was full (Ergo's ErrProcessMailboxFull).
	DroppedFull uint64
	// DroppedGone counts messages to subscribers that had exited before
	// the bus server removed them.
	DroppedGone uint64
	// Shed counts forward_to_local messages from other nodes lost because
	// the bus server's mailbox was full.
	Shed       uint64
	Dispatched uint64 // Dispatch deliveries
	// ScopeOverflow counts messages the pg scope server's full mailbox
	// turned away; each makes it ask the peer concerned for a fresh sync.
	ScopeOverflow uint64
	Topics        int // topics with local subscribers now
}

func (in *instance) snapshot() Stats {
	c := &in.stats
	return Stats{
		Published: c.published.Load(), Forwarded: c.forwarded.Load(),
		ForwardErrors: c.forwardErrors.Load(), Received: c.received.Load(),
		Delivered: c.delivered.Load(), DroppedFull: c.droppedFull.Load(),
		DroppedGone: c.droppedGone.Load(), Shed: c.shed.Load(),
		Dispatched: c.dispatched.Load(), ScopeOverflow: c.scopeOverflow.Load(),
		Topics: in.topics.len(),
	}
}

// deliverLocal sends msg from p to every local subscriber of topic but
// from, and returns how many mailboxes took it. A full mailbox or an
// exited subscriber is counted, never waited on.
func (in *instance) deliverLocal(p gen.Process, from etf.Pid, hasFrom bool, topic string, msg etf.Term) int {
	n := 0
	for _, pid := range in.topics.get(topic) {
		if hasFrom && pid == from {
			continue
		}
		switch err := p.Send(pid, msg); {
		case err == nil:
			n++
		case errors.Is(err, lib.ErrProcessMailboxFull):
			in.stats.droppedFull.Add(1)
		default: // unknown process, previous incarnation: exited
			in.stats.droppedGone.Add(1)
		}
	}
	in.stats.delivered.Add(uint64(n))
	return n
}

// clear forgets a server that terminates, unless a successor already
// took its place.
func (in *instance) clear(target *atomicProc, pid etf.Pid) {
	if r := target.Load(); r != nil && r.p.Self() == pid {
		target.CompareAndSwap(r, nil)
	}
}

// direct makes a direct request to one of the bus's servers.
func (in *instance) direct(target *atomicProc, req any) (any, error) {
	r := target.Load()
	if r == nil {
		return nil, ErrNotRunning
	}
	v, err := r.p.Direct(req)
	switch {
	case errors.Is(err, lib.ErrProcessBusy):
		return nil, ErrBusy
	case errors.Is(err, lib.ErrProcessTerminated), errors.Is(err, lib.ErrProcessUnknown):
		return nil, ErrNotRunning
	}
	return v, err
}
