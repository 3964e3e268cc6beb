package console_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/node"

	"github.com/tavernhq/tavern/apps/board"
	"github.com/tavernhq/tavern/apps/cluster"
	"github.com/tavernhq/tavern/apps/console"
	"github.com/tavernhq/tavern/apps/gateway"
	"github.com/tavernhq/tavern/apps/gateway/gatewaytest"
	"github.com/tavernhq/tavern/apps/store"
	"github.com/tavernhq/tavern/internal/ergonode"
	"github.com/tavernhq/tavern/internal/sysconfig"
	"github.com/tavernhq/tavern/internal/testutil"
)

// tnode is an in-process Tavern node assembled as nodes/server does it
// (store, board, gateway, cluster, console) on random ports, with its own
// cookie, reachable through its EPMD like a real one.
type tnode struct {
	t       *testing.T
	Name    string
	Cfg     *sysconfig.Config // what Dial reads: name, cookie, epmd_port, dist_listen
	Node    node.Node
	Store   *store.Store
	Gateway *gateway.App
	Place   *cluster.Placement
	Level   *slog.LevelVar
	WS      string
	// Drained is closed when the console's OnDrained is called.
	Drained chan struct{}

	stopOnce sync.Once
}

var nodeSeq struct {
	sync.Mutex
	n int
}

// nodeOpts shape a test node.
type nodeOpts struct {
	DSN   string // "" is a fresh SQLite file
	EPMD  int    // shared by the nodes of one cluster; 0 is a port of its own
	Peers bool   // discovery postgres: the nodes of DSN form a cluster
	// Cookie is shared by the nodes of one cluster; "" is one of its own.
	Cookie string
	Tweak  func(*sysconfig.Config)
}

func startNode(t *testing.T, o nodeOpts) *tnode {
	t.Helper()
	nodeSeq.Lock()
	nodeSeq.n++
	name := fmt.Sprintf("tavern-ct%d-%d@127.0.0.1", os.Getpid(), nodeSeq.n)
	nodeSeq.Unlock()
	cfg := sysconfig.Default()
	cfg.Node.Name = name
	cfg.Node.Cookie = sysconfig.Secret(o.Cookie)
	if o.Cookie == "" {
		cfg.Node.Cookie = sysconfig.Secret(fmt.Sprintf("cookie-%x", time.Now().UnixNano()))
	}
	cfg.Node.DistListen = "127.0.0.1:0"
	cfg.Node.EPMDPort = o.EPMD
	if cfg.Node.EPMDPort == 0 {
		cfg.Node.EPMDPort = testutil.FreePort(t)
	}
	cfg.Gateway.Listen = "127.0.0.1:0"
	cfg.Store.DSN = o.DSN
	if cfg.Store.DSN == "" {
		cfg.Store.DSN = gatewaytest.SQLiteDSN(t)
	}
	cfg.Board.Mailbox = 4096
	if o.Peers {
		cfg.Cluster.Discovery = "postgres"
		cfg.Cluster.HeartbeatMs = 100
		cfg.Cluster.DownAfterMs = 1000
	}
	if o.Tweak != nil {
		o.Tweak(&cfg)
	}
	log := gatewaytest.Logger().With("node", name)
	st, err := store.Open(context.Background(), cfg.Store, log)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	deps := board.NewDeps(st, &cfg, log)
	place := cluster.NewPlacement(name)
	deps.Placement = place
	gw := gateway.NewApp(cfg.Gateway, name, log, st.Ping)
	n, err := ergonode.Start(context.Background(), ergonode.Options{
		Name: name, Cookie: cfg.Node.Cookie.Reveal(), DistListen: cfg.Node.DistListen,
		EPMDPort:     uint16(cfg.Node.EPMDPort),
		Applications: []gen.ApplicationBehavior{board.NewApp(deps), gw},
	})
	if err != nil {
		st.Close()
		t.Fatalf("start node: %v", err)
	}
	tn := &tnode{t: t, Name: name, Cfg: &cfg, Node: n, Store: st, Gateway: gw, Place: place,
		Level: new(slog.LevelVar), WS: "ws://" + gw.Addr() + "/ws", Drained: make(chan struct{})}
	t.Cleanup(tn.Stop)

	var shared *store.Store
	if o.Peers {
		shared = st
	}
	capp := cluster.NewApp(cluster.Config{
		Self: name, DistAddr: "127.0.0.1:0", Store: shared,
		Heartbeat: time.Duration(cfg.Cluster.HeartbeatMs) * time.Millisecond,
		DownAfter: time.Duration(cfg.Cluster.DownAfterMs) * time.Millisecond,
		Placement: place, Log: log,
		Changed: gen.ProcessID{Name: board.RouterName, Node: name}, ChangedMsg: board.MembershipChanged{},
	}, n)
	var once sync.Once
	capps := []gen.ApplicationBehavior{capp, console.NewApp(console.Config{
		Version: "test", DSNKind: st.Dialect(), Live: place.Live, LogLevel: tn.Level,
		OpsPerSec: cfg.Gateway.OpsPerSec, OpsBurst: cfg.Gateway.OpsBurst,
		SetOpsRate: gw.SetOpsRate,
		OnDrained:  func() { once.Do(func() { close(tn.Drained) }) },
		DrainPoll:  20 * time.Millisecond,
		Log:        log,
	}, n)}
	for _, app := range capps {
		spec, err := n.ApplicationLoad(app)
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		if _, err := n.ApplicationStart(spec); err != nil {
			t.Fatalf("start %s: %v", spec, err)
		}
	}
	return tn
}

