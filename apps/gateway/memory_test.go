package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/ergo-services/ergo/gen"

	"github.com/tavernhq/tavern/apps/board"
	"github.com/tavernhq/tavern/apps/gateway"
	"github.com/tavernhq/tavern/apps/gateway/gatewaytest"
	"github.com/tavernhq/tavern/apps/store"
	"github.com/tavernhq/tavern/internal/ergonode"
	"github.com/tavernhq/tavern/internal/sysconfig"
)

// memNodeEnv makes the test binary run a node for TestIdleMemory instead of
// the tests (see TestMain).
const memNodeEnv = "TAVERN_GATEWAY_MEMNODE"

// idleBudget is the most memory an idle client (hello said, one board
// joined) may cost the node: its session process, its connection's
// buffers and goroutines.
const idleBudget = 60 << 10

// TestIdleMemory measures, in a node of its own process, what an idle
// client costs: heap and stacks in use after a GC, before and after 400
// clients connect, say hello and join a board.
func TestIdleMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node in a child process")
	}
	if raceEnabled {
		t.Skip("the race detector changes memory use")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), memNodeEnv+"="+t.TempDir())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	var wsURL, memURL string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "MEMNODE" {
			wsURL, memURL = "ws://"+f[1]+"/ws", "http://"+f[2]+"/mem"
			break
		}
	}
	if wsURL == "" {
		t.Fatal("the node did not start")
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()

	profile := 0
	mem := func() (heap, stack, goroutines int64) {
		profile++
		u := memURL
		if p := os.Getenv("TAVERN_MEM_PROFILE"); p != "" {
			u += fmt.Sprintf("?profile=%s.%d", p, profile)
		}
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m struct{ Heap, Stack, Goroutines int64 }
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		return m.Heap, m.Stack, m.Goroutines
	}
	// Warm up: the first connections allocate pools.
	warm := hello2(t, wsURL, "warm", "mem-board")
	defer warm.Close()
	h0, s0, g0 := mem()
	const clients = 400
	for i := range clients {
		c := hello2(t, wsURL, fmt.Sprint("u", i), "mem-board")
		defer c.Close()
	}
	h1, s1, g1 := mem()
	per := (h1 - h0 + s1 - s0) / clients
	t.Logf("per idle client: %d bytes (heap %d, stacks %d), %.1f goroutines",
		per, (h1-h0)/clients, (s1-s0)/clients, float64(g1-g0)/clients)
	if per > idleBudget {
		t.Fatalf("an idle client costs %d bytes, budget %d", per, idleBudget)
	}
}

// hello2 connects with a raw client (no background reader: an idle client
// reads nothing) and waits for the join to be answered.
func hello2(t *testing.T, url, user, b string) *gatewaytest.Client {
	t.Helper()
	c := gatewaytest.Dial(t, url)
	c.Hello(user)
	c.Join(b, -1)
	c.Expect("presence")
	return c
}

// runMemNode runs a node for TestIdleMemory until stdin closes.
func runMemNode(dir string) {
	if os.Getenv("TAVERN_MEM_PROFILE") != "" {
		runtime.MemProfileRate = 1 // every allocation, for an exact diff
	}
	cfg := sysconfig.Default()
	cfg.Gateway.Listen = "127.0.0.1:0"
	cfg.Gateway.MaxConnsPerIP = 10000
	cfg.Gateway.ConnRatePerIP = 1e6
	cfg.Store.DSN = "sqlite:" + filepath.Join(dir, "mem.db")
	log := gatewaytest.Logger()
	st, err := store.Open(context.Background(), cfg.Store, log)
	if err != nil {
		panic(err)
	}
	gw := gateway.NewApp(cfg.Gateway, "mem@127.0.0.1", log, st.Ping)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	epmd := l.Addr().(*net.TCPAddr).Port
	l.Close()
	n, err := ergonode.Start(context.Background(), ergonode.Options{
		Name: "mem@127.0.0.1", Cookie: "mem", DistListen: "127.0.0.1:0", EPMDPort: uint16(epmd),
		Applications: []gen.ApplicationBehavior{board.NewApp(board.NewDeps(st, &cfg, log)), gw},
	})
	if err != nil {
		panic(err)
	}
	ml, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() {
		_ = http.Serve(ml, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Let the sessions settle, then collect twice.
			time.Sleep(200 * time.Millisecond)
			runtime.GC()
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if f := r.URL.Query().Get("profile"); f != "" {
				pf, _ := os.Create(f)
				_ = pprof.Lookup("heap").WriteTo(pf, 0)
				pf.Close()
			}
			_ = json.NewEncoder(w).Encode(map[string]int64{
				"Heap": int64(ms.HeapInuse), "Stack": int64(ms.StackInuse), "Goroutines": int64(runtime.NumGoroutine())})
		}))
	}()
	fmt.Printf("MEMNODE %s %s\n", gw.Addr(), ml.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	n.Stop()
	st.Close()
}
