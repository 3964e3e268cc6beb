// Package gatewaytest starts real in-process Tavern nodes (store, board and
// gateway applications on 127.0.0.1:0) and drives them with real WebSocket
// clients, for the gateway's tests and for any test or benchmark that
// needs a node to talk to. It is imported only from tests.
package gatewaytest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/node"

	"github.com/tavernhq/tavern/apps/board"
	"github.com/tavernhq/tavern/apps/gateway"
	"github.com/tavernhq/tavern/apps/store"
	"github.com/tavernhq/tavern/internal/ergonode"
	"github.com/tavernhq/tavern/internal/sysconfig"
	"github.com/tavernhq/tavern/internal/testutil"
)

// Options shape a test node.
type Options struct {
	// DSN of the store; "" is a fresh SQLite file in the test's temp dir.
	DSN string
	// Tweak changes the configuration before the node starts: Default,
	// with Listen 127.0.0.1:0, the DSN set and no per-address connection
	// limits.
	Tweak func(*sysconfig.Config)
	// Ready replaces /readyz's check (the store's Ping by default).
	Ready func(context.Context) error
	// Log receives the node's logs (nil: Logger()).
	Log *slog.Logger
}

// Node is a running in-process node.
type Node struct {
	T       testing.TB
	Name    string
	Node    node.Node
	Store   *store.Store
	Config  sysconfig.Config
	Gateway *gateway.App
	// URL is http://host:port of the gateway; WS is ws://host:port/ws
	// (https and wss with TLS).
	URL, WS string

	stopOnce sync.Once
}

var seq struct {
	sync.Mutex
	n int
}

// Logger is the tests' logger: silent unless TAVERN_TEST_LOG is set.
func Logger() *slog.Logger {
	if os.Getenv("TAVERN_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// SQLiteDSN is a fresh SQLite database in the test's temp dir.
func SQLiteDSN(t testing.TB) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "tavern.db")
}

// Start starts a node and stops it when the test ends.
func Start(t testing.TB, o Options) *Node {
	t.Helper()
	cfg := sysconfig.Default()
	cfg.Gateway.Listen = "127.0.0.1:0"
	cfg.Store.DSN = o.DSN
	if cfg.Store.DSN == "" {
		cfg.Store.DSN = SQLiteDSN(t)
	}
	cfg.Board.Mailbox = 4096
	// Tests connect many clients from 127.0.0.1 quickly: no per-address
	// limits unless a test sets them.
	cfg.Gateway.ConnRatePerIP = 1e6
	cfg.Gateway.MaxConnsPerIP = cfg.Gateway.MaxConns
	if o.Tweak != nil {
		o.Tweak(&cfg)
	}
	seq.Lock()
	seq.n++
	name := fmt.Sprintf("gw-test-%d-%d@127.0.0.1", os.Getpid(), seq.n)
	seq.Unlock()
	cfg.Node.Name = name

	log := o.Log
	if log == nil {
		log = Logger()
	}
	st, err := store.Open(context.Background(), cfg.Store, log)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	ready := o.Ready
	if ready == nil {
		ready = st.Ping
	}
	gw := gateway.NewApp(cfg.Gateway, name, log, ready)
	n, err := ergonode.Start(context.Background(), ergonode.Options{
		Name: name, Cookie: "test-cookie", DistListen: "127.0.0.1:0",
		EPMDPort: uint16(testutil.FreePort(t)),
		Applications: []gen.ApplicationBehavior{
			board.NewApp(board.NewDeps(st, &cfg, log)),
			gw,
		},
	})
	if err != nil {
		st.Close()
		t.Fatalf("start node: %v", err)
	}
	tn := &Node{T: t, Name: name, Node: n, Store: st, Config: cfg, Gateway: gw,
		URL: "http://" + gw.Addr(), WS: "ws://" + gw.Addr() + "/ws"}
	if cfg.Gateway.TLS != nil {
		tn.URL, tn.WS = "https://"+gw.Addr(), "wss://"+gw.Addr()+"/ws"
	}
	t.Cleanup(tn.Stop)
	return tn
}

// Stop stops the node the way a server does: the gateway first (clients
// closed with 1001), then the boards, the store and the node.
func (n *Node) Stop() {
	n.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Gateway.Shutdown(ctx); err != nil {
			n.T.Errorf("gateway shutdown: %v", err)
		}
		if err := n.Node.ApplicationStop("gateway"); err != nil {
			n.T.Errorf("stop gateway: %v", err)
		}
		if err := n.Node.ApplicationStop("board"); err != nil {
			n.T.Errorf("stop board: %v", err)
		}
		n.Store.Close()
		n.Node.Stop()
		n.Node.Wait()
	})
}

// Probe returns a process of the node for calling the gateway's and the
// boards' APIs; it is killed when the test ends.
func (n *Node) Probe() gen.Process {
	n.T.Helper()
	p, err := n.Node.Spawn("", gen.ProcessOptions{}, &gen.Server{})
	if err != nil {
		n.T.Fatalf("spawn probe: %v", err)
	}
	n.T.Cleanup(p.Kill)
	return p
}

// BoardSeq is a board's last durable seq, read from the database; -1 if
// the board does not exist.
func (n *Node) BoardSeq(boardID string) int64 {
	n.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, _, err := n.Store.BoardSeq(ctx, boardID)
	if errors.Is(err, sql.ErrNoRows) {
		return -1
	}
	if err != nil {
		n.T.Fatalf("board %s seq: %v", boardID, err)
	}
	return s
}

// Get fetches path from the gateway's HTTP server.
func (n *Node) Get(path string) (int, string) {
	n.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.URL+path, nil)
	if err != nil {
		n.T.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.T.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		n.T.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(b)
}
