package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tavernhq/tavern/internal/sysconfig"
	"github.com/tavernhq/tavern/internal/testutil"
)

func openStore(t *testing.T, dsn string) *Store {
	t.Helper()
	cfg := sysconfig.Default().Store
	cfg.DSN = dsn
	s, err := Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func backends(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, "sqlite:"+filepath.Join(t.TempDir(), "t.db")) })
	t.Run("postgres", func(t *testing.T) { f(t, testutil.NewPostgres(t)) })
}

// commit submits and waits for the writer's answer.
func commit(t *testing.T, s *Store, c *Commit) error {
	t.Helper()
	done := make(chan error, 1)
	c.Done = func(err error) { done <- err }
	if err := submit(s, c); err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("commit of %s got no answer", c.BoardID)
		return nil
	}
}

// submit queues c, waiting while the writer's queue is full.
func submit(s *Store, c *Commit) error {
	for {
		err := s.Submit(c)
		if !errors.Is(err, ErrBusy) {
			return err
		}
		time.Sleep(time.Millisecond)
	}
}

func ops(from, to int64, user string) []Op {
	var out []Op
	for s := from; s <= to; s++ {
		out = append(out, Op{Seq: s, User: user, OpID: fmt.Sprintf("%s-%d", user, s), Op: []byte(`{"kind":"chat","text":"hi"}`)})
	}
	return out
}

func TestMigrationsApplyOnce(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		s := openStore(t, dsn)
		v, err := s.SchemaVersion(context.Background())
		if err != nil || v != 1 {
			t.Fatalf("version %d, %v", v, err)
		}
		s.Close()
		s2 := openStore(t, dsn) // a second start migrates nothing and works
		if v, _ := s2.SchemaVersion(context.Background()); v != 1 {
			t.Fatalf("version after reopen: %d", v)
		}
	})
}

func TestCommitLoadAndFence(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openStore(t, dsn)
		a, err := s.Activate(ctx, "b1")
		if err != nil || a.Epoch != 1 || a.Seq != 0 || a.Snapshot != nil {
			t.Fatalf("first activation: %+v %v", a, err)
		}
		if err := commit(t, s, &Commit{BoardID: "b1", Epoch: 1, Ops: ops(1, 3, "u")}); err != nil {
			t.Fatalf("commit: %v", err)
		}
		// A gap is refused: ops must follow the committed seq.
		if err := commit(t, s, &Commit{BoardID: "b1", Epoch: 1, Ops: ops(5, 5, "u")}); !errors.Is(err, ErrFenced) {
			t.Fatalf("gap commit: %v", err)
		}
		b, err := s.Activate(ctx, "b1")
		if err != nil || b.Epoch != 2 || b.Seq != 3 {
			t.Fatalf("second activation: %+v %v", b, err)
		}
		// The old activation is fenced out, the new one commits.
		if err := commit(t, s, &Commit{BoardID: "b1", Epoch: 1, Ops: ops(4, 4, "u")}); !errors.Is(err, ErrFenced) {
			t.Fatalf("stale epoch: want ErrFenced, got %v", err)
		}
		snap := &Snapshot{Seq: 4, Data: []byte(`{"entities":[]}`)}
		if err := commit(t, s, &Commit{BoardID: "b1", Epoch: 2, Ops: ops(4, 4, "v"), Snapshot: snap}); err != nil {
			t.Fatalf("new epoch: %v", err)
		}
		got, err := s.LoadOps(ctx, "b1", 0, 4)
		if err != nil || len(got) != 4 || got[3].User != "v" {
			t.Fatalf("load: %v %v", got, err)
		}
		c, _ := s.Activate(ctx, "b1")
		if c.SnapshotSeq != 4 || string(c.Snapshot) != `{"entities":[]}` {
			t.Fatalf("snapshot not stored: %+v", c)
		}
		if seq, found, err := s.FindOp(ctx, "b1", "u", "u-2"); !found || seq != 2 || err != nil {
			t.Fatalf("find op: %d %v %v", seq, found, err)
		}
	})
}

