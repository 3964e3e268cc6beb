package board

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/node"

	"github.com/tavernhq/tavern/apps/cluster"
	"github.com/tavernhq/tavern/apps/gateway/wire"
	"github.com/tavernhq/tavern/apps/store"
	"github.com/tavernhq/tavern/internal/ergonode"
	"github.com/tavernhq/tavern/internal/sysconfig"
	"github.com/tavernhq/tavern/internal/testutil"
)

var nodeSeq struct {
	sync.Mutex
	n int
}

type testNode struct {
	t     testing.TB
	node  node.Node
	name  string
	store *store.Store
	cfg   *sysconfig.Config
	deps  *Deps
}

func testLogger() *slog.Logger {
	if os.Getenv("TAVERN_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// sqliteDSN is a fresh database file in the test's temp dir.
func sqliteDSN(t testing.TB) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "tavern.db")
}

// startNode starts an in-process node with the board app on dsn.
func startNode(t testing.TB, dsn string, tweak func(*sysconfig.Config)) *testNode {
	t.Helper()
	cfg := sysconfig.Default()
	cfg.Store.DSN = dsn
	cfg.Board.Mailbox = 1024
	if tweak != nil {
		tweak(&cfg)
	}
	nodeSeq.Lock()
	nodeSeq.n++
	name := fmt.Sprintf("board-test-%d-%d@127.0.0.1", os.Getpid(), nodeSeq.n)
	nodeSeq.Unlock()
	log := testLogger()
	st, err := store.Open(context.Background(), cfg.Store, log)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	deps := NewDeps(st, &cfg, log)
	epmd := cfg.Node.EPMDPort
	if epmd == sysconfig.Default().Node.EPMDPort {
		epmd = testutil.FreePort(t) // alone: its own EPMD
	}
	var placement *cluster.Placement
	if cfg.Cluster.Discovery == "postgres" || len(cfg.Cluster.Seeds) > 0 {
		placement = cluster.NewPlacement(name)
		deps.Placement = placement
	}
	n, err := ergonode.Start(context.Background(), ergonode.Options{
		Name: name, Cookie: "test-cookie", DistListen: "127.0.0.1:0",
		EPMDPort:     uint16(epmd),
		Applications: []gen.ApplicationBehavior{NewApp(deps)},
	})
	if err != nil {
		st.Close()
		t.Fatalf("start node: %v", err)
	}
	if placement != nil {
		var cst *store.Store
		if cfg.Cluster.Discovery == "postgres" {
			cst = st
		}
		app := cluster.NewApp(cluster.Config{
			Self: name, Seeds: cfg.Cluster.Seeds, Store: cst,
			Heartbeat: time.Duration(cfg.Cluster.HeartbeatMs) * time.Millisecond,
			DownAfter: time.Duration(cfg.Cluster.DownAfterMs) * time.Millisecond,
			Placement: placement, Log: log.With("node", name),
			Changed: gen.ProcessID{Name: RouterName, Node: name}, ChangedMsg: MembershipChanged{},
		}, n)
		if _, err := n.ApplicationLoad(app); err != nil {
			t.Fatalf("load cluster: %v", err)
		}
		if _, err := n.ApplicationStart("cluster"); err != nil {
			t.Fatalf("start cluster: %v", err)
		}
	}
	tn := &testNode{t: t, node: n, name: name, store: st, cfg: &cfg, deps: deps}
	t.Cleanup(tn.stop)
	return tn
}

func (tn *testNode) stop() {
	if tn.node == nil {
		return
	}
	_ = tn.node.ApplicationStop("board")
	tn.store.Close()
	tn.node.Stop()
	tn.node = nil
}

// probe is a process for calling the board API from a test.
func (tn *testNode) probe() gen.Process {
	tn.t.Helper()
	p, err := tn.node.Spawn("", gen.ProcessOptions{}, &gen.Server{})
	if err != nil {
		tn.t.Fatalf("spawn probe: %v", err)
	}
	tn.t.Cleanup(func() { p.Kill() })
	return p
}

// client is a member process driven by a test: its frames are what a
// WebSocket client would read.
type client struct {
	t       testing.TB
	user    string
	proc    gen.Process
	frames  chan []byte
	closed  chan int
	pending []map[string]any
	direct  atomic.Int64 // frames boards wrote through its Feed
}

// directOut is a client's connection as boards see it through a Feed.
type directOut struct{ c *client }

func (o directOut) Send(frame []byte) bool {
	o.c.direct.Add(1)
	return clientOut(o).Send(frame)
}

func (o directOut) Close(code int, reason string) { clientOut(o).Close(code, reason) }

type clientOut struct{ c *client }

func (o clientOut) Send(frame []byte) bool {
	select {
	case o.c.frames <- frame:
		return true
	default:
		return false
	}
}

func (o clientOut) Close(code int, reason string) {
	select {
	case o.c.closed <- code:
	default:
	}
}

type clientProc struct {
	gen.Server
}

type (
	cmdJoin struct {
		board string
		since int64
		ref   string
	}
	cmdOp struct {
		board, id, op, ref string
	}
	cmdLeave struct{ board string }
)

func (cp *clientProc) Init(process *gen.ServerProcess, args ...etf.Term) error {
	c := args[0].(*client)
	m := NewMember(c.user, clientOut{c}, 3*time.Second)
	m.Direct = directOut{c}
	process.State = m
	process.SendAfter(process.Self(), expireTick{}, 100*time.Millisecond)
	return nil
}

type expireTick struct{}

