package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tavernhq/tavern/apps/cluster"
	"github.com/tavernhq/tavern/apps/gateway/gatewaytest"
	"github.com/tavernhq/tavern/apps/store"
	"github.com/tavernhq/tavern/internal/sysconfig"
	"github.com/tavernhq/tavern/internal/testutil"
)

// player is a game client that keeps sending ops and checks its own
// stream: every ev in seq order, no gap, no duplicate; it reconnects to
// another node when its node goes away and resumes with since, resending
// its unacknowledged ops with the same ids.
type player struct {
	t       *testing.T
	user    string
	board   string
	c       *gatewaytest.Client
	last    int64
	hist    map[int64]string // seq -> user/id
	acked   map[string]int64
	pending map[string]time.Time
	sent    int
	joined  bool
	// resentAt: the last resendStale.
	resentAt time.Time
}

func newPlayer(t *testing.T, user, board string) *player {
	return &player{t: t, user: user, board: board, hist: map[int64]string{},
		acked: map[string]int64{}, pending: map[string]time.Time{}}
}

func (p *player) connect(url string) {
	p.t.Helper()
	if p.c != nil {
		p.c.Close()
	}
	p.c = gatewaytest.Dial(p.t, url)
	p.c.Hello(p.user)
	join := gatewaytest.Msg{"t": "join", "ref": "j", "board": p.board}
	if p.joined {
		join["since"] = p.last
	}
	p.joined = false
	p.c.Send(join)
	// Unacked ops are resent after the join answers.
}

func (p *player) rejoin() {
	join := gatewaytest.Msg{"t": "join", "ref": "j", "board": p.board}
	if p.last > 0 {
		join["since"] = p.last
	}
	b, _ := json.Marshal(join)
	_ = p.c.TrySend(websocket.MessageText, b)
}

func (p *player) send() {
	p.sent++
	id := fmt.Sprintf("%s-%d", p.user, p.sent)
	p.pending[id] = time.Now()
	p.trySend(id)
}

// trySend writes an op; a write to a connection that just died is fine:
// pump notices the end and the op is resent after the reconnect.
func (p *player) trySend(id string) {
	b, _ := json.Marshal(gatewaytest.Msg{"t": "op", "ref": id, "board": p.board, "id": id,
		"op": map[string]any{"kind": "chat", "text": id}})
	_ = p.c.TrySend(websocket.MessageText, b)
}

// retryRefused resends the ops the server answered "unavailable".
func (p *player) retryRefused() {
	for id, at := range p.pending {
		if !at.IsZero() {
			continue
		}
		p.pending[id] = time.Now()
		p.trySend(id)
	}
}

// stalled: an op waits for its answer far too long; the node is hung
// (a real client notices by its own pings).
func (p *player) stalled() bool {
	for _, at := range p.pending {
		if !at.IsZero() && time.Since(at) > 3*time.Second {
			return true
		}
	}
	return false
}

func (p *player) maxAcked() int64 {
	var m int64
	for _, s := range p.acked {
		m = max(m, s)
	}
	return m
}

// resendStale sends again, at most once a second, the ops unanswered
// for a second; unlike resendPending it keeps their send times, so that
// stalled still sees a hung node (whose socket takes writes).
func (p *player) resendStale() {
	if len(p.pending) == 0 || time.Since(p.resentAt) < time.Second || time.Since(oldest(p.pending)) < time.Second {
		return
	}
	p.resentAt = time.Now()
	for id := range p.pending {
		p.trySend(id)
	}
}

func (p *player) resendPending() {
	for id := range p.pending {
		p.pending[id] = time.Now()
		p.trySend(id)
	}
}

// pump handles what arrived within d; it reports false when the
// connection ended.
func (p *player) pump(d time.Duration) bool {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return true
		}
		m, err := p.c.NextWithin(left)
		if err != nil {
			return p.c.Pending() > 0 || isTimeout(err)
		}
		switch m.T() {
		case "joined":
			if !p.joined && m.Has("snapshot") {
				p.last = m.Int("seq")
			}
			p.joined = true
			p.resendPending()
		case "ev":
			s := m.Int("seq")
			switch {
			case s <= p.last:
				p.t.Fatalf("%s: duplicate ev %d (last %d)", p.user, s, p.last)
			case s != p.last+1:
				p.t.Fatalf("%s: gap: ev %d after %d", p.user, s, p.last)
			}
			p.last = s
			p.hist[s] = m.Str("user") + "/" + m.Str("id")
		case "ack":
			id := m.Str("id")
			if prev, ok := p.acked[id]; ok && prev != m.Int("seq") {
				p.t.Fatalf("%s: %s acked at %d and at %d", p.user, id, prev, m.Int("seq"))
			}
			p.acked[id] = m.Int("seq")
			delete(p.pending, id)
		case "error":
			if m.Str("code") != "unavailable" && m.Str("code") != "rate_limited" {
				p.t.Fatalf("%s: %v", p.user, m)
			}
			if m.Str("ref") == "j" {
				// The join was refused (the board was moving): a client
				// joins again, with since once it has joined before.
				p.rejoin()
				continue
			}
			// retried with the same id, a little later
			if _, ok := p.pending[m.Str("ref")]; ok {
				p.pending[m.Str("ref")] = time.Time{}
			}
		}
	}
}

func isTimeout(err error) bool {
	return err != nil && len(err.Error()) > 10 && err.Error()[:10] == "no message"
}

func clusterConfig(t *testing.T, name, dsn string, epmd int) sysconfig.Config {
	cfg := testutil.NodeConfig(t, name, dsn, epmd)
	cfg.Node.Cookie = "cluster-test-cookie"
	cfg.Cluster.Discovery = "postgres"
	cfg.Cluster.HeartbeatMs = 200
	cfg.Cluster.DownAfterMs = 1500
	return cfg
}

