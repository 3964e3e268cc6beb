package gateway_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/tavernhq/tavern/apps/gateway/gatewaytest"
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
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	b := newBoard()
	if _, err := tx.ExecContext(ctx, `INSERT INTO boards (id, seq, epoch, snapshot_seq, created_at, updated_at) VALUES ($1, 0, 1, 0, now(), now())`, b); err != nil {
		t.Fatal(err)
	}

	c := hello(t, n, "alice")
	c.Send(msg{"t": "join", "board": b, "ref": "j1"})
	// The board's own load gives up only after 10 s.
	m, err := c.NextWithin(5 * time.Second)
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
