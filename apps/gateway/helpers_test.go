package gateway_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tavernhq/tavern/apps/gateway/gatewaytest"
	"github.com/tavernhq/tavern/internal/sysconfig"
	"github.com/tavernhq/tavern/internal/testutil"
)

type msg = gatewaytest.Msg

// backends runs f against a node on SQLite and on Postgres.
func backends(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, gatewaytest.SQLiteDSN(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, testutil.NewPostgres(t)) })
}

var boardN atomic.Int64

// newBoard returns a board id no other test uses.
func newBoard() string { return fmt.Sprintf("b%d-%d", time.Now().UnixNano()%1e6, boardN.Add(1)) }

// start starts a SQLite node with tweak.
func start(t *testing.T, tweak func(*sysconfig.Config)) *gatewaytest.Node {
	return gatewaytest.Start(t, gatewaytest.Options{Tweak: tweak})
}

// hello dials n and says hello as user.
func hello(t *testing.T, n *gatewaytest.Node, user string) *gatewaytest.Client {
	t.Helper()
	c := gatewaytest.Dial(t, n.WS)
	c.Hello(user)
	return c
}

// joined dials, says hello and joins board (consuming the presence).
func joined(t *testing.T, n *gatewaytest.Node, user, board string) *gatewaytest.Client {
	t.Helper()
	c := hello(t, n, user)
	c.JoinFull(board)
	return c
}

// alive checks that c's connection still works: a ping gets its pong.
// Messages queued before the pong are skipped.
func alive(t *testing.T, c *gatewaytest.Client) {
	t.Helper()
	ref := fmt.Sprintf("alive-%d", boardN.Add(1))
	c.Send(msg{"t": "ping", "ref": ref})
	c.Until("pong", func(m msg) bool { return m.Str("ref") == ref })
}

// pingNext sends a ping and checks that its pong is the next message.
func pingNext(t *testing.T, c *gatewaytest.Client) {
	t.Helper()
	ref := fmt.Sprintf("pn-%d", boardN.Add(1))
	c.Send(msg{"t": "ping", "ref": ref})
	m := c.Next()
	if m.T() != "pong" || m.Str("ref") != ref {
		t.Fatalf("%s: want pong %s next, got %v", c.Name, ref, m)
	}
}

func chat(text string) map[string]any { return map[string]any{"kind": "chat", "text": text} }

func put(id string, x, y, z float64) map[string]any {
	return map[string]any{"kind": "put", "entities": []any{
		map[string]any{"id": id, "asset": "orc", "pos": []any{x, y, z}},
	}}
}

// evsUntil collects the ev messages of board on c until one with seq
// (skipping anything else) and checks they are contiguous.
func evsUntil(t *testing.T, c *gatewaytest.Client, board string, seq int64) []msg {
	t.Helper()
	var out []msg
	for {
		m := c.Next()
		if m.T() != "ev" || m.Str("board") != board {
			continue
		}
		if len(out) > 0 && m.Int("seq") != out[len(out)-1].Int("seq")+1 {
			t.Fatalf("%s: ev seq %d after %d: gap or duplicate", c.Name, m.Int("seq"), out[len(out)-1].Int("seq"))
		}
		out = append(out, m)
		if m.Int("seq") >= seq {
			return out
		}
	}
}

// jsonEqual compares two values as JSON.
func jsonEqual(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		return false
	}
	var va, vb any
	_ = json.Unmarshal(ja, &va)
	_ = json.Unmarshal(jb, &vb)
	return reflect.DeepEqual(va, vb)
}

func keys(m msg) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	return k
}

func sameSet(a []string, b ...string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		seen[x]--
	}
	for _, v := range seen {
		if v != 0 {
			return false
		}
	}
	return true
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// logBuffer collects a node's logs, at debug level, for tests that look
// at them.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