// Two activations of one board race, each committing as fast as it can:
// only the newest epoch ever commits once it exists, and the log stays
// gap-free with each seq written once.
func TestRacingActivationsNeverBothCommit(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openStore(t, dsn)
		type activation struct {
			epoch int64
			seq   int64
			wins  int
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		acts := make([]*activation, 4)
		for i := range acts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a, err := s.Activate(ctx, "race")
				if err != nil {
					t.Errorf("activate: %v", err)
					return
				}
				act := &activation{epoch: a.Epoch, seq: a.Seq}
				mu.Lock()
				acts[i] = act
				mu.Unlock()
				for n := 0; n < 50; n++ {
					err := commit(t, s, &Commit{BoardID: "race", Epoch: act.epoch,
						Ops: ops(act.seq+1, act.seq+1, fmt.Sprintf("e%d", act.epoch))})
					if errors.Is(err, ErrFenced) {
						return
					}
					if err != nil {
						t.Errorf("commit: %v", err)
						return
					}
					act.seq++
					act.wins++
				}
			}()
		}
		wg.Wait()
		_, epoch, err := s.BoardSeq(ctx, "race")
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range acts {
			if a != nil && a.epoch != epoch && a.wins == 50 {
				t.Fatalf("stale epoch %d committed everything beside epoch %d", a.epoch, epoch)
			}
		}
		seq, _, _ := s.BoardSeq(ctx, "race")
		got, _ := s.LoadOps(ctx, "race", 0, seq)
		for i, o := range got {
			if o.Seq != int64(i+1) {
				t.Fatalf("gap at %d: %d", i+1, o.Seq)
			}
		}
		// Every op after the newest activation came from it alone.
		newest, _ := s.Activate(ctx, "race")
		if err := commit(t, s, &Commit{BoardID: "race", Epoch: newest.Epoch - 1, Ops: ops(seq+1, seq+1, "late")}); !errors.Is(err, ErrFenced) {
			t.Fatalf("the previous epoch still commits: %v", err)
		}
	})
}

func TestGroupCommitBatchesBoards(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openStore(t, dsn)
		const boards, perBoard = 40, 25
		for b := 0; b < boards; b++ {
			if _, err := s.Activate(ctx, fmt.Sprint("g", b)); err != nil {
				t.Fatal(err)
			}
		}
		before := s.Stats()
		var wg sync.WaitGroup
		for b := 0; b < boards; b++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := int64(1); i <= perBoard; i++ {
					if err := commit(t, s, &Commit{BoardID: fmt.Sprint("g", b), Epoch: 1, Ops: ops(i, i, "u")}); err != nil {
						t.Errorf("commit: %v", err)
						return
					}
				}
			}()
		}
		wg.Wait()
		st := s.Stats()
		if st.Ops-before.Ops != boards*perBoard {
			t.Fatalf("ops %d", st.Ops-before.Ops)
		}
		if batches := st.Batches - before.Batches; batches >= boards*perBoard {
			t.Fatalf("no grouping: %d transactions for %d commits", batches, boards*perBoard)
		}
	})
}

