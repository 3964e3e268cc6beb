package board

import (
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"

	"github.com/tavernhq/tavern/internal/metrics"
)

// router is the node's directory of active boards. It is the only process
// that starts board actors, so one board never has two actors on a node,
// and it paces restarts: Ergo does not enforce restart intensity for
// simple_one_for_one (ERGO_NOTES.md), so the backoff and crash limit of
// each board live here.
type router struct {
	gen.Server
}

// InlineCallback: the router never Calls, and there is one per node: all
// its callbacks run on its loop goroutine (gen.InlineCallbacks, a
// third_party/ergo patch).
func (*router) InlineCallback(interface{}) bool { return true }

type routerState struct {
	deps    *Deps
	sup     gen.Process
	active  map[string]etf.Pid
	byPid   map[etf.Pid]string
	crashes map[string][]time.Time // abnormal exits within the restart window
	broken  map[string]time.Time   // boards over their crash limit, until then
	// draining: this node hands every board to the others and starts none.
	draining bool
}

// Router requests besides Locate.
type (
	// listBoards asks for the ids of the active boards (console).
	listBoards struct{}
	// boardPid asks for the pid of an active board, or an empty pid.
	boardPid struct{ Board string }
)

func (r *router) Init(process *gen.ServerProcess, args ...etf.Term) error {
	deps := args[0].(*Deps)
	process.State = &routerState{
		deps:    deps,
		active:  make(map[string]etf.Pid),
		byPid:   make(map[etf.Pid]string),
		crashes: make(map[string][]time.Time),
		broken:  make(map[string]time.Time),
	}
	return nil
}

func (r *router) HandleInfo(process *gen.ServerProcess, message etf.Term) gen.ServerStatus {
	st := process.State.(*routerState)
	switch m := message.(type) {
	case Locate:
		if st.draining {
			st.forwardAway(process, m)
			return gen.ServerStatusOK
		}
		if owner := st.owner(process, m.Board); owner != process.NodeName() && m.Hops == 0 {
			st.forward(process, m, owner)
			return gen.ServerStatusOK
		}
		pid, err := st.ensure(process, m.Board)
		if err != nil {
			_ = process.Send(m.ReplyTo, Failed{Board: m.Board, Code: CodeUnavailable, Msg: "join: " + err.Error(), Tag: m.Tag})
			return gen.ServerStatusOK
		}
		_ = process.Send(m.ReplyTo, Located{Board: m.Board, Pid: pid, Tag: m.Tag})
	case register:
		st.register(process, m)
	case MembershipChanged:
		// Boards this node no longer owns move: their actors finish what
		// is in flight and stop; members re-join at the new owner.
		for id, pid := range st.active {
			if st.owner(process, id) != process.NodeName() {
				_ = process.Send(pid, handoff{})
			}
		}
	case gen.MessageDown:
		id, ok := st.byPid[m.Pid]
		if !ok {
			return gen.ServerStatusOK
		}
		delete(st.byPid, m.Pid)
		metrics.BoardsActive.Dec()
		if st.active[id] == m.Pid {
			delete(st.active, id)
		}
		if m.Reason != "normal" && m.Reason != "shutdown" {
			st.crashed(id)
		}
	}
	return gen.ServerStatusOK
}

func (r *router) HandleDirect(process *gen.ServerProcess, ref etf.Ref, message interface{}) (interface{}, gen.DirectStatus) {
	st := process.State.(*routerState)
	switch m := message.(type) {
	case listBoards:
		ids := make([]string, 0, len(st.active))
		for id := range st.active {
			ids = append(ids, id)
		}
		return ids, gen.DirectStatusOK
	case boardPid:
		return st.active[m.Board], gen.DirectStatusOK
	case drainBoards:
		st.draining = true
		for _, pid := range st.active {
			_ = process.Send(pid, handoff{})
		}
		return len(st.active), gen.DirectStatusOK
	}
	return nil, lib.ErrUnsupportedRequest
}

// MembershipChanged tells the router that the live nodes changed.
type MembershipChanged struct{}

type handoff struct{}

func (st *routerState) owner(process gen.Process, id string) string {
	if st.deps.Placement == nil {
		return process.NodeName()
	}
	return st.deps.Placement.Owner(id)
}

