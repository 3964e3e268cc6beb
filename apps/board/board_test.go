package board

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tavernhq/tavern/internal/sysconfig"
	"github.com/tavernhq/tavern/internal/testutil"
)

// backends runs a test on SQLite and on PostgreSQL.
func backends(t *testing.T, f func(t *testing.T, dsn func(*testing.T) string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, func(t *testing.T) string { return sqliteDSN(t) }) })
	t.Run("postgres", func(t *testing.T) { f(t, func(t *testing.T) string { return testutil.NewPostgres(t) }) })
}

func put(id string, x int) string {
	return fmt.Sprintf(`{"kind":"put","entities":[{"id":%q,"asset":"orc","pos":[%d,0,1]}]}`, id, x)
}

func TestJoinOpEventOrder(t *testing.T) {
	backends(t, func(t *testing.T, dsn func(*testing.T) string) {
		tn := startNode(t, dsn(t), nil)
		alice, bob := tn.client("alice"), tn.client("bob")

		alice.join("cave-1", -1, "j1")
		j := alice.expect("joined")
		if j["ref"] != "j1" || seqOf(j) != 0 || j["snapshot"] == nil {
			t.Fatalf("joined: %v", j)
		}
		if p := alice.expect("presence"); fmt.Sprint(p["users"]) != "[alice]" {
			t.Fatalf("presence: %v", p)
		}
		bob.join("cave-1", -1, "")
		bob.expect("joined")
		bob.expect("presence")
		if p := alice.expect("presence"); fmt.Sprint(p["joins"]) != "[bob]" {
			t.Fatalf("alice sees bob join: %v", p)
		}

		const n = 200
		for i := 1; i <= n; i++ {
			alice.op("cave-1", fmt.Sprintf("a-%d", i), put(fmt.Sprintf("e%d", i%7), i), fmt.Sprint(i))
		}
		// On the sender's connection each ack comes before its ev; acks
		// and evs each come in seq order.
		acks, evs := 0, 0
		for acks < n || evs < n {
			m := alice.next()
			switch m["t"] {
			case "ack":
				acks++
				if seqOf(m) != int64(acks) || m["ref"] != fmt.Sprint(acks) || m["id"] != fmt.Sprintf("a-%d", acks) {
					t.Fatalf("ack %d: %v", acks, m)
				}
			case "ev":
				evs++
				if seqOf(m) != int64(evs) || m["user"] != "alice" || evs > acks {
					t.Fatalf("alice ev %d (after %d acks): %v", evs, acks, m)
				}
			default:
				t.Fatalf("alice: %v", m)
			}
		}
		for i := 1; i <= n; i++ {
			if e := bob.expect("ev"); seqOf(e) != int64(i) {
				t.Fatalf("bob ev %d: %v", i, e)
			}
		}
		seq, _, err := tn.store.BoardSeq(context.Background(), "cave-1")
		if err != nil || seq != n {
			t.Fatalf("stored seq %d, %v", seq, err)
		}
	})
}

func TestOpErrors(t *testing.T) {
	tn := startNode(t, sqliteDSN(t), nil)
	c := tn.client("carol")
	c.op("nowhere", "x1", put("e1", 1), "r0")
	if e := c.expect("error"); e["code"] != "not_joined" || e["ref"] != "r0" {
		t.Fatalf("not joined: %v", e)
	}
	c.join("b", -1, "")
	c.expect("joined")
	c.expect("presence")
	cases := []struct{ op, code string }{
		{`{"kind":"fly"}`, "bad_op"},
		{`{"kind":"move","entity":"e9","pos":[1,2]}`, "bad_op"},
		{`{"kind":"move","entity":"e9","pos":[1,2,3]}`, "not_found"},
		{`{"kind":"patch","entity":"nope","props":{}}`, "not_found"},
	}
	for i, tc := range cases {
		c.op("b", fmt.Sprint("bad", i), tc.op, fmt.Sprint("r", i))
		if e := c.expect("error"); e["code"] != tc.code || e["ref"] != fmt.Sprint("r", i) {
			t.Fatalf("%s: want %s, got %v", tc.op, tc.code, e)
		}
	}
	// None of them changed the board: the next op is seq 1.
	c.op("b", "good", put("e1", 1), "")
	if a := c.expect("ack"); seqOf(a) != 1 {
		t.Fatalf("ack after errors: %v", a)
	}
}

func TestDuplicateOpID(t *testing.T) {
	tn := startNode(t, sqliteDSN(t), nil)
	c := tn.client("dave")
	c.join("b", -1, "")
	c.expect("joined")
	c.expect("presence")
	c.op("b", "same", put("e1", 1), "1")
	c.expect("ack")
	c.expect("ev")
	// A retry, even with another body, is the original ack with dup:true.
	c.op("b", "same", put("e2", 2), "2")
	a := c.expect("ack")
	if seqOf(a) != 1 || a["dup"] != true || a["ref"] != "2" {
		t.Fatalf("dup ack: %v", a)
	}
	c.op("b", "next", put("e3", 3), "3")
	if a := c.expect("ack"); seqOf(a) != 2 || a["dup"] != nil {
		t.Fatalf("ack after dup: %v", a)
	}
	c.expect("ev")
}

