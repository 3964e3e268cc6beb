package load

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tavernhq/tavern/apps/gateway/gatewaytest"
	"github.com/tavernhq/tavern/internal/sysconfig"
	"github.com/tavernhq/tavern/internal/testutil"
	"github.com/tavernhq/tavern/tools/wsbaseline/broadcast"
)

func baselineURL(t *testing.T) string {
	srv := httptest.NewServer(broadcast.New(broadcast.Config{}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
}

func newRunner(t *testing.T, cfg Config) *Runner {
	t.Helper()
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestFixedRateAgainstBaseline(t *testing.T) {
	r := newRunner(t, Config{URLs: []string{baselineURL(t)}, Clients: 40, BoardSize: 8})
	p := r.Fixed(context.Background(), "fixed", 400, 2*time.Second)
	if p.Sent < 600 || p.Acked != p.Sent || p.Delivered != p.Expected || p.Expected != 8*p.Acked {
		t.Fatalf("sent %d acked %d delivered %d of %d", p.Sent, p.Acked, p.Delivered, p.Expected)
	}
	if p.Delivery.Count != p.Delivered || p.Ack.P99 <= 0 {
		t.Fatalf("latencies not recorded: %+v %+v", p.Ack, p.Delivery)
	}
	res := r.Result()
	if res.Counters.Violations != 0 || len(res.Counters.Errors) != 0 {
		t.Fatalf("violations %d, errors %v", res.Counters.Violations, res.Counters.Errors)
	}
	if len(res.Series) < 2 {
		t.Fatalf("series of %d points", len(res.Series))
	}
	if err := PlotRun(t.TempDir()+"/run.png", "test", res.Series, PhaseMarks(res.Series)); err != nil {
		t.Fatal(err)
	}
}

func TestFindMaxAgainstBaseline(t *testing.T) {
	r := newRunner(t, Config{URLs: []string{baselineURL(t)}, Clients: 16, BoardSize: 4})
	m := r.FindMax(context.Background(), MaxConfig{Step: 700 * time.Millisecond, MaxSteps: 2, MaxP99: time.Second})
	if m.Probe <= 0 || len(m.Steps) < 3 || m.Best == nil || m.MaxDeliveries() <= 0 {
		t.Fatalf("find max: %+v", m)
	}
}

// A run against a real Tavern node on Postgres, with every connection cut
// in the middle: clients reconnect, rejoin with since and retry with the
// same ids, and the checker finds every acknowledged op exactly once.
func TestRecordedRunAgainstTavernChecks(t *testing.T) {
	dsn := testutil.NewPostgres(t)
	n := gatewaytest.Start(t, gatewaytest.Options{DSN: dsn, Tweak: func(c *sysconfig.Config) {
		c.Gateway.OpsPerSec, c.Gateway.OpsBurst = 1000, 1000
	}})
	r := newRunner(t, Config{URLs: []string{n.WS}, Clients: 12, BoardSize: 4, Kind: "mix", Record: true, Prefix: "it"})
	ph := r.Begin("load", 300)
	time.Sleep(700 * time.Millisecond)
	for _, c := range r.clients {
		c.mu.Lock()
		if c.ws != nil {
			c.ws.CloseNow()
		}
		c.mu.Unlock()
	}
	time.Sleep(700 * time.Millisecond)
	r.Idle()
	if !r.Settle(context.Background(), 20*time.Second) {
		t.Fatalf("did not settle: %d pending", r.Pending())
	}
	p := r.Phase(ph, "load", 300, 1400*time.Millisecond)
	recs := r.Records()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := ReadBoardOps(ctx, dsn, "it-")
	if err != nil {
		t.Fatal(err)
	}
	rep := Check(recs, rows)
	if !rep.OK() {
		v := rep.Violations[0]
		for _, row := range rows {
			if row.Board == v.Board && row.Seq >= v.Seq-1 {
				t.Logf("db row %+v", row)
				for _, a := range recs.Acks {
					if a.User == row.User && a.ID == row.ID {
						t.Logf("  acked %+v", a)
					}
				}
			}
		}
		t.Fatalf("%s\nrefusals %+v\nerrors %v", rep, recs.Refusals, r.Result().Counters.Errors)
	}
	res := r.Result()
	if p.Acked < 100 || res.Counters.Reconnects < 12 || res.Counters.Violations != 0 {
		t.Fatalf("acked %d, reconnects %d, violations %d, errors %v", p.Acked, res.Counters.Reconnects,
			res.Counters.Violations, res.Counters.Errors)
	}
	t.Logf("%s; acked %d, resent %d, reconnects %d, errors %v", rep, p.Acked, p.Resent, res.Counters.Reconnects, res.Counters.Errors)
}
