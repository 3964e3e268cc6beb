package console

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/node"

	"github.com/tavernhq/tavern/apps/board"
	"github.com/tavernhq/tavern/apps/board/rules"
	"github.com/tavernhq/tavern/apps/gateway"
)

// server is tavern_console: it answers the requests listed in Requests,
// each a gen_server call whose reply is plain Erlang data.
type server struct{ gen.Server }

type serverState struct {
	cfg       Config
	node      node.Node
	opsPerSec float64
	opsBurst  int
	draining  bool
	drained   bool
}

// Messages between console servers and to self.
type drainTick struct{}

// noticeLocal is the cast a node's console sends to every peer's console
// for {notice, Text}: deliver to your own clients, do not pass it on.
var noticeLocal = etf.Atom("notice_local")

// Limits of requests.
const (
	maxNotice = 4096 // bytes of a notice's text
	maxRate   = 1e6  // ops_per_sec and ops_burst
)

func (s *server) Init(process *gen.ServerProcess, args ...etf.Term) error {
	a := args[0].(*App)
	process.State = &serverState{cfg: a.cfg, node: a.node, opsPerSec: a.cfg.OpsPerSec, opsBurst: a.cfg.OpsBurst}
	return nil
}

func (s *server) HandleCall(process *gen.ServerProcess, from gen.ServerFrom, message etf.Term) (etf.Term, gen.ServerStatus) {
	st := process.State.(*serverState)
	return st.handle(process, message), gen.ServerStatusOK
}

func (s *server) HandleCast(process *gen.ServerProcess, message etf.Term) gen.ServerStatus {
	st := process.State.(*serverState)
	if t, ok := message.(etf.Tuple); ok && len(t) == 2 && t[0] == noticeLocal {
		if txt, ok := text(t[1]); ok && txt != "" && len(txt) <= maxNotice {
			if err := gateway.Notice(process, txt); err != nil && !errors.Is(err, gateway.ErrNotRunning) {
				st.cfg.Log.Warn("notice from a peer", "err", err)
			}
		}
	}
	return gen.ServerStatusOK
}

func (s *server) HandleInfo(process *gen.ServerProcess, message etf.Term) gen.ServerStatus {
	st := process.State.(*serverState)
	if _, ok := message.(drainTick); ok {
		st.checkDrained(process)
	}
	return gen.ServerStatusOK
}

// handle answers one request.
func (st *serverState) handle(p *gen.ServerProcess, req etf.Term) etf.Term {
	switch r := req.(type) {
	case etf.Atom:
		switch r {
		case "info":
			return st.info(p)
		case "nodes":
			return st.nodes(p)
		case "boards":
			return st.boards(p)
		case "clients":
			return st.clients(p)
		case "drain":
			return st.drain(p)
		case "help":
			return st.help()
		}
	case etf.Tuple:
		if len(r) == 0 {
			break
		}
		tag, _ := r[0].(etf.Atom)
		switch {
		case tag == "board" && len(r) == 2:
			return st.board(p, r[1])
		case tag == "kill" && len(r) == 2:
			return st.kill(p, r[1])
		case tag == "notice" && len(r) == 2:
			return st.notice(p, r[1])
		case tag == "set" && len(r) == 3:
			return st.set(r[1], r[2])
		}
	}
	return errReply("unknown_request")
}

func (st *serverState) live(p gen.Process) []string {
	if st.cfg.Live == nil {
		return []string{p.NodeName()}
	}
	return st.cfg.Live()
}

// activeBoards lists this node's active boards, sorted; none when the
// board application does not run.
func activeBoards(p gen.Process) ([]string, error) {
	if p.ProcessByName(board.RouterName) == nil {
		return nil, nil
	}
	ids, err := board.Boards(p)
	sort.Strings(ids)
	return ids, err
}

// localClients lists this node's clients; none when the gateway does not
// run.
func localClients(p gen.Process) ([]gateway.ClientInfo, error) {
	list, err := gateway.Clients(p)
	if errors.Is(err, gateway.ErrNotRunning) {
		return nil, nil
	}
	return list, err
}

func (st *serverState) info(p *gen.ServerProcess) etf.Term {
	ids, err := activeBoards(p)
	if err != nil {
		return errText("boards: %v", err)
	}
	cl, err := localClients(p)
	if err != nil {
		return errText("clients: %v", err)
	}
	m := etf.Map{
		etf.Atom("node"):        etf.Atom(p.NodeName()),
		etf.Atom("version"):     bin(st.cfg.Version),
		etf.Atom("uptime_s"):    p.NodeUptime(),
		etf.Atom("boards"):      len(ids),
		etf.Atom("clients"):     len(cl),
		etf.Atom("nodes"):       atoms(st.live(p)),
		etf.Atom("draining"):    st.draining,
		etf.Atom("ops_per_sec"): st.opsPerSec,
		etf.Atom("ops_burst"):   st.opsBurst,
	}
	if st.cfg.DSNKind != "" {
		m[etf.Atom("dsn_kind")] = etf.Atom(st.cfg.DSNKind)
	}
	if st.cfg.LogLevel != nil {
		m[etf.Atom("log_level")] = etf.Atom(levelName(st.cfg.LogLevel.Level()))
	}
	return okReply(m)
}

