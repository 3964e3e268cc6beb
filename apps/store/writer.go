package store

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"

	"github.com/tavernhq/tavern/internal/metrics"
	"github.com/tavernhq/tavern/internal/sysconfig"
)

// Commit is one board's request to make ops (and maybe a snapshot) durable.
// Ops must be consecutive and follow the board's committed seq. Done is
// called exactly once, from the writer goroutine, after the transaction that
// carried the commit ended: nil means durable. Done must not block.
type Commit struct {
	BoardID  string
	Epoch    int64
	Ops      []Op
	Snapshot *Snapshot
	Done     func(error)
}

// Snapshot is a board's whole state at a committed seq.
type Snapshot struct {
	Seq  int64
	Data []byte
}

// writer is the group-commit writer: it gathers commits of many boards and
// writes them in one transaction, when BatchMax ops wait or FlushMs passed.
type writer struct {
	s        *Store
	in       chan *Commit
	batchMax int
	flush    time.Duration

	batches, ops, failed atomic.Int64

	mu     sync.RWMutex // guards closed against Submit's send
	closed bool
	done   chan struct{}
}

// queueFactor sizes the queue in batches: deep enough to absorb a burst
// while one transaction is in flight, bounded so a stuck database pushes
// back (ErrBusy) instead of growing memory.
const queueFactor = 32

func newWriter(s *Store, cfg sysconfig.Store) *writer {
	w := &writer{
		s:        s,
		batchMax: max(cfg.BatchMax, 1),
		flush:    time.Duration(max(cfg.FlushMs, 0)) * time.Millisecond,
		done:     make(chan struct{}),
	}
	w.in = make(chan *Commit, w.batchMax*queueFactor)
	go w.run()
	return w
}

// Submit queues a commit without blocking. ErrBusy when the queue is full,
// ErrClosed after Close; Done is not called then. Commits of one board go
// to one writer, in order.
func (s *Store) Submit(c *Commit) error {
	w := s.writers[0]
	if len(s.writers) > 1 {
		h := fnv.New32a()
		h.Write([]byte(c.BoardID))
		w = s.writers[h.Sum32()%uint32(len(s.writers))]
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return ErrClosed
	}
	select {
	case w.in <- c:
		return nil
	default:
		return ErrBusy
	}
}

// Stats counts the writer's work since the store opened.
type Stats struct {
	Batches int64 // transactions attempted
	Ops     int64 // ops made durable
	Failed  int64 // transactions that failed
	Queued  int   // commits waiting now
}

// Stats returns the writers' counters.
func (s *Store) Stats() Stats {
	var st Stats
	for _, w := range s.writers {
		st.Batches += w.batches.Load()
		st.Ops += w.ops.Load()
		st.Failed += w.failed.Load()
		st.Queued += len(w.in)
	}
	return st
}

// close stops accepting commits, writes every queued one and waits.
func (w *writer) close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.in)
	}
	w.mu.Unlock()
	<-w.done
}

func (w *writer) run() {
	defer close(w.done)
	batch := make([]*Commit, 0, w.batchMax)
	for {
		c, ok := <-w.in
		if !ok {
			return
		}
		batch = append(batch[:0], c)
		n := len(c.Ops)
		var timer <-chan time.Time
		if w.flush > 0 {
			timer = time.After(w.flush)
		}
	gather:
		for n < w.batchMax {
			select {
			case c, ok := <-w.in:
				if !ok {
					break gather
				}
				batch = append(batch, c)
				n += len(c.Ops)
			default:
				if timer == nil {
					break gather
				}
				select {
				case c, ok := <-w.in:
					if !ok {
						break gather
					}
					batch = append(batch, c)
					n += len(c.Ops)
				case <-timer:
					break gather
				}
			}
		}
		w.write(batch)
		clear(batch)
	}
}

// write commits one batch in one transaction. Boards fenced by a newer
// epoch (or whose commit does not follow their stored seq) are left out of
// it and told ErrFenced; the rest share its fate.
func (w *writer) write(batch []*Commit) {
	fenced := make(map[*Commit]bool)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	if w.s.dialect == "postgres" {
		err = w.writePostgres(ctx, batch, fenced)
	} else {
		err = w.writeGorm(ctx, batch, fenced)
	}
	w.finish(batch, fenced, err)
}

// writeGorm commits one batch through gorm (SQLite).
func (w *writer) writeGorm(ctx context.Context, batch []*Commit, fenced map[*Commit]bool) error {
	return w.s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		clear(fenced)
		if err := w.advance(tx, batch, fenced); err != nil {
			return err
		}
		if err := insertOps(tx, batch, fenced); err != nil {
			return err
		}
		for _, c := range batch {
			if c.Snapshot == nil || fenced[c] {
				continue
			}
			res := tx.Exec(`UPDATE boards SET snapshot = ?, snapshot_seq = ? WHERE id = ? AND epoch = ? AND snapshot_seq < ? AND seq >= ?`,
				c.Snapshot.Data, c.Snapshot.Seq, c.BoardID, c.Epoch, c.Snapshot.Seq, c.Snapshot.Seq)
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected != 1 && len(c.Ops) == 0 {
				// A snapshot alone tells us about the fence too.
				var epoch int64
				if err := tx.Raw(`SELECT epoch FROM boards WHERE id = ?`, c.BoardID).Scan(&epoch).Error; err != nil {
					return err
				}
				if epoch != c.Epoch {
					fenced[c] = true
				}
			}
		}
		return nil
	})
}

