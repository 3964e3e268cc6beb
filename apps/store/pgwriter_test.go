package store

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/tavernhq/tavern/internal/testutil"
)

// One batch mixing boards that follow with boards that do not (a stale
// epoch, a gap, a second commit of a board that skips a seq): only the
// ones that follow land, whole, and each other commit is told ErrFenced;
// the same on the pipelined path (one round trip, which must roll back
// and retry step by step) and on the step-by-step path with COPY.
func TestMixedBatchOnBothPostgresPaths(t *testing.T) {
	dsn := testutil.NewPostgres(t)
	for _, path := range []struct {
		name   string
		maxOps int
	}{{"pipelined", 256}, {"stepwise", 0}} {
		t.Run(path.name, func(t *testing.T) {
			saved := pipelineMaxOps
			pipelineMaxOps = path.maxOps
			t.Cleanup(func() { pipelineMaxOps = saved })
			ctx := context.Background()
			s := openStore(t, dsn)
			id := func(s string) string { return path.name + "-" + s }
			for _, b := range []string{"ok", "stale", "gap", "twice", "skip", "snap"} {
				if _, err := s.Activate(ctx, id(b)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.Activate(ctx, id("stale")); err != nil { // epoch 2 now
				t.Fatal(err)
			}
			withResult := ops(1, 2, "u")
			withResult[1].Result = []byte(`{"total":7}`)
			answers := map[string]error{}
			mk := func(name string, c *Commit) *Commit {
				c.Done = func(err error) { answers[name] = err }
				return c
			}
			batch := []*Commit{
				mk("ok", &Commit{BoardID: id("ok"), Epoch: 1, Ops: withResult}),
				mk("stale", &Commit{BoardID: id("stale"), Epoch: 1, Ops: ops(1, 1, "u")}),
				mk("gap", &Commit{BoardID: id("gap"), Epoch: 1, Ops: ops(2, 3, "u")}),
				mk("twice-1", &Commit{BoardID: id("twice"), Epoch: 1, Ops: ops(1, 1, "u")}),
				mk("twice-2", &Commit{BoardID: id("twice"), Epoch: 1, Ops: ops(2, 3, "u")}),
				mk("skip-1", &Commit{BoardID: id("skip"), Epoch: 1, Ops: ops(1, 1, "u")}),
				mk("skip-2", &Commit{BoardID: id("skip"), Epoch: 1, Ops: ops(3, 3, "u")}),
				mk("snap", &Commit{BoardID: id("snap"), Epoch: 1, Ops: ops(1, 1, "u"), Snapshot: &Snapshot{Seq: 1, Data: []byte(`{}`)}}),
			}
			s.writer.write(batch)
			want := map[string]error{"ok": nil, "stale": ErrFenced, "gap": ErrFenced, "twice-1": nil, "twice-2": nil,
				"skip-1": nil, "skip-2": ErrFenced, "snap": nil}
			for name, w := range want {
				got, answered := answers[name]
				if !answered || !errors.Is(got, w) || (w == nil && got != nil) {
					t.Errorf("%s: answered %v with %v, want %v", name, answered, got, w)
				}
			}
			for board, seq := range map[string]int64{"ok": 2, "stale": 0, "gap": 0, "twice": 3, "skip": 1, "snap": 1} {
				got, epoch, err := s.BoardSeq(ctx, id(board))
				if err != nil || got != seq {
					t.Errorf("%s: seq %d (epoch %d, %v), want %d", board, got, epoch, err, seq)
				}
				stored, err := s.LoadOps(ctx, id(board), 0, 100)
				if err != nil || len(stored) != int(seq) {
					t.Errorf("%s: %d ops stored (%v), want %d", board, len(stored), err, seq)
				}
			}
			stored, _ := s.LoadOps(ctx, id("ok"), 0, 2)
			if len(stored) == 2 && (stored[0].Result != nil || string(stored[1].Result) != `{"total":7}`) {
				t.Errorf("results stored as %q and %q", stored[0].Result, stored[1].Result)
			}
			if a, _ := s.Activate(ctx, id("snap")); a.SnapshotSeq != 1 {
				t.Errorf("snapshot at %d, want 1", a.SnapshotSeq)
			}
		})
	}
}

// A batch whose insert breaks a constraint (an op id the board already
// has) fails whole on either path: no board moves, every commit gets the
// error, and the next batch commits.
func TestFailedBatchChangesNothing(t *testing.T) {
	dsn := testutil.NewPostgres(t)
	for _, maxOps := range []int{256, 0} {
		t.Run(fmt.Sprint("max", maxOps), func(t *testing.T) {
			saved := pipelineMaxOps
			pipelineMaxOps = maxOps
			t.Cleanup(func() { pipelineMaxOps = saved })
			ctx := context.Background()
			s := openStore(t, dsn)
			a, b := fmt.Sprint("fa", maxOps), fmt.Sprint("fb", maxOps)
			for _, id := range []string{a, b} {
				if _, err := s.Activate(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			if err := commit(t, s, &Commit{BoardID: a, Epoch: 1, Ops: ops(1, 1, "u")}); err != nil {
				t.Fatal(err)
			}
			reused := ops(2, 2, "u")
			reused[0].OpID = "u-1" // the unique (board, user, op id) refuses it
			var errA, errB error
			s.writer.write([]*Commit{
				{BoardID: a, Epoch: 1, Ops: reused, Done: func(err error) { errA = err }},
				{BoardID: b, Epoch: 1, Ops: ops(1, 1, "u"), Done: func(err error) { errB = err }},
			})
			if errA == nil || errB == nil || errors.Is(errA, ErrFenced) {
				t.Fatalf("answers %v and %v, want the constraint's error for both", errA, errB)
			}
			for id, want := range map[string]int64{a: 1, b: 0} {
				if seq, _, _ := s.BoardSeq(ctx, id); seq != want {
					t.Fatalf("%s moved to %d, want %d", id, seq, want)
				}
			}
			if err := commit(t, s, &Commit{BoardID: b, Epoch: 1, Ops: ops(1, 1, "u")}); err != nil {
				t.Fatalf("next batch: %v", err)
			}
		})
	}
}