func (st *serverState) nodes(p *gen.ServerProcess) etf.Term {
	live := st.live(p)
	connected := st.node.Nodes()
	all := slices.Concat(live, connected)
	sort.Strings(all)
	all = slices.Compact(all)
	out := make(etf.List, 0, len(all))
	for _, n := range all {
		out = append(out, etf.Map{
			etf.Atom("node"):      etf.Atom(n),
			etf.Atom("self"):      n == p.NodeName(),
			etf.Atom("live"):      slices.Contains(live, n),
			etf.Atom("connected"): slices.Contains(connected, n),
		})
	}
	return okReply(out)
}

func boardMap(in board.Info) etf.Map {
	users := slices.Clone(in.Users)
	sort.Strings(users)
	return etf.Map{
		etf.Atom("id"):       bin(in.ID),
		etf.Atom("seq"):      in.Seq,
		etf.Atom("epoch"):    in.Epoch,
		etf.Atom("pending"):  in.Pending,
		etf.Atom("members"):  in.Members,
		etf.Atom("users"):    bins(users),
		etf.Atom("entities"): in.Entities,
		etf.Atom("loaded"):   in.Loaded,
	}
}

func (st *serverState) boards(p *gen.ServerProcess) etf.Term {
	ids, err := activeBoards(p)
	if err != nil {
		return errText("boards: %v", err)
	}
	out := make(etf.List, 0, len(ids))
	for _, id := range ids {
		in, err := board.Describe(p, id)
		if err != nil {
			continue // stopped since it was listed
		}
		out = append(out, boardMap(in))
	}
	return okReply(out)
}

// boardID reads a board id given as a binary, a string or an atom.
func boardID(t etf.Term) (string, etf.Term) {
	id, ok := text(t)
	if !ok || !rules.ValidID(id) {
		return "", errText("bad board id %s: ids match %s", show(t), rules.IDPattern)
	}
	return id, nil
}

func (st *serverState) board(p *gen.ServerProcess, t etf.Term) etf.Term {
	id, bad := boardID(t)
	if bad != nil {
		return bad
	}
	if p.ProcessByName(board.RouterName) == nil {
		return errReply("not_active")
	}
	if _, ok, err := board.Lookup(p, id); err != nil {
		return errText("board %s: %v", id, err)
	} else if !ok {
		return errReply("not_active")
	}
	in, err := board.Describe(p, id)
	if err != nil {
		return errReply("not_active")
	}
	return okReply(boardMap(in))
}

func (st *serverState) kill(p *gen.ServerProcess, t etf.Term) etf.Term {
	id, bad := boardID(t)
	if bad != nil {
		return bad
	}
	if p.ProcessByName(board.RouterName) == nil {
		return errReply("not_active")
	}
	ok, err := board.Crash(p, id)
	if err != nil {
		return errText("kill %s: %v", id, err)
	}
	if !ok {
		return errReply("not_active")
	}
	st.cfg.Log.Warn("board actor killed by the console", "board", id)
	return atomOK
}

func (st *serverState) clients(p *gen.ServerProcess) etf.Term {
	list, err := gateway.Clients(p)
	if err != nil {
		return errText("%v", err)
	}
	now := time.Now()
	out := make(etf.List, 0, len(list))
	for _, c := range list {
		out = append(out, etf.Map{
			etf.Atom("session"):      bin(c.Session),
			etf.Atom("user"):         bin(c.User),
			etf.Atom("remote"):       bin(c.RemoteAddr),
			etf.Atom("boards"):       bins(c.Boards),
			etf.Atom("connected_at"): bin(c.ConnectedAt.UTC().Format(time.RFC3339)),
			etf.Atom("connected_s"):  int64(now.Sub(c.ConnectedAt) / time.Second),
		})
	}
	return okReply(out)
}

// notice delivers to this node's clients and casts to the console of
// every other live node, which delivers to its own.
func (st *serverState) notice(p *gen.ServerProcess, t etf.Term) etf.Term {
	txt, ok := text(t)
	switch {
	case !ok:
		return errText("notice text must be a string or binary, got %s", show(t))
	case strings.TrimSpace(txt) == "":
		return errText("notice text is empty")
	case len(txt) > maxNotice:
		return errText("notice text is longer than %d bytes", maxNotice)
	}
	if err := gateway.Notice(p, txt); err != nil && !errors.Is(err, gateway.ErrNotRunning) {
		return errText("notice: %v", err)
	}
	sent := []string{p.NodeName()}
	for _, n := range st.live(p) {
		if n == p.NodeName() {
			continue
		}
		if err := p.Cast(gen.ProcessID{Name: ServerName, Node: n}, etf.Tuple{noticeLocal, bin(txt)}); err != nil {
			st.cfg.Log.Warn("notice: peer unreachable", "peer", n, "err", err)
			continue
		}
		sent = append(sent, n)
	}
	st.cfg.Log.Info("notice sent", "nodes", len(sent))
	sort.Strings(sent)
	return okReply(etf.Map{etf.Atom("nodes"): atoms(sent)})
}