// failover runs two node processes, two players of one board (one on each
// node, the board owned by the first), then fault(owner) while they keep
// playing. It checks every guarantee and returns how long the board took
// to accept ops again.
func failover(t *testing.T, fault func(owner *testutil.NodeProc)) time.Duration {
	dsn := testutil.NewPostgres(t)
	epmd := testutil.FreePort(t)
	a := testutil.StartNode(t, clusterConfig(t, "fa", dsn, epmd))
	b := testutil.StartNode(t, clusterConfig(t, "fb", dsn, epmd))
	live := []string{a.Config.Node.Name, b.Config.Node.Name}
	board := ""
	for i := 0; board == ""; i++ {
		if id := fmt.Sprint("f", i); cluster.Owner(id, live) == a.Config.Node.Name {
			board = id
		}
	}
	// Both nodes must see each other before the board is placed.
	testutil.Eventually(t, 15*time.Second, func() bool {
		return hasPeer(a, b) && hasPeer(b, a)
	}, "nodes see each other")

	onA, onB := newPlayer(t, "pa", board), newPlayer(t, "pb", board)
	onA.connect(a.WS())
	onB.connect(b.WS())
	play := func(rounds int) {
		for i := 0; i < rounds; i++ {
			for _, p := range []*player{onA, onB} {
				if len(p.pending) < 8 && p.joined {
					p.send()
				}
				if p.joined {
					p.retryRefused()
				}
				if !p.pump(5*time.Millisecond) || p.stalled() {
					p.connect(b.WS()) // its node is gone: resume on the survivor
				}
			}
		}
	}
	play(100)
	if len(onB.acked) == 0 || len(onA.acked) == 0 {
		t.Fatalf("no progress before the fault")
	}
	before := len(onB.acked)
	faultAt := time.Now()
	fault(a)
	// The player on the survivor measures when its ops are acked again.
	var recovered time.Duration
	for recovered == 0 {
		if time.Since(faultAt) > 20*time.Second {
			t.Fatalf("the board did not come back within 20s")
		}
		play(1)
		if len(onB.acked) > before {
			for id, s := range onB.acked {
				_ = id
				if s > 0 && len(onB.pending) < 8 {
					break
				}
			}
			recovered = time.Since(faultAt)
		}
	}
	play(200)
	// Drain: every op acknowledged, every ev seen by both (an ev follows
	// its ack: both must reach the highest acked seq).
	deadline := time.Now().Add(20 * time.Second)
	for len(onA.pending)+len(onB.pending) > 0 || onA.last != onB.last || onA.last < max(onA.maxAcked(), onB.maxAcked()) {
		if time.Now().After(deadline) {
			t.Fatalf("not settled: pending %d/%d, last %d/%d", len(onA.pending), len(onB.pending), onA.last, onB.last)
		}
		for _, p := range []*player{onA, onB} {
			if !p.pump(20*time.Millisecond) || p.stalled() {
				p.connect(b.WS())
			}
			p.retryRefused()
			p.resendStale()
		}
	}
	// Same history for both, equal to the database, every ack once.
	for s := int64(1); s <= onA.last; s++ {
		if onA.hist[s] != onB.hist[s] && onA.hist[s] != "" && onB.hist[s] != "" {
			t.Fatalf("seq %d: %q vs %q", s, onA.hist[s], onB.hist[s])
		}
	}
	ctx := context.Background()
	st, err := store.Open(ctx, sysconfig.Store{DSN: dsn, BatchMax: 1, FlushMs: 1, PoolSize: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	seq, _, _ := st.BoardSeq(ctx, board)
	ops, err := st.LoadOps(ctx, board, 0, seq)
	if err != nil || int64(len(ops)) != seq || seq != onB.last {
		t.Fatalf("db has %d ops to seq %d, clients saw %d (%v)", len(ops), seq, onB.last, err)
	}
	seen := map[string]int64{}
	for _, o := range ops {
		key := o.User + "/" + o.OpID
		if _, dup := seen[key]; dup {
			t.Fatalf("%s stored twice", key)
		}
		seen[key] = o.Seq
		if onB.hist[o.Seq] != "" && onB.hist[o.Seq] != key {
			t.Fatalf("seq %d: db %s, client %s", o.Seq, key, onB.hist[o.Seq])
		}
	}
	for _, p := range []*player{onA, onB} {
		for id, s := range p.acked {
			if seen[p.user+"/"+id] != s {
				t.Fatalf("%s acked at %d, db has it at %d", id, s, seen[p.user+"/"+id])
			}
		}
	}
	t.Logf("%d ops, board accepting again %v after the fault", seq, recovered.Round(time.Millisecond))
	return recovered
}

func oldest(m map[string]time.Time) time.Time {
	var o time.Time
	for _, t := range m {
		if o.IsZero() || t.Before(o) {
			o = t
		}
	}
	return o
}

func hasPeer(n, peer *testutil.NodeProc) bool {
	return contains(n.Logs(), "peer up") && contains(n.Logs(), peer.Config.Node.Name)
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestOwnerKilledBoardMovesNothingLost(t *testing.T) {
	d := failover(t, func(owner *testutil.NodeProc) { owner.Kill() })
	if d > 5*time.Second {
		t.Errorf("recovery after SIGKILL took %v (target 5s)", d)
	}
}

func TestOwnerHungBoardMovesNothingLost(t *testing.T) {
	var hung *testutil.NodeProc
	d := failover(t, func(owner *testutil.NodeProc) { hung = owner; owner.Pause() })
	hung.Resume()
	if d > 5*time.Second {
		t.Errorf("recovery after SIGSTOP took %v (target 5s)", d)
	}
}
