// Package cluster makes Tavern nodes one cluster: it finds peers (static
// seeds, and a nodes table in a shared PostgreSQL), connects to them over
// Erlang distribution, watches them with an application heartbeat (Ergo's
// own keepalive notices a hung node only after 60 s), and keeps the live
// set that board placement hashes over.
package cluster

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"
	"github.com/ergo-services/ergo/node"

	"github.com/tavernhq/tavern/apps/store"
)

// MembershipName is the registered name of each node's membership server.
const MembershipName = "tavern_cluster"

// Heartbeat is sent to every peer's membership server each interval.
type Heartbeat struct {
	From string
	Seq  uint64
}

// HeartbeatAck answers a Heartbeat.
type HeartbeatAck struct {
	From string
	Seq  uint64
}

func init() {
	for _, t := range []any{Heartbeat{}, HeartbeatAck{}} {
		if _, err := etf.RegisterType(t, etf.RegisterTypeOptions{Strict: true}); err != nil && err != lib.ErrTaken {
			panic(err)
		}
	}
}

// Config is what membership needs.
type Config struct {
	Self      string
	DistAddr  string // advertised in the nodes table
	PublicURL string
	Seeds     []string
	// Store, when set, is the shared database of "discovery postgres".
	Store     *store.Store
	Heartbeat time.Duration
	DownAfter time.Duration
	Placement *Placement
	Log       *slog.Logger
	// Changed is told, by message, when the live set changes.
	Changed gen.ProcessID
	// ChangedMsg is the message sent to Changed.
	ChangedMsg etf.Term
}

type peer struct {
	lastSeen   time.Time
	live       bool
	connecting bool
	monitored  bool
	distAddr   string
	routed     bool
}

type membership struct {
	gen.Server
	cfg   Config
	node  node.Node
	ready *atomic.Bool
}

type memberState struct {
	peers       map[string]*peer
	seq         uint64
	discovering bool
	rounds      int
}

type (
	tick       struct{}
	discovered struct {
		rows []store.NodeRow
		err  error
	}
	connected struct {
		name string
		err  error
	}
)

func (m *membership) Init(process *gen.ServerProcess, args ...etf.Term) error {
	st := &memberState{peers: make(map[string]*peer)}
	for _, s := range m.cfg.Seeds {
		if s != m.cfg.Self {
			st.peers[s] = &peer{}
		}
	}
	process.State = st
	process.Send(process.Self(), tick{})
	return nil
}

func (m *membership) HandleInfo(process *gen.ServerProcess, message etf.Term) gen.ServerStatus {
	st := process.State.(*memberState)
	switch msg := message.(type) {
	case tick:
		m.tick(process, st)
		process.SendAfter(process.Self(), tick{}, m.cfg.Heartbeat)
	case Heartbeat:
		p := st.peer(msg.From)
		p.lastSeen = time.Now()
		_ = process.Send(gen.ProcessID{Name: MembershipName, Node: msg.From}, HeartbeatAck{From: m.cfg.Self, Seq: msg.Seq})
		m.seen(process, st, msg.From)
	case HeartbeatAck:
		st.peer(msg.From).lastSeen = time.Now()
		m.seen(process, st, msg.From)
	case discovered:
		st.discovering = false
		if msg.err != nil {
			m.cfg.Log.Warn("discovery failed", "err", msg.err)
			break
		}
		for _, r := range msg.rows {
			if r.Name == m.cfg.Self {
				continue
			}
			p := st.peer(r.Name)
			if r.DistAddr != "" && r.DistAddr != p.distAddr {
				p.distAddr, p.routed = r.DistAddr, false
			}
		}
	case connected:
		p := st.peer(msg.name)
		p.connecting = false
		if msg.err != nil {
			m.cfg.Log.Debug("peer unreachable", "peer", msg.name, "err", msg.err)
		}
	case gen.MessageNodeDown:
		if p, ok := st.peers[msg.Name]; ok {
			p.monitored = false
			p.lastSeen = time.Time{}
			if p.live {
				m.cfg.Log.Warn("peer down", "peer", msg.Name)
			}
			p.live = false
			m.publish(process, st)
		}
	}
	return gen.ServerStatusOK
}

func (st *memberState) peer(name string) *peer {
	p, ok := st.peers[name]
	if !ok {
		p = &peer{}
		st.peers[name] = p
	}
	return p
}

// seen marks a peer live on any sign of it.
func (m *membership) seen(process *gen.ServerProcess, st *memberState, name string) {
	p := st.peers[name]
	if p.live {
		return
	}
	p.live = true
	if !p.monitored {
		process.MonitorNode(name)
		p.monitored = true
	}
	m.cfg.Log.Info("peer up", "peer", name)
	m.publish(process, st)
}

func (m *membership) tick(process *gen.ServerProcess, st *memberState) {
	now := time.Now()
	st.rounds++
	if m.cfg.Store != nil && !st.discovering {
		st.discovering = true
		cfg := m.cfg
		self := process.Self()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			err := cfg.Store.Heartbeat(ctx, store.NodeRow{Name: cfg.Self, DistAddr: cfg.DistAddr, PublicURL: cfg.PublicURL})
			var rows []store.NodeRow
			if err == nil {
				rows, err = cfg.Store.LiveNodes(ctx, cfg.DownAfter, 10*cfg.DownAfter+time.Minute)
			}
			_ = process.Send(self, discovered{rows: rows, err: err})
		}()
	}
	connectedNow := make(map[string]bool)
	for _, n := range m.node.Nodes() {
		connectedNow[n] = true
	}
	st.seq++
	changed := false
	for name, p := range st.peers {
		if p.distAddr != "" && !p.routed {
			if host, port, err := net.SplitHostPort(p.distAddr); err == nil {
				if n, err := strconv.ParseUint(port, 10, 16); err == nil {
					_ = m.node.AddStaticRoute(name, host, uint16(n), node.RouteOptions{})
				}
			}
			p.routed = true
		}
		if !connectedNow[name] && !p.connecting {
			p.connecting = true
			self := process.Self()
			go func() {
				err := m.node.Connect(name)
				_ = process.Send(self, connected{name: name, err: err})
			}()
		}
		if connectedNow[name] {
			_ = process.Send(gen.ProcessID{Name: MembershipName, Node: name}, Heartbeat{From: m.cfg.Self, Seq: st.seq})
		}
		if p.live && now.Sub(p.lastSeen) > m.cfg.DownAfter {
			// Connected but silent: hung (SIGSTOP) or cut off. Dropping
			// the connection makes every monitor of its processes fire.
			m.cfg.Log.Warn("peer missed its heartbeats; disconnecting", "peer", name, "silent", now.Sub(p.lastSeen).Round(time.Millisecond))
			p.live = false
			changed = true
			go func() { _ = m.node.Disconnect(name) }()
		}
	}
	if changed {
		m.publish(process, st)
	}
	// Ready once discovery has answered and a heartbeat round has had
	// time to come back.
	if st.rounds >= 2 || (m.cfg.Store == nil && len(st.peers) == 0) {
		m.ready.Store(true)
	}
}

func (m *membership) publish(process *gen.ServerProcess, st *memberState) {
	live := []string{m.cfg.Self}
	for name, p := range st.peers {
		if p.live {
			live = append(live, name)
		}
	}
	if m.cfg.Placement.set(live) {
		m.cfg.Log.Info("cluster changed", "live", m.cfg.Placement.Live())
		if m.cfg.ChangedMsg != nil {
			_ = process.Send(m.cfg.Changed, m.cfg.ChangedMsg)
		}
	}
}
