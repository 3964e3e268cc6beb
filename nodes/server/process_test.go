package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tavernhq/tavern/apps/gateway/gatewaytest"
	"github.com/tavernhq/tavern/apps/store"
	"github.com/tavernhq/tavern/internal/sysconfig"
	"github.com/tavernhq/tavern/internal/testutil"
)

func chat(i int) map[string]any { return map[string]any{"kind": "chat", "text": fmt.Sprint("m", i)} }

// A node killed with SIGKILL and started again has every op it
// acknowledged, and a retried op id is not applied twice.
func TestKilledNodeKeepsEveryAckedOp(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			dsn := "sqlite:" + t.TempDir() + "/tavern.db"
			if backend == "postgres" {
				dsn = testutil.NewPostgres(t)
			}
			cfg := testutil.NodeConfig(t, "kill9", dsn, 0)
			n := testutil.StartNode(t, cfg)
			c := gatewaytest.Dial(t, n.WS())
			c.Hello("alice")
			c.JoinFull("keep")
			// Many ops in flight at the moment of the kill: only what was
			// acked is promised, and all of it must be there.
			acked := map[string]int64{}
			for i := 1; i <= 100; i++ {
				c.Send(gatewaytest.Msg{"t": "op", "ref": fmt.Sprint(i), "board": "keep", "id": fmt.Sprint("op", i), "op": chat(i)})
			}
			for len(acked) < 60 {
				m := c.Next()
				if m.T() == "ack" {
					acked[m.Str("id")] = m.Int("seq")
				}
			}
			n.Kill()
			c.Close()

			n.Restart()
			ctx := context.Background()
			st, err := store.Open(ctx, sysconfig.Store{DSN: dsn, BatchMax: 1, FlushMs: 1, PoolSize: 2}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			seq, _, err := st.BoardSeq(ctx, "keep")
			if err != nil {
				t.Fatal(err)
			}
			ops, err := st.LoadOps(ctx, "keep", 0, seq)
			if err != nil {
				t.Fatal(err)
			}
			bySeq := map[int64]string{}
			for i, o := range ops {
				if o.Seq != int64(i+1) {
					t.Fatalf("gap in the log at %d", i+1)
				}
				bySeq[o.Seq] = o.OpID
			}
			for id, s := range acked {
				if bySeq[s] != id {
					t.Fatalf("acked %s at %d, the log has %q there", id, s, bySeq[s])
				}
			}
			// Retrying every op after the restart: the stored ones are dups at
			// their seq, the rest are applied once each, after them.
			c2 := gatewaytest.Dial(t, n.WS())
			c2.Hello("alice")
			c2.Join("keep", seq)
			for i := 1; i <= 100; i++ {
				id := fmt.Sprint("op", i)
				c2.Send(gatewaytest.Msg{"t": "op", "ref": id, "board": "keep", "id": id, "op": chat(i)})
				a := c2.Until("ack", nil)
				if s, ok := acked[id]; ok && (a.Int("seq") != s || a["dup"] != true) {
					t.Fatalf("retry of acked %s: %v", id, a)
				}
			}
			testutil.Eventually(t, 10*time.Second, func() bool {
				s, _, _ := st.BoardSeq(ctx, "keep")
				return s == 100
			}, "every op stored exactly once")
		})
	}
}

// SIGTERM flushes the store and exits 0.
func TestSigtermExitsCleanly(t *testing.T) {
	dsn := "sqlite:" + t.TempDir() + "/tavern.db"
	n := testutil.StartNode(t, testutil.NodeConfig(t, "term", dsn, 0))
	c := gatewaytest.Dial(t, n.WS())
	c.Hello("bob")
	c.JoinFull("b")
	for i := 0; i < 10; i++ {
		c.Apply("b", chat(i))
	}
	if code := n.Stop(); code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, n.Logs())
	}
}
