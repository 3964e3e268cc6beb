package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	ptest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tavernhq/tavern/apps/board"
	"github.com/tavernhq/tavern/apps/gateway"
	"github.com/tavernhq/tavern/apps/gateway/gatewaytest"
	"github.com/tavernhq/tavern/internal/metrics"
	"github.com/tavernhq/tavern/internal/testutil"
)

func TestHTTPEndpoints(t *testing.T) {
	n := start(t, nil)
	if code, body := n.Get("/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	if code, body := n.Get("/readyz"); code != 200 || body != "ready\n" {
		t.Fatalf("/readyz: %d %q", code, body)
	}
	c := hello(t, n, "alice")
	c.Send(`{"t":"ping","ref":5}`)
	c.ExpectError("bad_request", "")
	code, body := n.Get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{"tavern_connections ", `tavern_errors_total{code="bad_request"}`, "go_goroutines", "tavern_ack_latency_seconds_bucket"} {
		if !strings.Contains(body, want) {
			t.Fatalf("/metrics lacks %q", want)
		}
	}
	if code, body := n.Get("/"); code != 200 || !strings.Contains(body, "<title>Tavern board</title>") {
		t.Fatalf("/: %d %.200q", code, body)
	}
	if code, _ := n.Get("/app.js"); code != 200 {
		t.Fatalf("/app.js: %d", code)
	}
	if code, _ := n.Get("/nope"); code != 404 {
		t.Fatalf("/nope: %d", code)
	}
	// /ws without an upgrade is refused, nothing else happens.
	if code, _ := n.Get("/ws"); code != http.StatusUpgradeRequired {
		t.Fatalf("GET /ws: %d", code)
	}
	alive(t, c)
}

func TestReadyzFollowsReady(t *testing.T) {
	var down bool
	n := gatewaytest.Start(t, gatewaytest.Options{Ready: func(ctx context.Context) error {
		if down {
			return errors.New("database unreachable")
		}
		return nil
	}})
	if code, _ := n.Get("/readyz"); code != 200 {
		t.Fatalf("/readyz: %d", code)
	}
	down = true
	if code, body := n.Get("/readyz"); code != 503 || strings.Contains(body, "database") {
		t.Fatalf("/readyz while not ready: %d %q", code, body)
	}
	if code, _ := n.Get("/healthz"); code != 200 {
		t.Fatalf("/healthz while not ready: %d", code)
	}
}