// The database going away refuses commits (nothing is acked), and the
// store recovers by itself once it is back.
func TestDatabaseDownThenBack(t *testing.T) {
	dsn := testutil.NewPostgres(t)
	u, _ := url.Parse(dsn)
	proxy := testutil.NewProxy(t, u.Host)
	u.Host = proxy.Addr()
	ctx := context.Background()
	s := openStore(t, u.String())
	if _, err := s.Activate(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	if err := commit(t, s, &Commit{BoardID: "db", Epoch: 1, Ops: ops(1, 1, "u")}); err != nil {
		t.Fatal(err)
	}
	proxy.SetDown(true)
	if err := commit(t, s, &Commit{BoardID: "db", Epoch: 1, Ops: ops(2, 2, "u")}); err == nil || errors.Is(err, ErrFenced) {
		t.Fatalf("commit with the database down: %v", err)
	}
	proxy.SetDown(false)
	testutil.Eventually(t, 20*time.Second, func() bool {
		return commit(t, s, &Commit{BoardID: "db", Epoch: 1, Ops: ops(2, 2, "u")}) == nil
	}, "store recovers after the database is back")
	got, err := s.LoadOps(ctx, "db", 0, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("after recovery: %v %v", got, err)
	}
}

func TestCloseFlushesQueuedCommits(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "t.db")
	cfg := sysconfig.Default().Store
	cfg.DSN = dsn
	s, err := Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Activate(context.Background(), "f"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := 0
	for i := int64(1); i <= 100; i++ {
		c := &Commit{BoardID: "f", Epoch: 1, Ops: ops(i, i, "u"), Done: func(err error) {
			if err == nil {
				mu.Lock()
				acked++
				mu.Unlock()
			}
		}}
		if err := s.Submit(c); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	if acked != 100 {
		t.Fatalf("close flushed %d of 100", acked)
	}
	if err := s.Submit(&Commit{BoardID: "f", Done: func(error) {}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("submit after close: %v", err)
	}
	s2 := openStore(t, dsn)
	if seq, _, _ := s2.BoardSeq(context.Background(), "f"); seq != 100 {
		t.Fatalf("after reopen: seq %d", seq)
	}
}

func TestNodeTable(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openStore(t, dsn)
		if err := s.Heartbeat(ctx, NodeRow{Name: "a@h", DistAddr: "127.0.0.1:1"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Heartbeat(ctx, NodeRow{Name: "b@h", DistAddr: "127.0.0.1:2"}); err != nil {
			t.Fatal(err)
		}
		live, err := s.LiveNodes(ctx, time.Minute, time.Hour)
		if err != nil || len(live) != 2 || live[1].DistAddr != "127.0.0.1:2" {
			t.Fatalf("live: %v %v", live, err)
		}
		// Rows not seen within maxAge are not live; past expireAfter they go.
		live, _ = s.LiveNodes(ctx, -time.Minute, time.Hour)
		if len(live) != 0 {
			t.Fatalf("stale rows are live: %v", live)
		}
		if _, err := s.LiveNodes(ctx, time.Minute, -time.Minute); err != nil {
			t.Fatal(err)
		}
		var n int64
		s.db.Raw(`SELECT count(*) FROM nodes`).Scan(&n)
		if n != 0 {
			t.Fatalf("expired rows kept: %d", n)
		}
	})
}

// Nodes starting together on a fresh database migrate one at a time.
func TestConcurrentStartsMigrateOnce(t *testing.T) {
	dsn := testutil.NewPostgres(t)
	cfg := sysconfig.Default().Store
	cfg.DSN = dsn
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(context.Background(), cfg, nil)
			if err != nil {
				errs <- err
				return
			}
			s.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent start: %v", err)
	}
}

// A transaction whose client froze in the middle of it (a SIGSTOPped
// node) is ended by the server after idleTxTimeout: the board's row lock
// goes with it, and another activation takes the board over instead of
// waiting for as long as the client stays frozen.
func TestFrozenTransactionReleasesItsBoard(t *testing.T) {
	dsn := testutil.NewPostgres(t)
	frozen := openStore(t, dsn)
	ctx := context.Background()
	if _, err := frozen.Activate(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	conn, err := frozen.sqlDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "UPDATE boards SET seq = seq WHERE id = 'f'"); err != nil {
		t.Fatal(err)
	}
	// The client says nothing more. Without the timeout this waits until
	// its context ends.
	other := openStore(t, dsn)
	actx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	a, err := other.Activate(actx, "f")
	if err != nil {
		t.Fatalf("activation behind a frozen transaction: %v", err)
	}
	if a.Epoch != 2 {
		t.Fatalf("epoch after the takeover: %d", a.Epoch)
	}
}

func TestIdleTxTimeoutInDSN(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u@h:5432/db":                                     "postgres://u@h:5432/db?idle_in_transaction_session_timeout=" + idleTxTimeout,
		"postgres://u@h/db?sslmode=disable":                          "postgres://u@h/db?idle_in_transaction_session_timeout=" + idleTxTimeout + "&sslmode=disable",
		"postgres://u@h/db?idle_in_transaction_session_timeout=9000": "postgres://u@h/db?idle_in_transaction_session_timeout=9000",
	} {
		if got := withIdleTxTimeout(in); got != want {
			t.Errorf("withIdleTxTimeout(%q) = %q, want %q", in, got, want)
		}
	}
}

// Boards that hand the writer commit after commit without waiting for the
// answers (as a busy board does) get them written in order, whether the
// writer runs one transaction at a time or two side by side; on
// PostgreSQL the heavy load makes it run two.
func TestPipelinedCommitsStayInOrder(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		cfg := sysconfig.Default().Store
		cfg.DSN = dsn
		cfg.FlushMs = 20 // commits pile up: the writer sees heavy load
		s, err := Open(ctx, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		const boards, perBoard = 64, 30
		for b := range boards {
			if _, err := s.Activate(ctx, fmt.Sprint("p", b)); err != nil {
				t.Fatal(err)
			}
		}
		answers := make(chan error, boards*perBoard)
		var wg sync.WaitGroup
		for b := range boards {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := int64(1); i <= perBoard; i++ {
					c := &Commit{BoardID: fmt.Sprint("p", b), Epoch: 1, Ops: ops(i, i, "u"), Done: func(err error) { answers <- err }}
					if err := submit(s, c); err != nil {
						t.Errorf("submit: %v", err)
						return
					}
				}
			}()
		}
		wg.Wait()
		for range boards * perBoard {
			select {
			case err := <-answers:
				if err != nil {
					t.Fatalf("a commit failed: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("commits got no answer")
			}
		}
		for b := range boards {
			if seq, _, err := s.BoardSeq(ctx, fmt.Sprint("p", b)); err != nil || seq != perBoard {
				t.Errorf("board p%d at seq %d (%v), want %d", b, seq, err, perBoard)
			}
		}
		if st := s.Stats(); s.Dialect() == "postgres" && st.Overlapped == 0 {
			t.Errorf("no transaction overlapped another in %d (heavy load on PostgreSQL)", st.Batches)
		}
	})
}

// take keeps each board's commits in order: with a transaction in flight
// it leaves the boards of that transaction out, and under heavy load it
// takes one half of the boards, leaving the other half for a second one.
func TestTakeKeepsBoardsInOrder(t *testing.T) {
	w := &writer{batchMax: 512, lanes: 2}
	mk := func(board string, seq int64, n int) *Commit {
		return &Commit{BoardID: board, Ops: ops(seq, seq+int64(n)-1, "u")}
	}
	ids := func(cs []*Commit) (out []string) {
		for _, c := range cs {
			out = append(out, fmt.Sprint(c.BoardID, c.Ops[0].Seq))
		}
		return out
	}

	// In flight: board a. Free boards have fewer than overlapOps ops: wait.
	g := &gathering{inFlight: map[string]int{"a": 1}}
	for _, c := range []*Commit{mk("a", 2, 1), mk("b", 1, 10)} {
		g.pending = append(g.pending, c)
		g.ops += len(c.Ops)
	}
	g.recount()
	if b := w.take(g, true, false); b != nil {
		t.Fatalf("overlap took %v with only 10 free ops", ids(b))
	}
	// Enough free ops: b and c go, a stays behind its commit in flight.
	for _, c := range []*Commit{mk("c", 1, overlapOps), mk("a", 3, 1), mk("b", 11, 1)} {
		g.pending = append(g.pending, c)
		g.ops += len(c.Ops)
	}
	g.recount()
	b := w.take(g, true, false)
	if got, want := fmt.Sprint(ids(b)), "[b1 c1 b11]"; got != want {
		t.Fatalf("overlap took %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(ids(g.pending)), "[a2 a3]"; got != want || g.ops != 2 {
		t.Fatalf("left %s (%d ops), want %s (2 ops)", got, g.ops, want)
	}

	// Split: only the boards of the first one's half.
	g = &gathering{inFlight: map[string]int{}}
	for i := range 8 {
		c := mk(fmt.Sprint("s", i), 1, 10)
		g.pending = append(g.pending, c)
		g.ops += len(c.Ops)
	}
	b = w.take(g, false, true)
	half := boardHalf(b[0].BoardID)
	for _, c := range b {
		if boardHalf(c.BoardID) != half {
			t.Fatalf("split took boards of both halves: %v", ids(b))
		}
	}
	for _, c := range g.pending {
		if boardHalf(c.BoardID) == half {
			t.Fatalf("split left %s of the half it took", c.BoardID)
		}
	}
	if len(b) == 0 || len(g.pending) == 0 {
		t.Fatalf("split took %d and left %d of 8 boards (fnv should spread s0..s7)", len(b), len(g.pending))
	}

	// batchMax: a board's later commit never passes its earlier one.
	w.batchMax = 5
	g = &gathering{inFlight: map[string]int{}}
	for _, c := range []*Commit{mk("x", 1, 5), mk("y", 1, 1), mk("x", 6, 1)} {
		g.pending = append(g.pending, c)
		g.ops += len(c.Ops)
	}
	b = w.take(g, false, false)
	if got, want := fmt.Sprint(ids(b)), "[x1]"; got != want {
		t.Fatalf("took %s, want %s", got, want)
	}
}