// finish tells every commit of the batch how it went.
func (w *writer) finish(batch []*Commit, fenced map[*Commit]bool, err error) {
	w.batches.Add(1)
	if err != nil {
		w.failed.Add(1)
		metrics.CommitBatches.WithLabelValues("failed").Inc()
	} else {
		metrics.CommitBatches.WithLabelValues("ok").Inc()
	}
	for _, c := range batch {
		if err == nil && !fenced[c] {
			w.ops.Add(int64(len(c.Ops)))
		}
		switch {
		case err != nil:
			c.Done(fmt.Errorf("store: commit: %w", err))
		case fenced[c]:
			c.Done(ErrFenced)
		default:
			c.Done(nil)
		}
	}
}

// advance moves each board's seq forward under its epoch and expected
// previous seq. Boards with one commit in the batch (the usual case: a
// board has one commit in flight) are advanced by one statement for all;
// a board with several goes commit by commit, in order.
func (w *writer) advance(tx *gorm.DB, batch []*Commit, fenced map[*Commit]bool) error {
	count := make(map[string]int, len(batch))
	for _, c := range batch {
		if len(c.Ops) > 0 {
			count[c.BoardID]++
		}
	}
	var single []*Commit
	for _, c := range batch {
		if len(c.Ops) == 0 {
			continue
		}
		if count[c.BoardID] == 1 {
			single = append(single, c)
			continue
		}
		first, last := c.Ops[0].Seq, c.Ops[len(c.Ops)-1].Seq
		res := tx.Exec(`UPDATE boards SET seq = ?, updated_at = ? WHERE id = ? AND epoch = ? AND seq = ?`,
			last, now(), c.BoardID, c.Epoch, first-1)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			fenced[c] = true
		}
	}
	for len(single) > 0 {
		n := min(len(single), 500)
		if err := w.advanceMany(tx, single[:n], fenced); err != nil {
			return err
		}
		single = single[n:]
	}
	return nil
}

// advanceMany is one UPDATE ... FROM (VALUES ...) RETURNING for many
// boards: a commit whose board is not returned was fenced.
func (w *writer) advanceMany(tx *gorm.DB, cs []*Commit, fenced map[*Commit]bool) error {
	var sb strings.Builder
	args := make([]any, 0, len(cs)*4+1)
	args = append(args, now())
	sb.WriteString(`UPDATE boards SET seq = v.last, updated_at = ? FROM (VALUES `)
	for i, c := range cs {
		if i > 0 {
			sb.WriteString(",")
		}
		if w.s.dialect == "postgres" {
			sb.WriteString("(?::text,?::bigint,?::bigint,?::bigint)")
		} else {
			sb.WriteString("(?,?,?,?)")
		}
		args = append(args, c.BoardID, c.Epoch, c.Ops[0].Seq-1, c.Ops[len(c.Ops)-1].Seq)
	}
	sb.WriteString(`) AS v(id, epoch, prev, last) WHERE boards.id = v.id AND boards.epoch = v.epoch AND boards.seq = v.prev RETURNING boards.id`)
	if w.s.dialect == "sqlite" {
		// SQLite names VALUES columns column1..N and has no alias list.
		q := strings.Replace(sb.String(), `) AS v(id, epoch, prev, last) WHERE boards.id = v.id AND boards.epoch = v.epoch AND boards.seq = v.prev`,
			`) AS v WHERE boards.id = v.column1 AND boards.epoch = v.column2 AND boards.seq = v.column3`, 1)
		q = strings.Replace(q, "SET seq = v.last", "SET seq = v.column4", 1)
		sb.Reset()
		sb.WriteString(q)
	}
	rows, err := tx.Raw(sb.String(), args...).Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	advanced := make(map[string]bool, len(cs))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		advanced[id] = true
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, c := range cs {
		if !advanced[c.BoardID] {
			fenced[c] = true
		}
	}
	return nil
}

// insertOps writes the ops of the batch's unfenced commits with multi-row
// INSERTs, chunked to stay under every driver's parameter limit.
func insertOps(tx *gorm.DB, batch []*Commit, fenced map[*Commit]bool) error {
	const perRow = 7
	const maxRows = 1000
	var (
		sb   strings.Builder
		args = make([]any, 0, maxRows*perRow)
		rows int
	)
	ts := now()
	flush := func() error {
		if rows == 0 {
			return nil
		}
		err := tx.Exec(sb.String(), args...).Error
		sb.Reset()
		args = args[:0]
		rows = 0
		return err
	}
	for _, c := range batch {
		if fenced[c] {
			continue
		}
		for i := range c.Ops {
			o := &c.Ops[i]
			if rows == 0 {
				sb.WriteString(`INSERT INTO board_ops (board_id, seq, "user", op_id, op, result, created_at) VALUES `)
			} else {
				sb.WriteString(",")
			}
			sb.WriteString("(?,?,?,?,?,?,?)")
			args = append(args, c.BoardID, o.Seq, o.User, o.OpID, o.Op, o.Result, ts)
			rows++
			if rows == maxRows {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}
