package gateway_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tavernhq/tavern/apps/board"
	"github.com/tavernhq/tavern/apps/gateway"
	"github.com/tavernhq/tavern/apps/gateway/gatewaytest"
	"github.com/tavernhq/tavern/apps/gateway/wire"
	"github.com/tavernhq/tavern/internal/sysconfig"
	"github.com/tavernhq/tavern/internal/testutil"
)

// A join whose board cannot answer (its load waits behind a row lock
// that another transaction holds) is answered "unavailable" once
// answer_timeout_ms has passed: a client is never left waiting for ever,
// and the board serves it once the lock is gone.
func TestUnansweredJoinIsAnsweredInTime(t *testing.T) {
	dsn := testutil.NewPostgres(t)
	n := gatewaytest.Start(t, gatewaytest.Options{DSN: dsn, Tweak: func(c *sysconfig.Config) {
		c.Gateway.AnswerTimeoutMs = 500
	}})
	b := newBoard()
	tx := lockingTx(t, dsn, `INSERT INTO boards (id, seq, epoch, snapshot_seq, created_at, updated_at) VALUES ($1, 0, 1, 0, now(), now())`, b)

	c := hello(t, n, "alice")
	c.Send(msg{"t": "join", "board": b, "ref": "j1"})
	// The board's own load gives up only after 10 s.
	m, err := c.NextWithin(15 * time.Second)
	if err != nil {
		t.Fatalf("join not answered: %v", err)
	}
	if m["t"] != "error" || m["code"] != "unavailable" || m["ref"] != "j1" || !strings.Contains(m["msg"].(string), "no answer in time") {
		t.Fatalf("answer to a stuck join: %v", m)
	}

	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	c.JoinFull(b)
	c.Apply(b, chat("hi"))
}

// Ops whose actor crashed while their commit was in flight are answered
// "unavailable", and yet that commit became durable: its ev comes after
// the error (the restarted board replays it). The client gets it at once,
// not after answer_timeout_ms (the session used to hold it back, waiting
// for an ack that could not come), and its retry is answered dup.
func TestEvOfAnOpAnsweredUnavailableIsNotHeld(t *testing.T) {
	dsn := testutil.NewPostgres(t)
	n := gatewaytest.Start(t, gatewaytest.Options{DSN: dsn, Tweak: func(c *sysconfig.Config) {
		c.Gateway.AnswerTimeoutMs = 60000
	}})
	b := newBoard()
	c := joined(t, n, "alice", b)
	// The group commit waits behind this lock: the ops stay in flight.
	tx := lockingTx(t, dsn, `SELECT 1 FROM boards WHERE id = $1 FOR UPDATE`, b)
	const ops = 5
	for i := range ops {
		c.Send(msg{"t": "op", "ref": fmt.Sprint("r", i), "board": b, "id": fmt.Sprint("o", i), "op": chat("x")})
	}
	p := n.Probe()
	testutil.Eventually(t, 5*time.Second, func() bool {
		in, err := board.Describe(p, b)
		return err == nil && in.Pending == ops
	}, "ops in flight")
	if ok, err := board.Crash(p, b); !ok || err != nil {
		t.Fatalf("crash: %v %v", ok, err)
	}
	for range ops {
		if m := c.Expect("error"); m.Str("code") != "unavailable" {
			t.Fatalf("answer to an op of a crashed actor: %v", m)
		}
	}
	// The commits in flight go through, then the restarted board loads
	// them and the session mends its stream.
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	m, err := c.NextWithin(5 * time.Second)
	if err != nil {
		t.Fatalf("ev of o0: %v", err)
	}

	if m.T() != "ev" || m.Int("seq") != 1 || m.Str("id") != "o0" {
		t.Fatalf("want the ev of o0, got %v", m)
	}
	// The commit behind o0's (o1..o4) may have been written too: an op
	// whose ev came is answered dup, the others get their seq now.
	evs := map[string]bool{"o0": true}
	for i := range ops {
		id := fmt.Sprint("o", i)
		c.Send(msg{"t": "op", "ref": fmt.Sprint("again", i), "board": b, "id": id, "op": chat("x")})
		m := c.Until("", func(m msg) bool {
			if m.T() == "ev" {
				evs[m.Str("id")] = true
			}
			return m.T() == "ack"
		})
		if m.Int("seq") != int64(i+1) || (m["dup"] == true) != evs[id] {
			t.Fatalf("retry of %s (ev seen: %v): %v", id, evs[id], m)
		}
	}
}

// lockingTx opens a transaction on dsn that runs query (which takes row
// locks) and stays open until the caller ends it or the test ends.
func lockingTx(t *testing.T, dsn, query string, args ...any) *sql.Tx {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	if _, err := tx.ExecContext(ctx, query, args...); err != nil {
		t.Fatal(err)
	}
	return tx
}

// While a session holds frames back (an ev of the client's own op came
// before the op's ack, as it can when they come from two nodes), boards
// must not write past the hold through the connection's feed: the ev of
// another board comes after the ack and the held ev, never before.
func TestHoldClosesTheFeeds(t *testing.T) {
	n := start(t, nil)
	stuck, other := newBoard(), newBoard()
	alice := joined(t, n, "alice", stuck)
	alice.JoinFull(other)
	bob := joined(t, n, "bob", other)
	alice.Until("presence", nil) // bob's arrival
	bob.Apply(other, chat("warm"))
	alice.Expect("ev")
	p := n.Probe()

	// alice's session is held before it takes her op o1, and meanwhile
	// gets o1's ev as if from the board's node: so the ev comes first.
	opArrived, takeOp := make(chan struct{}), make(chan struct{})
	gateway.SetInboundHook(func(r *wire.Request) {
		if r.ID == "o1" {
			close(opArrived)
			<-takeOp
		}
	})
	holding, endHold := make(chan struct{}), make(chan struct{})
	gateway.SetHoldHook(func() {
		close(holding)
		<-endHold // the session stays in its hold until bob's ev is out
	})
	t.Cleanup(func() { gateway.SetInboundHook(nil); gateway.SetHoldHook(nil) })
	alice.Send(msg{"t": "op", "ref": "r1", "board": stuck, "id": "o1", "op": chat("held")})
	<-opArrived
	own := wire.Event(stuck, 1, "alice", "o1", []byte(`{"kind":"chat","text":"held"}`), nil)
	if err := p.Send(gateway.SessionOf(n.Gateway, "alice"), board.Event{Board: stuck, Seq: 1, Frame: own}); err != nil {
		t.Fatal(err)
	}
	close(takeOp)
	select {
	case <-holding:
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not hold the ev of its op back")
	}
	bob.Apply(other, chat("during the hold"))
	// The board has delivered bob's ev once it answers (its loop is done).
	if _, err := board.Describe(p, other); err != nil {
		t.Fatal(err)
	}
	close(endHold)

	if m := alice.Next(); m.T() != "ack" || m.Str("id") != "o1" {
		t.Fatalf("first after the op: want its ack, got %v", m)
	}
	if m := alice.Next(); m.T() != "ev" || m.Str("id") != "o1" {
		t.Fatalf("then its ev, got %v", m)
	}
	if m := alice.Next(); m.T() != "ev" || m.Str("board") != other {
		t.Fatalf("then bob's, got %v", m)
	}
}
