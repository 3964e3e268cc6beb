package bus_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/node"

	"github.com/tavernhq/tavern/apps/bus"
	"github.com/tavernhq/tavern/internal/ergonode"
	"github.com/tavernhq/tavern/internal/testutil"
)

const cookie = "bus-test-cookie"

var nodeSeq atomic.Int64

func testLogger() *slog.Logger {
	if os.Getenv("TAVERN_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type testNode struct {
	t    *testing.T
	node node.Node
	app  *bus.App
	epmd uint16
	// driver is a process of the node that calls the bus API, as an actor
	// of the node would.
	driver *probe
}

// cluster starts n nodes that share one EPMD and connects them all.
func cluster(t *testing.T, n int) []*testNode {
	t.Helper()
	nodes := make([]*testNode, n)
	t.Cleanup(func() { quiesceNodes(t, nodes) })
	epmd := uint16(testutil.FreePort(t))
	for i := range nodes {
		nodes[i] = startNode(t, epmd, bus.DefaultConfig())
	}
	for i := range nodes {
		for j := i + 1; j < n; j++ {
			connect(t, nodes[i], nodes[j])
		}
	}
	for _, tn := range nodes {
		testutil.Eventually(t, 15*time.Second, func() bool {
			return len(bus.Members(tn.driver.proc)) == n
		}, "%s sees %d of %d bus servers", tn.node.Name(), len(bus.Members(tn.driver.proc)), n)
	}
	return nodes
}

// connect connects a to b, retrying: Ergo's EPMD server records a node
// only after it has answered its registration (proto/dist/epmd.go:105-112),
// so a node may be unknown for a moment after it has started.
func connect(t *testing.T, a, b *testNode) {
	t.Helper()
	testutil.Eventually(t, 15*time.Second, func() bool {
		return a.node.Connect(b.node.Name()) == nil
	}, "connect %s to %s", a.node.Name(), b.node.Name())
}

func startNode(t *testing.T, epmd uint16, cfg bus.Config) *testNode {
	t.Helper()
	name := fmt.Sprintf("bus-%d-%d@127.0.0.1", os.Getpid(), nodeSeq.Add(1))
	app := bus.New(cfg, testLogger())
	n, err := ergonode.Start(context.Background(), ergonode.Options{
		Name: name, Cookie: cookie, DistListen: "127.0.0.1:0", EPMDPort: epmd,
		Applications: []gen.ApplicationBehavior{app},
	})
	if err != nil {
		t.Fatalf("start node %s: %v", name, err)
	}
	tn := &testNode{t: t, node: n, app: app, epmd: epmd}
	t.Cleanup(tn.stop)
	tn.driver = tn.spawn(1024)
	return tn
}

// quiesceNodes runs once a test's nodes are stopped. Ergo 2.2.4 keeps the
// owner pid of its network event in a package variable that starting a
// node writes and every connection's goroutines read (node/core.go:141,
// node/network.go:1349-1387): the next test's nodes would race with this
// one's connections winding down. So it waits until none of Ergo's
// goroutines is left, and then takes each node's connection lock, which
// those goroutines took after their last read: that orders their reads
// before the next start. It doubles as a per-test check that stopping a
// node leaves nothing behind, but for the EPMD server the first node of a
// test starts, which Ergo never stops (proto/dist/epmd.go:42) and which
// reads no shared state.
func quiesceNodes(t *testing.T, nodes []*testNode) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := ergoGoroutines()
		if left == "" {
			for _, tn := range nodes {
				if tn != nil {
					_ = tn.node.Nodes()
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ergo goroutines left 10s after the nodes stopped:\n%s", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const epmdServe = "github.com/ergo-services/ergo/proto/dist.(*epmd).serve"

func ergoGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "github.com/ergo-services/ergo/") && !strings.Contains(g, epmdServe) &&
			!strings.Contains(g, "ergoGoroutines") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

func (tn *testNode) stop() {
	if tn.node.IsAlive() {
		tn.node.Stop()
	}
	tn.node.Wait()
}

// spawn starts a probe with the given mailbox.
func (tn *testNode) spawn(mailbox uint16) *probe {
	tn.t.Helper()
	pr := &probe{}
	p, err := tn.node.Spawn("", gen.ProcessOptions{MailboxSize: mailbox}, pr)
	if err != nil {
		tn.t.Fatalf("spawn: %v", err)
	}
	pr.proc = p
	return pr
}

// probe is a gen.Server that records what it receives and runs functions
// inside its own process, so the API is called from an actor.
type probe struct {
	gen.Server
	proc gen.Process

	mu   sync.Mutex
	msgs []etf.Term
	// block, if set, stalls HandleInfo until closed.
	block chan struct{}
}

type call func(p gen.Process) (any, error)

func (pr *probe) HandleInfo(sp *gen.ServerProcess, m etf.Term) gen.ServerStatus {
	pr.mu.Lock()
	block := pr.block
	pr.msgs = append(pr.msgs, m)
	pr.mu.Unlock()
	if block != nil {
		<-block
	}
	return gen.ServerStatusOK
}

func (pr *probe) HandleDirect(sp *gen.ServerProcess, ref etf.Ref, m interface{}) (interface{}, gen.DirectStatus) {
	if f, ok := m.(call); ok {
		return f(sp)
	}
	return nil, fmt.Errorf("probe: unexpected %T", m)
}

// do runs f in the probe's process.
func (pr *probe) do(t *testing.T, f call) any {
	t.Helper()
	v, err := pr.proc.DirectWithTimeout(f, 30)
	if err != nil {
		t.Fatalf("in %s: %v", pr.proc.Self(), err)
	}
	return v
}

func (pr *probe) self() etf.Pid { return pr.proc.Self() }

func (pr *probe) received() []etf.Term {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return append([]etf.Term(nil), pr.msgs...)
}

func (pr *probe) count() int {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return len(pr.msgs)
}

// waitFor waits until the probe has received n messages and returns them.
func (pr *probe) waitFor(t *testing.T, n int) []etf.Term {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() bool { return pr.count() >= n },
		"%s received %d of %d messages", pr.self(), pr.count(), n)
	return pr.received()
}

// sub subscribes the probe to topic, from its own process.
func (pr *probe) sub(t *testing.T, topic string) {
	t.Helper()
	pr.do(t, func(p gen.Process) (any, error) { return nil, bus.Sub(p, topic, p.Self()) })
}

func (pr *probe) unsub(t *testing.T, topic string) {
	t.Helper()
	pr.do(t, func(p gen.Process) (any, error) { return nil, bus.Unsub(p, topic, p.Self()) })
}

func (pr *probe) pub(t *testing.T, topic string, msg etf.Term) {
	t.Helper()
	pr.do(t, func(p gen.Process) (any, error) { return nil, bus.Pub(p, topic, msg) })
}

func (pr *probe) subscribers(t *testing.T, topic string) []etf.Pid {
	t.Helper()
	return pr.do(t, func(p gen.Process) (any, error) { return bus.Subscribers(p, topic) }).([]etf.Pid)
}

// ev is a numbered test event, a plain term so that it crosses nodes.
func ev(tag string, i int) etf.Tuple { return etf.Tuple{etf.Atom(tag), i} }

// evNum reads ev's number, whatever integer type decoding chose.
func evNum(t *testing.T, m etf.Term) (string, int) {
	t.Helper()
	tt, ok := m.(etf.Tuple)
	if !ok || len(tt) != 2 {
		t.Fatalf("not an event: %#v", m)
	}
	tag, _ := tt[0].(etf.Atom)
	switch n := tt[1].(type) {
	case int:
		return string(tag), n
	case int64:
		return string(tag), int(n)
	}
	t.Fatalf("not an event number: %#v", tt[1])
	return "", 0
}

func hasPid(l []etf.Pid, p etf.Pid) bool {
	for _, q := range l {
		if q == p {
			return true
		}
	}
	return false
}
