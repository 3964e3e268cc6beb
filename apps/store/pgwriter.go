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

// advancePG moves every board of the batch forward in one statement.
// Several commits of one board in a batch are merged when consecutive;
// otherwise the later ones are fenced (they cannot follow).
func advancePG(ctx context.Context, tx pgx.Tx, batch []*Commit, fenced map[*Commit]bool) error {
	type span struct {
		epoch, prev, last int64
		commits           []*Commit
	}
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