// Stop stops the node as the server does.
func (n *tnode) Stop() {
	n.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.Gateway.Shutdown(ctx)
		for _, app := range []string{"console", "gateway", "board", "cluster"} {
			_ = n.Node.ApplicationStop(app)
		}
		n.Store.Close()
		n.Node.Stop()
		n.Node.Wait()
	})
}

// cluster2 starts two nodes that share a Postgres database and an EPMD
// and waits until each sees the other.
func cluster2(t *testing.T) (*tnode, *tnode) {
	t.Helper()
	dsn := testutil.NewPostgres(t)
	epmd := testutil.FreePort(t)
	cookie := fmt.Sprintf("cluster-%x", time.Now().UnixNano())
	a := startNode(t, nodeOpts{DSN: dsn, EPMD: epmd, Peers: true, Cookie: cookie})
	b := startNode(t, nodeOpts{DSN: dsn, EPMD: epmd, Peers: true, Cookie: cookie})
	for _, n := range []*tnode{a, b} {
		testutil.Eventually(t, 15*time.Second, func() bool { return len(n.Place.Live()) == 2 }, "%s sees both nodes", n.Name)
	}
	return a, b
}

// attach dials a Go console to n and closes it when the test ends.
func attach(t *testing.T, n *tnode) *console.Client {
	t.Helper()
	c, err := console.Dial(context.Background(), n.Cfg, console.DialOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("attach to %s: %v", n.Name, err)
	}
	t.Cleanup(c.Close)
	return c
}

// do runs a console command that must succeed.
func do(t *testing.T, c *console.Client, command string, args ...string) any {
	t.Helper()
	v, err := c.Do(command, args)
	if err != nil {
		t.Fatalf("%s %s: %v", command, strings.Join(args, " "), err)
	}
	return console.Plain(v)
}

// client connects a game client that says hello as user.
func client(t *testing.T, n *tnode, user string) *gatewaytest.Client {
	t.Helper()
	c := gatewaytest.Dial(t, n.WS)
	c.Hello(user)
	return c
}

// ownedBy finds a board id that placement over live gives to owner.
func ownedBy(owner string, live []string, prefix string) string {
	for i := 0; ; i++ {
		id := fmt.Sprint(prefix, i)
		if cluster.Owner(id, live) == owner {
			return id
		}
	}
}

func chat(s string) map[string]any { return map[string]any{"kind": "chat", "text": s} }

func put(id string, x int) map[string]any {
	return map[string]any{"kind": "put", "entities": []any{map[string]any{"id": id, "asset": "a", "pos": []any{x, 0, 0}}}}
}
