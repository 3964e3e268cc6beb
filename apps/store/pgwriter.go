package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// pipelineMaxOps is the largest batch sent as one pipelined round trip
// (INSERT from arrays); bigger ones go step by step with COPY, which costs
// the database less per row once rows are many and latency is lost to
// queueing anyway.
var pipelineMaxOps = 256

// writePostgres commits one batch on PostgreSQL with pgx itself. gorm
// stays the door for everything else; on the hot path its per-statement
// reflection cost more than the database did.
func (w *writer) writePostgres(ctx context.Context, batch []*Commit, fenced map[*Commit]bool) error {
	conn, err := w.s.sqlDB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("store: postgres driver connection is %T, not pgx", dc)
		}
		pc := sc.Conn()
		if pipelinable(batch) {
			err := commitPipelined(ctx, pc, batch, fenced)
			if !errors.Is(err, errFenceMissed) {
				return err
			}
			// Some board did not follow: the transaction rolled back
			// whole; the step-by-step path finds out which.
			clear(fenced)
		}
		return commitStepwise(ctx, pc, batch, fenced)
	})
}

// pipelinable tells whether a batch may go as one round trip: not too
// many ops, and no snapshot without ops (whose fence only a read shows).
func pipelinable(batch []*Commit) bool {
	n := 0
	for _, c := range batch {
		if len(c.Ops) == 0 {
			return false
		}
		n += len(c.Ops)
	}
	return n <= pipelineMaxOps
}

// errFenceMissed is a pipelined commit rolled back because a board of it
// was not at the expected epoch and seq.
var errFenceMissed = errors.New("store: a board of the batch did not follow")

// advanceAllSQL moves every board forward and divides by zero, aborting
// the implicit transaction of the pipeline and so every statement of it,
// unless all of them moved: the ops that follow must not land for a
// fenced board, and a SQL statement has no other way to stop the ones
// after it without a round trip.
const advanceAllSQL = `WITH adv AS (` + advanceSQL + ` RETURNING 1)
SELECT 1 / (count(*) = $5)::int FROM adv`

// advanceSQL moves each board from its expected previous seq to its last
// one, under its epoch; a board that is elsewhere does not move.
const advanceSQL = `UPDATE boards SET seq = v.last, updated_at = now()
	FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) AS v(id, epoch, prev, last)
	WHERE boards.id = v.id AND boards.epoch = v.epoch AND boards.seq = v.prev`

const insertOpsSQL = `INSERT INTO board_ops (board_id, seq, "user", op_id, op, result, created_at)
SELECT *, now() FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bytea[], $6::bytea[])`

const snapshotSQL = `UPDATE boards SET snapshot = $1, snapshot_seq = $2 WHERE id = $3 AND epoch = $4 AND snapshot_seq < $2 AND seq >= $2`