func TestNoticeClientsDrain(t *testing.T) {
	n := start(t, nil)
	b := newBoard()
	before := time.Now()
	a := joined(t, n, "alice", b)
	o := hello(t, n, "bob")
	anon := gatewaytest.Dial(t, n.WS) // no hello: not a client yet
	probe := n.Probe()
	// The client sees the 101 a moment before the server registers the
	// connection.
	testutil.Eventually(t, 5*time.Second, func() bool { return gateway.Conns(n.Gateway) == 3 }, "connections: %d", gateway.Conns(n.Gateway))

	// The session publishes its boards for Clients just after it wrote
	// the joined answer, so alice may see it a moment before Clients does.
	var list []gateway.ClientInfo
	testutil.Eventually(t, 5*time.Second, func() bool {
		l, err := gateway.Clients(probe)
		if err != nil {
			t.Fatal(err)
		}
		list = l
		return len(l) == 2 && slices.Equal(l[0].Boards, []string{b})
	}, "alice's board never listed by Clients")
	if list[0].User != "alice" || list[1].User != "bob" || len(list[1].Boards) != 0 {
		t.Fatalf("clients: %+v", list)
	}
	if list[0].ConnectedAt.Before(before) || !strings.HasPrefix(list[0].RemoteAddr, "127.0.0.1:") || list[0].Session == list[1].Session {
		t.Fatalf("client info: %+v", list)
	}
	o.JoinFull(b)
	a.Expect("presence")
	testutil.Eventually(t, 5*time.Second, func() bool {
		l, _ := gateway.Clients(probe)
		return len(l) == 2 && slices.Equal(l[1].Boards, []string{b})
	}, "bob's boards")
	o.Send(`{"t":"leave","board":"` + b + `"}`)
	o.Expect("left")
	l, _ := gateway.Clients(probe)
	if len(l[1].Boards) != 0 {
		t.Fatalf("after leave: %+v", l[1])
	}

	if err := gateway.Notice(probe, "server restarts in 5 min"); err != nil {
		t.Fatal(err)
	}
	want := msg{"t": "notice", "text": "server restarts in 5 min"}
	if m := a.Until("notice", nil); !jsonEqual(m, want) {
		t.Fatalf("notice: %v", m)
	}
	if m := o.Expect("notice"); !jsonEqual(m, want) {
		t.Fatalf("notice: %v", m)
	}
	if anon.Pending() != 0 {
		t.Fatalf("a client without hello got %d messages", anon.Pending())
	}

	closed, err := gateway.Drain(probe)
	if err != nil || closed != 3 {
		t.Fatalf("drain: %d %v", closed, err)
	}
	a.ExpectClose(1012)
	o.ExpectClose(1012)
	anon.ExpectClose(1012)
	if code, _ := n.Get("/readyz"); code != 503 {
		t.Fatalf("/readyz while draining: %d", code)
	}
	if code, _ := n.Get("/healthz"); code != 200 {
		t.Fatalf("/healthz while draining: %d", code)
	}
	_, resp, err := gatewaytest.TryDial(n.WS, nil)
	if err == nil || resp == nil || resp.StatusCode != 503 {
		t.Fatalf("connection while draining: %v %v", err, resp)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		l, _ := gateway.Clients(probe)
		return len(l) == 0
	}, "clients after drain")
}

func TestAPIWithoutGateway(t *testing.T) {
	n := start(t, nil)
	probe := n.Probe()
	n.Stop()
	if err := gateway.Notice(probe, "x"); !errors.Is(err, gateway.ErrNotRunning) {
		t.Fatalf("notice on a stopped node: %v", err)
	}
}

// The board metrics of /metrics move with the work: ops acknowledged,
// commit batches, boards active, board restarts. (Counters are shared by
// every node of the test binary: the test reads differences.)
func TestMetricsCountBoardWork(t *testing.T) {
	n := start(t, nil)
	ops, batches, restarts := ptest.ToFloat64(metrics.Ops), ptest.ToFloat64(metrics.CommitBatches.WithLabelValues("ok")), ptest.ToFloat64(metrics.BoardRestarts)
	b := newBoard()
	c := joined(t, n, "alice", b)
	if v := ptest.ToFloat64(metrics.BoardsActive); v < 1 {
		t.Fatalf("tavern_boards_active with a board joined: %v", v)
	}
	for i := range 3 {
		c.Apply(b, chat(fmt.Sprint("m", i)))
	}
	if d := ptest.ToFloat64(metrics.Ops) - ops; d < 3 {
		t.Fatalf("tavern_ops_total grew by %v after 3 acks", d)
	}
	if d := ptest.ToFloat64(metrics.CommitBatches.WithLabelValues("ok")) - batches; d < 1 {
		t.Fatalf("tavern_commit_batches_total{outcome=ok} grew by %v", d)
	}
	if ok, err := board.Crash(n.Probe(), b); !ok || err != nil {
		t.Fatalf("crash: %v %v", ok, err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return ptest.ToFloat64(metrics.BoardRestarts) > restarts }, "tavern_board_restarts_total did not grow after a crash")
	_, body := n.Get("/metrics")
	for _, want := range []string{"tavern_ops_total ", "tavern_boards_active ", "tavern_board_restarts_total ", `tavern_commit_batches_total{outcome="ok"}`, "tavern_dist_event_messages_total "} {
		if !strings.Contains(body, want) {
			t.Fatalf("/metrics lacks %q", want)
		}
	}
}
