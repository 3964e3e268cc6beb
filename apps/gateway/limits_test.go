package gateway_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	dto "github.com/prometheus/client_model/go"

	"github.com/tavernhq/tavern/apps/board"
	"github.com/tavernhq/tavern/apps/gateway"
	"github.com/tavernhq/tavern/apps/gateway/gatewaytest"
	"github.com/tavernhq/tavern/internal/metrics"
	"github.com/tavernhq/tavern/internal/sysconfig"
	"github.com/tavernhq/tavern/internal/testutil"
)

// closes reads the closes counter of code.
func closes(code string) float64 {
	var m dto.Metric
	if err := metrics.Closes.WithLabelValues(code).Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// TestSlowReader: a client that stops reading while another floods its
// board is closed with 1013 after a gap-free prefix; the others and the
// board carry on, and the slow one resumes with since.
func TestSlowReader(t *testing.T) {
	n := start(t, func(c *sysconfig.Config) {
		c.Gateway.OutboundQueue = 32
		c.Gateway.OpsPerSec = 1e6
		c.Gateway.OpsBurst = 1e6
	})
	b := newBoard()
	slow := gatewaytest.DialWith(t, n.WS, gatewaytest.DialOptions{Paused: true, ReadBuffer: 128 << 10})
	slow.Name = "slow"
	slow.Send(msg{"t": "hello", "user": "slow"})
	slow.Send(msg{"t": "join", "ref": "j", "board": b})
	flood := joined(t, n, "flood", b)
	reader := joined(t, n, "reader", b)

	before := closes("1013")
	lore := strings.Repeat("z", 30000)
	var last int64
	for i := 0; closes("1013") == before; i++ {
		if i > 3000 {
			t.Fatal("the slow reader was never closed")
		}
		ack := flood.Apply(b, map[string]any{"kind": "put", "entities": []any{
			map[string]any{"id": "e1", "asset": "a", "pos": []any{i, 0, 0}, "props": map[string]any{"lore": lore}},
		}})
		last = ack.Int("seq")
	}
	t.Logf("closed after %d ops", last)
	// The others got everything, in order.
	ack := flood.Apply(b, chat("the board keeps going"))
	last = ack.Int("seq")
	if evs := evsUntil(t, reader, b, last); evs[len(evs)-1].Int("seq") != last {
		t.Fatalf("reader: %v", evs[len(evs)-1])
	}
	evsUntil(t, flood, b, last)

	t.Logf("others checked")
	// The slow one reads now: a gap-free prefix, then 1013.
	slow.Resume()
	var seen int64
	for {
		m, err := slow.NextWithin(gatewaytest.Wait)
		if err != nil {
			break
		}
		if m.T() == "ev" {
			if seen != 0 && m.Int("seq") != seen+1 {
				t.Fatalf("slow reader's stream has a gap: %d after %d", m.Int("seq"), seen)
			}
			seen = m.Int("seq")
		}
	}
	slow.ExpectClose(1013)
	if seen >= last {
		t.Fatalf("the slow reader got everything (%d of %d) yet was closed", seen, last)
	}
	// It reconnects and resumes.
	again := hello(t, n, "slow")
	j := again.Join(b, seen)
	if j.Int("seq") != last {
		t.Fatalf("rejoin: %v", j)
	}
	if !j.Has("snapshot") {
		evs := evsUntil(t, again, b, last)
		if evs[0].Int("seq") != seen+1 {
			t.Fatalf("resumed at %v", evs[0])
		}
	}
}

// TestKeepAlive: a client that stops answering pings is dropped; one that
// answers stays.
func TestKeepAlive(t *testing.T) {
	n := start(t, func(c *sysconfig.Config) {
		c.Gateway.PingIntervalMs = 50
		c.Gateway.PingTimeoutMs = 200
	})
	var pings atomic.Int64
	good := gatewaytest.DialWith(t, n.WS, gatewaytest.DialOptions{OnPing: func() { pings.Add(1) }})
	good.Hello("good")
	silent := gatewaytest.DialWith(t, n.WS, gatewaytest.DialOptions{Paused: true})
	silent.Send(msg{"t": "hello", "user": "silent"})
	probe := n.Probe()
	users := func() []string {
		list, err := gateway.Clients(probe)
		if err != nil {
			t.Fatal(err)
		}
		var u []string
		for _, c := range list {
			u = append(u, c.User)
		}
		return u
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return sameSet(users(), "good", "silent") }, "both welcomed: %v", users())
	before := closes("1006")
	testutil.Eventually(t, 5*time.Second, func() bool { return sameSet(users(), "good") }, "silent client still there: %v", users())
	if closes("1006") <= before {
		t.Fatal("the drop was not counted as 1006")
	}
	// Well past the timeout, the client that answers is still there.
	testutil.Eventually(t, 5*time.Second, func() bool { return pings.Load() >= 10 }, "pings: %d", pings.Load())
	alive(t, good)
	if !sameSet(users(), "good") {
		t.Fatalf("clients: %v", users())
	}
	if code := silent.WaitClose(); code != -1 {
		t.Fatalf("dropped client saw close %d", code)
	}
}