func (cp *clientProc) HandleDirect(process *gen.ServerProcess, ref etf.Ref, message interface{}) (interface{}, gen.DirectStatus) {
	m := process.State.(*Member)
	switch c := message.(type) {
	case cmdJoin:
		m.Join(process, c.board, c.since, wire.Ref{S: c.ref, OK: c.ref != ""})
	case cmdOp:
		m.Op(process, c.board, c.id, []byte(c.op), wire.Ref{S: c.ref, OK: c.ref != ""})
	case cmdLeave:
		m.Leave(process, c.board)
	}
	return nil, gen.DirectStatusOK
}

func (cp *clientProc) HandleInfo(process *gen.ServerProcess, message etf.Term) gen.ServerStatus {
	m := process.State.(*Member)
	if _, ok := message.(expireTick); ok {
		m.Expire(time.Now())
		process.SendAfter(process.Self(), expireTick{}, 100*time.Millisecond)
		return gen.ServerStatusOK
	}
	if b, ok := message.(blockUntil); ok {
		b.started <- struct{}{}
		<-b.release
		return gen.ServerStatusOK
	}
	m.Handle(process, message)
	return gen.ServerStatusOK
}

// blockUntil holds a client's process (not its connection) until release
// is closed: what reaches the client meanwhile came through its Feed.
type blockUntil struct{ started, release chan struct{} }

// block holds c's process; the returned func lets it go on.
func (c *client) block(probe gen.Process) func() {
	c.t.Helper()
	b := blockUntil{started: make(chan struct{}, 1), release: make(chan struct{})}
	if err := probe.Send(c.proc.Self(), b); err != nil {
		c.t.Fatalf("block %s: %v", c.user, err)
	}
	<-b.started
	return func() { close(b.release) }
}

// nothingYet fails if a frame is already waiting (frames only ever arrive
// by Send, so a frame that is not there now was not written before).
func (c *client) nothingYet() {
	c.t.Helper()
	select {
	case f := <-c.frames:
		c.t.Fatalf("%s: unexpected frame %s", c.user, f)
	default:
	}
}

func (tn *testNode) client(user string) *client {
	tn.t.Helper()
	c := &client{t: tn.t, user: user, frames: make(chan []byte, 100000), closed: make(chan int, 1)}
	p, err := tn.node.Spawn("", gen.ProcessOptions{MailboxSize: 4096}, &clientProc{}, c)
	if err != nil {
		tn.t.Fatalf("spawn client: %v", err)
	}
	c.proc = p
	tn.t.Cleanup(func() { p.Kill() })
	return c
}

func (c *client) do(cmd any) {
	c.t.Helper()
	if _, err := c.proc.Direct(cmd); err != nil {
		c.t.Fatalf("%s: %v", c.user, err)
	}
}

func (c *client) join(board string, since int64, ref string) { c.do(cmdJoin{board, since, ref}) }
func (c *client) op(board, id, op, ref string)               { c.do(cmdOp{board, id, op, ref}) }

// next returns the next frame the client got, decoded.
func (c *client) next() map[string]any {
	c.t.Helper()
	if len(c.pending) > 0 {
		m := c.pending[0]
		c.pending = c.pending[1:]
		return m
	}
	select {
	case f := <-c.frames:
		var m map[string]any
		if err := json.Unmarshal(f, &m); err != nil {
			c.t.Fatalf("%s: bad frame %q: %v", c.user, f, err)
		}
		return m
	case code := <-c.closed:
		c.t.Fatalf("%s: closed with %d", c.user, code)
	case <-time.After(10 * time.Second):
		c.t.Fatalf("%s: no frame within 10s", c.user)
	}
	return nil
}

// opUntilAck sends an op, retrying it with the same id while the answer is
// "unavailable" (a board restarting or moving), and returns the ack.
func (c *client) opUntilAck(board, id, op string) map[string]any {
	c.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c.op(board, id, op, "")
		m := c.next()
		if m["t"] == "error" && m["code"] == "unavailable" && time.Now().Before(deadline) {
			continue
		}
		if m["t"] != "ack" {
			c.t.Fatalf("%s: op %s: %v", c.user, id, m)
		}
		return m
	}
}

// nextType returns the type of the next frame without decoding it all
// (benchmarks: the server writes "t" first).
func (c *client) nextType() string {
	c.t.Helper()
	select {
	case f := <-c.frames:
		if len(f) > 7 && string(f[:6]) == `{"t":"` {
			if end := bytes.IndexByte(f[6:], '"'); end >= 0 {
				return string(f[6 : 6+end])
			}
		}
		return "?"
	case code := <-c.closed:
		c.t.Fatalf("%s: closed with %d", c.user, code)
	case <-time.After(10 * time.Second):
		c.t.Fatalf("%s: no frame within 10s", c.user)
	}
	return ""
}

// expect returns the next frame and checks its type.
func (c *client) expect(typ string) map[string]any {
	c.t.Helper()
	m := c.next()
	if m["t"] != typ {
		c.t.Fatalf("%s: want %q, got %v", c.user, typ, m)
	}
	return m
}

// until skips frames until one of type typ (and matching keep, if set).
func (c *client) until(typ string, keep func(map[string]any) bool) map[string]any {
	c.t.Helper()
	for {
		m := c.next()
		if m["t"] == typ && (keep == nil || keep(m)) {
			return m
		}
	}
}

func seqOf(m map[string]any) int64 {
	f, _ := m["seq"].(float64)
	return int64(f)
}