// forward hands a Locate to the owner's router, which answers the member
// directly. An owner that cannot be reached is skipped.
func (st *routerState) forward(process *gen.ServerProcess, m Locate, owner string) {
	m.Hops++
	err := process.Send(gen.ProcessID{Name: RouterName, Node: owner}, m)
	if err == nil {
		return
	}
	next := st.deps.Placement.OwnerWithout(m.Board, owner)
	st.deps.Log.Warn("board owner unreachable", "board", m.Board, "owner", owner, "next", next, "err", err)
	if next != process.NodeName() && next != "" {
		if err := process.Send(gen.ProcessID{Name: RouterName, Node: next}, m); err == nil {
			return
		}
	}
	pid, err := st.ensure(process, m.Board)
	if err != nil {
		_ = process.Send(m.ReplyTo, Failed{Board: m.Board, Code: CodeUnavailable, Msg: "join: " + err.Error(), Tag: m.Tag})
		return
	}
	_ = process.Send(m.ReplyTo, Located{Board: m.Board, Pid: pid, Tag: m.Tag})
}

type drainBoards struct{}

// forwardAway sends a Locate to the owner the board would have without
// this node; with no other node, the join is refused.
func (st *routerState) forwardAway(process *gen.ServerProcess, m Locate) {
	next := ""
	if st.deps.Placement != nil {
		next = st.deps.Placement.OwnerWithout(m.Board, process.NodeName())
	}
	if next != "" && next != process.NodeName() {
		m.Hops++
		if err := process.Send(gen.ProcessID{Name: RouterName, Node: next}, m); err == nil {
			return
		}
	}
	_ = process.Send(m.ReplyTo, Failed{Board: m.Board, Code: CodeUnavailable, Msg: "join: node draining", Tag: m.Tag})
}

// errBroken: the board crashed too often lately and is left stopped.
type errBroken struct{ until time.Time }

func (e errBroken) Error() string {
	return "board crashed repeatedly; unavailable until " + e.until.Format(time.RFC3339)
}

func (st *routerState) ensure(process *gen.ServerProcess, id string) (etf.Pid, error) {
	if pid, ok := st.active[id]; ok {
		return pid, nil
	}
	if until, ok := st.broken[id]; ok {
		if time.Now().Before(until) {
			return etf.Pid{}, errBroken{until}
		}
		delete(st.broken, id)
		delete(st.crashes, id)
	}
	p, err := startBoard(st.sup, st.deps, id)
	if err != nil {
		return etf.Pid{}, err
	}
	pid := p.Self()
	st.track(process, id, pid)
	_ = process.Send(pid, activate{Delay: st.backoff(id)})
	return pid, nil
}

func (st *routerState) track(process *gen.ServerProcess, id string, pid etf.Pid) {
	st.active[id] = pid
	st.byPid[pid] = id
	process.MonitorProcess(pid)
	metrics.BoardsActive.Inc()
}

// register comes from every board's Init: from boards the router started
// (already tracked) and from boards their supervisor restarted after a
// crash. A restarted board that finds another actor of its id in place,
// or whose board is over its crash limit, is stopped.
func (st *routerState) register(process *gen.ServerProcess, m register) {
	if pid, ok := st.active[m.Board]; ok {
		if pid != m.Pid {
			_ = process.Send(m.Pid, gen.MessageExit{Reason: "normal"})
		}
		return
	}
	if _, ok := st.broken[m.Board]; ok {
		_ = process.Send(m.Pid, gen.MessageExit{Reason: "normal"})
		return
	}
	if st.owner(process, m.Board) != process.NodeName() || st.draining {
		// Restarted where it no longer belongs: activating it here would
		// fence the owner; its members re-join there.
		_ = process.Send(m.Pid, gen.MessageExit{Reason: "normal"})
		return
	}
	st.track(process, m.Board, m.Pid)
	_ = process.Send(m.Pid, activate{Delay: st.backoff(m.Board)})
}

func (st *routerState) crashed(id string) {
	metrics.BoardRestarts.Inc()
	cfg := st.deps.Config
	window := time.Duration(cfg.RestartWindowMs) * time.Millisecond
	now := time.Now()
	recent := st.crashes[id][:0]
	for _, t := range st.crashes[id] {
		if now.Sub(t) < window {
			recent = append(recent, t)
		}
	}
	recent = append(recent, now)
	st.crashes[id] = recent
	if len(recent) > cfg.MaxRestarts {
		st.broken[id] = now.Add(window)
		st.deps.Log.Error("board over its crash limit; left stopped", "board", id,
			"crashes", len(recent), "window", window)
	}
}

// backoff grows with the board's recent crashes: 0, 50ms, 100ms, 200ms...
func (st *routerState) backoff(id string) time.Duration {
	n := len(st.crashes[id])
	if n == 0 {
		return 0
	}
	return min(time.Duration(25<<min(n, 8))*time.Millisecond, 5*time.Second)
}
