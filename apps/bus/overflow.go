package bus

import (
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"
	"github.com/ergo-services/ergo/node"
)

// Fallback tags of the two servers whose mailboxes overflow here.
const (
	tagServer = "ebus_ps"
	tagScope  = "ebus_ps_pg"
)

// overflowMailbox holds a burst of 16384 messages the servers turned away
// (about 2.4 MB); beyond it Ergo drops them, with a log line each.
const overflowMailbox = 16384

// overflowProc is ebus_ps_overflow, the fallback of the bus and scope
// servers' mailboxes: where Ergo would drop a message silently, it hands
// it here instead. Publishes from other nodes are shed and counted (order
// forbids a late delivery); DOWNs and network events are delivered again
// through the server's direct queue; a lost pg update from a peer makes
// the scope ask that peer for a full sync. It is a bare process loop, not
// a gen.Server (which starts a goroutine per message), so that it drains
// as fast as the network fills it.
type overflowProc struct{}

type overflowState struct {
	in      *instance
	self    gen.Process
	lastLog time.Time
	unlog   uint64 // shed since the last log line
}

func (o *overflowProc) ProcessInit(p gen.Process, args ...etf.Term) (gen.ProcessState, error) {
	return gen.ProcessState{Process: p, State: &overflowState{in: args[0].(*instance), self: p}}, nil
}

func (o *overflowProc) ProcessLoop(ps gen.ProcessState, started chan<- bool) string {
	st := ps.State.(*overflowState)
	ch := ps.ProcessChannels()
	started <- true
	for {
		select {
		case ex := <-ch.GracefulExit:
			return ex.Reason
		case <-ps.Context().Done():
			return "kill"
		case d := <-ch.Direct:
			_ = ps.PutSyncReply(d.Ref, nil, lib.ErrUnsupportedRequest)
		case m := <-ch.Mailbox:
			if fb, ok := m.Message.(gen.MessageFallback); ok {
				st.handle(fb)
			}
		}
	}
}

func (st *overflowState) handle(fb gen.MessageFallback) {
	switch fb.Tag {
	case tagServer:
		st.fromServer(fb.Message)
	case tagScope:
		st.fromScope(fb.Message)
	}
}

func (st *overflowState) fromServer(m etf.Term) {
	switch m.(type) {
	case gen.MessageDown, joinGroup:
		st.again(&st.in.server, redeliver{msg: m})
		return
	}
	if _, ok, _ := parseForward(m); !ok {
		return // the server would have ignored it
	}
	st.in.stats.shed.Add(1)
	st.unlog++
	if now := time.Now(); now.Sub(st.lastLog) >= time.Second {
		st.in.log.Warn("bus: server mailbox full, publishes from other nodes shed",
			"node", st.self.NodeName(), "shed", st.unlog, "shed_total", st.in.stats.shed.Load())
		st.lastLog, st.unlog = now, 0
	}
}

func (st *overflowState) fromScope(m etf.Term) {
	st.in.stats.scopeOverflow.Add(1)
	st.in.log.Error("bus: scope mailbox full", "node", st.self.NodeName())
	switch m.(type) {
	case gen.MessageDown, node.MessageEventNetwork, checkPeers:
		st.again(&st.in.scope, redeliver{msg: m})
		return
	}
	body := m
	if t, ok := m.(etf.Tuple); ok && len(t) == 2 && t[0] == atomGenCast {
		body = t[1]
	}
	msg, ok, _ := parsePG(body)
	if !ok {
		return
	}
	switch v := msg.(type) {
	case pgDiscover:
		st.again(&st.in.scope, redeliver{msg: m})
	case pgSync:
		st.again(&st.in.scope, resync{peer: v.peer})
	case pgJoin:
		st.again(&st.in.scope, resync{peer: v.peer})
	case pgLeave:
		st.again(&st.in.scope, resync{peer: v.peer})
	}
}

// again hands a request to a server's direct queue without waiting for
// it: the server is the busy one, and this loop must keep draining.
func (st *overflowState) again(target *atomicProc, req any) {
	go func() {
		if _, err := st.in.direct(target, req); err != nil {
			st.in.log.Error("bus: cannot redeliver an overflowed message", "node", st.self.NodeName(), "err", err)
		}
	}()
}