// TestSessionExits: a session the board drops for overflow closes its
// client with 1013; a crashed one too; the node stopping closes with 1001.
func TestSessionExits(t *testing.T) {
	n := start(t, nil)
	b := newBoard()
	a := joined(t, n, "alice", b)
	o := joined(t, n, "bob", b)
	a.Expect("presence")
	sup := n.Node.ProcessByName(gateway.SessionSupName)
	sessions := func() []etf.Pid {
		pids, err := sup.Children()
		if err != nil {
			t.Fatal(err)
		}
		return pids
	}
	if len(sessions()) != 2 {
		t.Fatalf("sessions: %v", sessions())
	}
	// Children are listed in start order: alice's session first.
	pids := sessions()
	if err := n.Node.ProcessByPid(pids[0]).Exit(board.ExitOverflow); err != nil {
		t.Fatal(err)
	}
	a.ExpectClose(1013)
	if p := o.Until("presence", nil); !jsonEqual(p["leaves"], []any{"alice"}) {
		t.Fatalf("bob sees: %v", p)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return len(sessions()) == 1 }, "sessions: %v", sessions())

	c := joined(t, n, "carol", b)
	for _, pid := range sessions() {
		if pid != pids[1] {
			n.Node.ProcessByPid(pid).Exit("boom")
		}
	}
	c.ExpectClose(1013)

	alive(t, o)
	n.Stop()
	o.ExpectClose(1001)
}

func TestConnectionLimits(t *testing.T) {
	t.Run("max_conns", func(t *testing.T) {
		n := start(t, func(c *sysconfig.Config) { c.Gateway.MaxConns = 2 })
		hello(t, n, "a")
		hello(t, n, "b")
		_, resp, err := gatewaytest.TryDial(n.WS, nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("third connection: %v %v", err, resp)
		}
	})
	t.Run("max_conns_per_ip", func(t *testing.T) {
		n := start(t, func(c *sysconfig.Config) { c.Gateway.MaxConnsPerIP = 1 })
		a := hello(t, n, "a")
		_, resp, err := gatewaytest.TryDial(n.WS, nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("second connection from the address: %v %v", err, resp)
		}
		a.Close()
		testutil.Eventually(t, 5*time.Second, func() bool {
			c, _, err := gatewaytest.TryDial(n.WS, nil)
			if err != nil {
				return false
			}
			_ = c.CloseNow()
			return true
		}, "a connection after the first closed")
	})
	t.Run("conn_rate_per_ip", func(t *testing.T) {
		n := start(t, func(c *sysconfig.Config) { c.Gateway.ConnRatePerIP = 0.01 })
		hello(t, n, "a")
		_, resp, err := gatewaytest.TryDial(n.WS, nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("second connection within the rate: %v %v", err, resp)
		}
	})
	t.Run("origins", func(t *testing.T) {
		n := start(t, func(c *sysconfig.Config) {
			c.Gateway.Origins = []string{"https://play.example"}
			c.Gateway.AllowNoOrigin = false
		})
		for _, tc := range []struct {
			origin string
			status int
		}{{"", http.StatusForbidden}, {"https://evil.example", http.StatusForbidden}, {"http://play.example", http.StatusForbidden}} {
			h := http.Header{}
			if tc.origin != "" {
				h.Set("Origin", tc.origin)
			}
			_, resp, err := gatewaytest.TryDial(n.WS, h)
			if err == nil || resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("origin %q: %v %v", tc.origin, err, resp)
			}
		}
		c := gatewaytest.DialWith(t, n.WS, gatewaytest.DialOptions{Header: http.Header{"Origin": {"https://play.example"}}})
		c.Hello("alice")
		// The page's own origin (the request's host) is always allowed.
		c2 := gatewaytest.DialWith(t, n.WS, gatewaytest.DialOptions{Header: http.Header{"Origin": {n.URL}}})
		c2.Hello("bob")
	})
}