func TestJoinSinceReplays(t *testing.T) {
	tn := startNode(t, sqliteDSN(t), nil)
	a := tn.client("a")
	a.join("b", -1, "")
	a.expect("joined")
	a.expect("presence")
	for i := 1; i <= 10; i++ {
		a.op("b", fmt.Sprint(i), put("e", i), "")
		a.expect("ack")
		a.expect("ev")
	}
	b := tn.client("b")
	b.join("b", 4, "s")
	j := b.expect("joined")
	if seqOf(j) != 10 || j["snapshot"] != nil {
		t.Fatalf("joined since: %v", j)
	}
	for i := 5; i <= 10; i++ {
		if e := b.expect("ev"); seqOf(e) != int64(i) {
			t.Fatalf("replay %d: %v", i, e)
		}
	}
	b.expect("presence")
	// since beyond the board's seq: the snapshot instead.
	c := tn.client("c")
	c.join("b", 99, "")
	if j := c.expect("joined"); j["snapshot"] == nil || seqOf(j) != 10 {
		t.Fatalf("since > seq: %v", j)
	}
}

// A panic inside a board actor restarts that board alone; its members
// stay attached and see every later op with no gap; nothing acked is lost.
func TestCrashRestartsBoardKeepsMembers(t *testing.T) {
	backends(t, func(t *testing.T, dsn func(*testing.T) string) {
		tn := startNode(t, dsn(t), nil)
		a, b := tn.client("a"), tn.client("b")
		a.join("crashy", -1, "")
		a.expect("joined")
		a.expect("presence")
		b.join("crashy", -1, "")
		b.expect("joined")
		b.expect("presence")
		a.expect("presence")
		// another board that must not be touched by the crash
		o := tn.client("o")
		o.join("other", -1, "")
		o.expect("joined")
		o.expect("presence")

		for i := 1; i <= 5; i++ {
			a.op("crashy", fmt.Sprint("a", i), put("e", i), "")
			a.expect("ack")
			a.expect("ev")
			b.expect("ev")
		}
		probe := tn.probe()
		before, _, _ := Lookup(probe, "crashy")
		otherBefore, _, _ := Lookup(probe, "other")
		if ok, err := Crash(probe, "crashy"); !ok || err != nil {
			t.Fatalf("crash: %v %v", ok, err)
		}
		testutil.Eventually(t, 5*time.Second, func() bool {
			pid, ok, _ := Lookup(probe, "crashy")
			if !ok || pid == before {
				return false
			}
			in, err := Describe(probe, "crashy")
			return err == nil && in.Loaded && in.Members == 2
		}, "board restarted with both members back")
		if pid, _, _ := Lookup(probe, "other"); pid != otherBefore {
			t.Fatalf("the other board was restarted too")
		}
		for i := 6; i <= 10; i++ {
			if m := a.opUntilAck("crashy", fmt.Sprint("a", i), put("e", i)); seqOf(m) != int64(i) {
				t.Fatalf("after crash: %v", m)
			}
			a.expect("ev")
			if e := b.expect("ev"); seqOf(e) != int64(i) {
				t.Fatalf("b after crash: %v", e)
			}
		}
		in, _ := Describe(probe, "crashy")
		if in.Seq != 10 || in.Entities != 1 {
			t.Fatalf("after crash: %+v", in)
		}
	})
}

// A node stopped and started again on the same database has every acked
// op, and a retried op id is not applied twice.
func TestRestartKeepsOpsAndDedup(t *testing.T) {
	backends(t, func(t *testing.T, dsn func(*testing.T) string) {
		d := dsn(t)
		tn := startNode(t, d, func(c *sysconfig.Config) { c.Store.SnapshotEvery = 7 })
		a := tn.client("a")
		a.join("keep", -1, "")
		a.expect("joined")
		a.expect("presence")
		for i := 1; i <= 20; i++ {
			a.op("keep", fmt.Sprint("op", i), put(fmt.Sprint("e", i), i), "")
			a.expect("ack")
			a.expect("ev")
		}
		tn.stop()

		tn2 := startNode(t, d, func(c *sysconfig.Config) { c.Store.SnapshotEvery = 7 })
		b := tn2.client("a")
		b.join("keep", 15, "")
		if j := b.expect("joined"); seqOf(j) != 20 {
			t.Fatalf("after restart: %v", j)
		}
		for i := 16; i <= 20; i++ {
			b.expect("ev")
		}
		b.expect("presence")
		b.op("keep", "op3", put("zzz", 1), "r")
		if ack := b.expect("ack"); seqOf(ack) != 3 || ack["dup"] != true {
			t.Fatalf("retry after restart: %v", ack)
		}
		probe := tn2.probe()
		in, err := Describe(probe, "keep")
		if err != nil || in.Entities != 20 || in.Seq != 20 {
			t.Fatalf("state after restart: %+v %v", in, err)
		}
	})
}

func TestIdleBoardPassivatesAndComesBack(t *testing.T) {
	tn := startNode(t, sqliteDSN(t), func(c *sysconfig.Config) { c.Board.IdleMs = 20 })
	a := tn.client("a")
	a.join("sleepy", -1, "")
	a.expect("joined")
	a.expect("presence")
	a.op("sleepy", "1", put("e1", 1), "")
	a.expect("ack")
	a.expect("ev")
	a.do(cmdLeave{"sleepy"})
	probe := tn.probe()
	testutil.Eventually(t, 5*time.Second, func() bool {
		_, ok, _ := Lookup(probe, "sleepy")
		return !ok
	}, "idle board passivated")
	a.join("sleepy", -1, "")
	j := a.expect("joined")
	if seqOf(j) != 1 {
		t.Fatalf("back from passivation: %v", j)
	}
}
