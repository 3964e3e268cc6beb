package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// writePostgres commits one batch on PostgreSQL with pgx itself: one
// UPDATE of every board's seq from arrays, the ops by COPY, then the
// snapshots. gorm stays the door for everything else; on the hot path
// its per-statement reflection cost more than the database did.
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
		if !hasSnapshot(batch) {
			return commitInOneStatement(ctx, sc.Conn(), batch, fenced)
		}
		tx, err := sc.Conn().Begin(ctx)
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
			tag, err := tx.Exec(ctx, `UPDATE boards SET snapshot = $1, snapshot_seq = $2 WHERE id = $3 AND epoch = $4 AND snapshot_seq < $2 AND seq >= $2`,
				c.Snapshot.Data, c.Snapshot.Seq, c.BoardID, c.Epoch)
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
	})
}

func hasSnapshot(batch []*Commit) bool {
	for _, c := range batch {
		if c.Snapshot != nil {
			return true
		}
	}
	return false
}

// oneStatement advances the boards' seqs under their epochs and inserts the
// ops of the boards it advanced, as one statement: PostgreSQL runs it as
// one transaction, in one round trip (BEGIN, UPDATE, COPY and COMMIT took
// four; on a busy machine each costs a scheduling delay).
const oneStatement = `WITH adv AS (
	UPDATE boards SET seq = v.last, updated_at = now()
	FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) AS v(id, epoch, prev, last)
	WHERE boards.id = v.id AND boards.epoch = v.epoch AND boards.seq = v.prev
	RETURNING boards.id
), ins AS (
	INSERT INTO board_ops (board_id, seq, "user", op_id, op, result, created_at)
	SELECT o.board_id, o.seq, o.usr, o.op_id, o.op, o.result, now()
	FROM unnest($5::text[], $6::bigint[], $7::text[], $8::text[], $9::bytea[], $10::bytea[]) AS o(board_id, seq, usr, op_id, op, result)
	WHERE o.board_id IN (SELECT id FROM adv)
	RETURNING board_id
)
SELECT adv.id, (SELECT count(*) FROM ins WHERE ins.board_id = adv.id) FROM adv`

// commitInOneStatement commits a batch without snapshots with oneStatement.
func commitInOneStatement(ctx context.Context, conn *pgx.Conn, batch []*Commit, fenced map[*Commit]bool) error {
	order, spans := boardSpans(batch, fenced)
	if len(order) == 0 {
		return nil
	}
	ids := make([]string, 0, len(order))
	epochs := make([]int64, 0, len(order))
	prevs := make([]int64, 0, len(order))
	lasts := make([]int64, 0, len(order))
	want := make(map[string]int64, len(order))
	for _, id := range order {
		sp := spans[id]
		ids, epochs, prevs, lasts = append(ids, id), append(epochs, sp.epoch), append(prevs, sp.prev), append(lasts, sp.last)
		want[id] = sp.last - sp.prev
	}
	var boardIDs, users, opIDs []string
	var seqs []int64
	var ops, results [][]byte
	for _, c := range batch {
		if fenced[c] {
			continue
		}
		for i := range c.Ops {
			o := &c.Ops[i]
			boardIDs, seqs, users, opIDs = append(boardIDs, c.BoardID), append(seqs, o.Seq), append(users, o.User), append(opIDs, o.OpID)
			ops, results = append(ops, o.Op), append(results, o.Result)
		}
	}
	rows, err := conn.Query(ctx, oneStatement, ids, epochs, prevs, lasts, boardIDs, seqs, users, opIDs, ops, results)
	if err != nil {
		return err
	}
	advanced := make(map[string]bool, len(order))
	for rows.Next() {
		var id string
		var inserted int64
		if err := rows.Scan(&id, &inserted); err != nil {
			rows.Close()
			return err
		}
		if inserted != want[id] {
			rows.Close()
			return fmt.Errorf("store: board %s: %d ops inserted, %d given", id, inserted, want[id])
		}
		advanced[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	fenceUnadvanced(spans, advanced, fenced)
	return nil
}

// span is one board's part of a batch: its consecutive commits.
type span struct {
	epoch, prev, last int64
	commits           []*Commit
}

// boardSpans groups a batch's commits with ops by board, in order of
// first appearance. Several commits of one board are merged when
// consecutive; otherwise the later ones are fenced (they cannot follow).
func boardSpans(batch []*Commit, fenced map[*Commit]bool) ([]string, map[string]*span) {
	spans := make(map[string]*span, len(batch))
	var order []string
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

// fenceUnadvanced fences every commit of the boards the UPDATE left alone
// (another epoch owns them, or their seq moved on).
func fenceUnadvanced(spans map[string]*span, advanced map[string]bool, fenced map[*Commit]bool) {
	for id, sp := range spans {
		if !advanced[id] {
			for _, c := range sp.commits {
				fenced[c] = true
			}
		}
	}
}

// advancePG moves every board of the batch forward in one statement.
func advancePG(ctx context.Context, tx pgx.Tx, batch []*Commit, fenced map[*Commit]bool) error {
	order, spans := boardSpans(batch, fenced)
	if len(order) == 0 {
		return nil
	}
	ids := make([]string, 0, len(order))
	epochs := make([]int64, 0, len(order))
	prevs := make([]int64, 0, len(order))
	lasts := make([]int64, 0, len(order))
	for _, id := range order {
		sp := spans[id]
		ids, epochs, prevs, lasts = append(ids, id), append(epochs, sp.epoch), append(prevs, sp.prev), append(lasts, sp.last)
	}
	rows, err := tx.Query(ctx, `UPDATE boards SET seq = v.last, updated_at = now()
		FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) AS v(id, epoch, prev, last)
		WHERE boards.id = v.id AND boards.epoch = v.epoch AND boards.seq = v.prev
		RETURNING boards.id`, ids, epochs, prevs, lasts)
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
	fenceUnadvanced(spans, advanced, fenced)
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