// Settings {set, Key, Value} changes.
var settable = []string{"log_level", "ops_per_sec", "ops_burst"}

func (st *serverState) set(k, v etf.Term) etf.Term {
	key, ok := text(k)
	if !ok {
		return errText("setting name must be an atom, got %s", show(k))
	}
	changed := func(old, new etf.Term) etf.Term {
		st.cfg.Log.Info("setting changed by the console", "key", key, "old", Plain(old), "new", Plain(new))
		return okReply(etf.Map{etf.Atom("key"): etf.Atom(key), etf.Atom("old"): old, etf.Atom("new"): new})
	}
	switch key {
	case "log_level":
		if st.cfg.LogLevel == nil {
			return errText("log_level cannot be changed on this node")
		}
		s, _ := text(v)
		l, ok := parseLevel(s)
		if !ok {
			return errText("log_level must be debug, info, warn or error, got %s", show(v))
		}
		old := levelName(st.cfg.LogLevel.Level())
		st.cfg.LogLevel.Set(l)
		return changed(etf.Atom(old), etf.Atom(levelName(l)))
	case "ops_per_sec":
		f, ok := number(v)
		if !ok || math.IsNaN(f) || f <= 0 || f > maxRate {
			return errText("ops_per_sec must be a number > 0 and at most %d, got %s", int(maxRate), show(v))
		}
		if err := st.cfg.SetOpsRate(f, st.opsBurst); err != nil {
			return errText("ops_per_sec: %v", err)
		}
		old := st.opsPerSec
		st.opsPerSec = f
		return changed(old, f)
	case "ops_burst":
		f, ok := number(v)
		if !ok || f != math.Trunc(f) || f < 1 || f > maxRate {
			return errText("ops_burst must be an integer from 1 to %d, got %s", int(maxRate), show(v))
		}
		n := int(f)
		if err := st.cfg.SetOpsRate(st.opsPerSec, n); err != nil {
			return errText("ops_burst: %v", err)
		}
		old := st.opsBurst
		st.opsBurst = n
		return changed(old, n)
	}
	return errText("unknown setting %s; settable: %s", show(k), strings.Join(settable, ", "))
}

func parseLevel(s string) (slog.Level, bool) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, true
	case "info":
		return slog.LevelInfo, true
	case "warn", "warning":
		return slog.LevelWarn, true
	case "error":
		return slog.LevelError, true
	}
	return 0, false
}

func levelName(l slog.Level) string {
	switch {
	case l <= slog.LevelDebug:
		return "debug"
	case l <= slog.LevelInfo:
		return "info"
	case l <= slog.LevelWarn:
		return "warn"
	}
	return "error"
}

// drain hands every board of this node to the other nodes and closes
// every client with 1012; once the node is empty, OnDrained stops it.
// A second drain repeats both (there is nothing left to hand) and
// answers the same way.
func (st *serverState) drain(p *gen.ServerProcess) etf.Term {
	nb := 0
	if p.ProcessByName(board.RouterName) != nil {
		n, err := board.Drain(p)
		if err != nil {
			return errText("drain boards: %v", err)
		}
		nb = n
	}
	nc, err := gateway.Drain(p)
	if err != nil && !errors.Is(err, gateway.ErrNotRunning) {
		return errText("drain clients: %v", err)
	}
	if !st.draining {
		st.draining = true
		st.cfg.Log.Warn("draining: boards handed to other nodes, clients closed with 1012", "boards", nb, "clients", nc)
		p.SendAfter(p.Self(), drainTick{}, st.cfg.DrainPoll)
	}
	return okReply(etf.Map{etf.Atom("boards"): nb, etf.Atom("clients"): nc})
}

func (st *serverState) checkDrained(p *gen.ServerProcess) {
	if st.drained {
		return
	}
	ids, berr := activeBoards(p)
	cl, cerr := localClients(p)
	if berr != nil || cerr != nil || len(ids) > 0 || len(cl) > 0 {
		p.SendAfter(p.Self(), drainTick{}, st.cfg.DrainPoll)
		return
	}
	st.drained = true
	st.cfg.Log.Warn("drained: no board and no client left")
	if st.cfg.OnDrained != nil {
		// Not from this process: stopping the node stops it.
		go st.cfg.OnDrained()
	}
}

func (st *serverState) help() etf.Term {
	out := make(etf.List, 0, len(Requests))
	for _, r := range Requests {
		out = append(out, bin(r.Erlang+"  "+r.Help))
	}
	return okReply(out)
}

// show renders a term for an error message.
func show(t etf.Term) string {
	if s, ok := text(t); ok {
		if _, isAtom := t.(etf.Atom); isAtom {
			return s
		}
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(Plain(t))
}