// commitPipelined sends the batch's whole transaction at once, the
// statements of a pgx batch in one implicit transaction ended by its Sync:
// one round trip instead of five, which at light load is most of an op's
// latency.
func commitPipelined(ctx context.Context, pc *pgx.Conn, batch []*Commit, fenced map[*Commit]bool) error {
	order, spans := boardSpans(batch, fenced)
	ids, epochs, prevs, lasts := spanColumns(order, spans)
	var (
		boards, users, opIDs []string
		seqs                 []int64
		ops, results         [][]byte
	)
	for _, c := range batch {
		if fenced[c] {
			continue
		}
		for i := range c.Ops {
			o := &c.Ops[i]
			boards, seqs, users, opIDs = append(boards, c.BoardID), append(seqs, o.Seq), append(users, o.User), append(opIDs, o.OpID)
			ops, results = append(ops, o.Op), append(results, o.Result)
		}
	}
	b := &pgx.Batch{}
	b.Queue(advanceAllSQL, ids, epochs, prevs, lasts, len(order))
	b.Queue(insertOpsSQL, boards, seqs, users, opIDs, ops, results)
	for _, c := range batch {
		if c.Snapshot != nil && !fenced[c] {
			b.Queue(snapshotSQL, c.Snapshot.Data, c.Snapshot.Seq, c.BoardID, c.Epoch)
		}
	}
	br := pc.SendBatch(ctx, b)
	var one int
	err := br.QueryRow().Scan(&one)
	if err == nil {
		var tag pgconn.CommandTag
		if tag, err = br.Exec(); err == nil && tag.RowsAffected() != int64(len(boards)) {
			err = errors.New("store: insert wrote fewer ops than given")
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "22012" { // division_by_zero: see advanceAllSQL
		return errFenceMissed
	}
	return err
}

// commitStepwise commits one batch statement by statement in an explicit
// transaction: one UPDATE of every board's seq from arrays, which tells
// which boards are fenced, the ops by COPY, then the snapshots.
func commitStepwise(ctx context.Context, pc *pgx.Conn, batch []*Commit, fenced map[*Commit]bool) error {
	tx, err := pc.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	if err := advancePG(ctx, tx, batch, fenced); err != nil {
		return err
	}
	if err := copyOps(ctx, tx, batch, fenced); err != nil {
		return err
	}
	for _, c := range batch {
		if c.Snapshot == nil || fenced[c] {
			continue
		}
		tag, err := tx.Exec(ctx, snapshotSQL, c.Snapshot.Data, c.Snapshot.Seq, c.BoardID, c.Epoch)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 && len(c.Ops) == 0 {
			var epoch int64
			if err := tx.QueryRow(ctx, `SELECT epoch FROM boards WHERE id = $1`, c.BoardID).Scan(&epoch); err != nil {
				return err
			}
			if epoch != c.Epoch {
				fenced[c] = true
			}
		}
	}
	return tx.Commit(ctx)
}

// span is one board's ops in a batch: consecutive seqs from prev+1 to
// last under one epoch.
type span struct {
	epoch, prev, last int64
	commits           []*Commit
}

// boardSpans merges the batch's commits per board. Several commits of one
// board are merged when consecutive; otherwise the later ones are fenced
// (they cannot follow).
func boardSpans(batch []*Commit, fenced map[*Commit]bool) (order []string, spans map[string]*span) {
	spans = make(map[string]*span, len(batch))
	for _, c := range batch {
		if len(c.Ops) == 0 {
			continue
		}
		first, last := c.Ops[0].Seq, c.Ops[len(c.Ops)-1].Seq
		sp, ok := spans[c.BoardID]
		switch {
		case !ok:
			spans[c.BoardID] = &span{epoch: c.Epoch, prev: first - 1, last: last, commits: []*Commit{c}}
			order = append(order, c.BoardID)
		case sp.epoch == c.Epoch && sp.last == first-1:
			sp.last = last
			sp.commits = append(sp.commits, c)
		default:
			fenced[c] = true
		}
	}
	return order, spans
}

// spanColumns lays the spans out as the columns of an unnest.
func spanColumns(order []string, spans map[string]*span) (ids []string, epochs, prevs, lasts []int64) {
	ids = make([]string, 0, len(order))
	epochs = make([]int64, 0, len(order))
	prevs = make([]int64, 0, len(order))
	lasts = make([]int64, 0, len(order))
	for _, id := range order {
		sp := spans[id]
		ids, epochs, prevs, lasts = append(ids, id), append(epochs, sp.epoch), append(prevs, sp.prev), append(lasts, sp.last)
	}
	return ids, epochs, prevs, lasts
}

// advancePG moves every board of the batch forward in one statement and
// marks the commits of the boards it could not move as fenced.
func advancePG(ctx context.Context, tx pgx.Tx, batch []*Commit, fenced map[*Commit]bool) error {
	order, spans := boardSpans(batch, fenced)
	if len(order) == 0 {
		return nil
	}
	ids, epochs, prevs, lasts := spanColumns(order, spans)
	rows, err := tx.Query(ctx, advanceSQL+` RETURNING boards.id`, ids, epochs, prevs, lasts)
	if err != nil {
		return err
	}
	advanced := make(map[string]bool, len(order))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		advanced[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for id, sp := range spans {
		if !advanced[id] {
			for _, c := range sp.commits {
				fenced[c] = true
			}
		}
	}
	return nil
}

var opColumns = []string{"board_id", "seq", "user", "op_id", "op", "result", "created_at"}

// copyOps writes the ops of the unfenced commits with COPY.
func copyOps(ctx context.Context, tx pgx.Tx, batch []*Commit, fenced map[*Commit]bool) error {
	n := 0
	for _, c := range batch {
		if !fenced[c] {
			n += len(c.Ops)
		}
	}
	if n == 0 {
		return nil
	}
	ts := time.Now().UTC()
	rows := make([][]any, 0, n)
	for _, c := range batch {
		if fenced[c] {
			continue
		}
		for i := range c.Ops {
			o := &c.Ops[i]
			rows = append(rows, []any{c.BoardID, o.Seq, o.User, o.OpID, o.Op, o.Result, ts})
		}
	}
	copied, err := tx.CopyFrom(ctx, pgx.Identifier{"board_ops"}, opColumns, pgx.CopyFromRows(rows))
	if err != nil {
		return err
	}
	if copied != int64(n) {
		return errors.New("store: copy wrote fewer ops than given")
	}
	return nil
}
