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

// writer is the group-commit writer: it gathers the commits of many
// boards and writes them in one transaction, when BatchMax ops wait or
// FlushMs passed. One transaction is in flight at a time, and the commits
// that arrive meanwhile wait for the next: at moderate load that gathers
// more per transaction than several writers would, and each transaction
// costs the database a commit (a WAL flush, most of its CPU per op here)
// on a machine whose CPU it shares with the node. Under heavy load (with
// lanes 2), a second transaction starts beside the first, so that round
// trips overlap: when overlapOps of boards with nothing in flight wait,
// and, with nothing in flight and that many waiting, the first takes one
// half of the boards (by hash) so that the other half can follow at once.
// No board has commits in two transactions at once, which keeps every
// board's commits in order.
type writer struct {
	s        *Store
	in       chan *Commit
	batchMax int
	flush    time.Duration
	lanes    int // transactions in flight at most

	batches, ops, failed, overlapped atomic.Int64

	mu     sync.RWMutex // guards closed against Submit's send
	closed bool
	done   chan struct{}
}

// overlapOps is how many ops, of boards with no commit in flight, start a
// second transaction while one is in flight.
const overlapOps = 64

// queueFactor sizes the queue in batches: deep enough to absorb a burst
// while one transaction is in flight, bounded so a stuck database pushes
// back (ErrBusy) instead of growing memory.
const queueFactor = 32

func newWriter(s *Store, cfg sysconfig.Store, lanes int) *writer {
	w := &writer{
		s:        s,
		batchMax: max(cfg.BatchMax, 1),
		flush:    time.Duration(max(cfg.FlushMs, 0)) * time.Millisecond,
		lanes:    max(lanes, 1),
		done:     make(chan struct{}),
	}
	w.in = make(chan *Commit, w.batchMax*queueFactor)
	go w.run()
	return w
}

// Submit queues a commit without blocking. ErrBusy when the queue is full,
// ErrClosed after Close; Done is not called then. Commits of one board
// are written in the order they were submitted.
func (s *Store) Submit(c *Commit) error {
	w := s.writer
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
	// Overlapped counts transactions started while another was in flight.
	Overlapped int64
	Queued     int // commits waiting now
}

// Stats returns the writer's counters.
func (s *Store) Stats() Stats {
	w := s.writer
	return Stats{Batches: w.batches.Load(), Ops: w.ops.Load(), Failed: w.failed.Load(),
		Overlapped: w.overlapped.Load(), Queued: len(w.in)}
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

// gathering is the writer's loop state: the commits waiting for a
// transaction and the boards of those in flight.
type gathering struct {
	pending  []*Commit
	ops      int            // ops in pending
	freeOps  int            // ops in pending of boards with nothing in flight
	inFlight map[string]int // board -> its commits in the transactions in flight
	running  int            // transactions in flight
	due      bool           // the oldest pending commit waited FlushMs
}

func (w *writer) run() {
	defer close(w.done)
	g := &gathering{inFlight: make(map[string]int)}
	ended := make(chan []*Commit, w.lanes)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	in := w.in
	for in != nil || len(g.pending) > 0 || g.running > 0 {
		select {
		case c, ok := <-in:
			if !ok {
				in, g.due = nil, true // closing: write what is left now
				break
			}
			w.add(g, c, timer)
			// Take what else is queued in the same wake-up.
			for more := true; more && g.ops < w.batchMax; {
				select {
				case c, ok := <-in:
					if !ok {
						in, g.due, more = nil, true, false
						break
					}
					w.add(g, c, timer)
				default:
					more = false
				}
			}
		case b := <-ended:
			g.running--
			for _, c := range b {
				if g.inFlight[c.BoardID]--; g.inFlight[c.BoardID] <= 0 {
					delete(g.inFlight, c.BoardID)
				}
			}
			g.recount()
		case <-timer.C:
			g.due = true
		}
		w.dispatch(g, ended, timer)
	}
}

// add queues c for the next transaction; the first one waiting starts the
// flush timer.
func (w *writer) add(g *gathering, c *Commit, timer *time.Timer) {
	if len(g.pending) == 0 {
		if w.flush > 0 {
			timer.Reset(w.flush)
		} else {
			g.due = true
		}
	}
	g.pending = append(g.pending, c)
	g.ops += len(c.Ops)
	if g.inFlight[c.BoardID] == 0 {
		g.freeOps += len(c.Ops)
	}
}

// recount sets freeOps, once the boards in flight changed.
func (g *gathering) recount() {
	g.freeOps = 0
	for _, c := range g.pending {
		if g.inFlight[c.BoardID] == 0 {
			g.freeOps += len(c.Ops)
		}
	}
}

// dispatch starts the transactions the state allows: the first when the
// flush time passed or a full batch waits, a second beside it only for
// overlapOps of boards not in flight.
func (w *writer) dispatch(g *gathering, ended chan<- []*Commit, timer *time.Timer) {
	for len(g.pending) > 0 && g.running < w.lanes {
		if g.running == 0 && !g.due && g.ops < w.batchMax {
			return
		}
		batch := w.take(g, g.running > 0, g.running == 0 && w.lanes > 1 && g.ops >= overlapOps)
		if batch == nil {
			return
		}
		if g.running > 0 {
			w.overlapped.Add(1)
		}
		g.running++
		for _, c := range batch {
			g.inFlight[c.BoardID]++
		}
		g.recount()
		go func() {
			w.write(batch)
			ended <- batch
		}()
		if len(g.pending) == 0 {
			g.due = false
			timer.Stop()
		}
	}
}

// take removes a batch of up to batchMax ops from pending, in order. With
// overlap (a transaction is in flight), only commits of boards with none
// in flight are taken, and only if they add up to overlapOps. With split
// (heavy load, nothing in flight), only the boards of one half, by hash,
// so that the other half can follow in a second transaction at once.
func (w *writer) take(g *gathering, overlap, split bool) []*Commit {
	if overlap && g.freeOps < overlapOps {
		return nil
	}
	var half uint32
	if split {
		half = boardHalf(g.pending[0].BoardID)
	}
	var batch []*Commit
	rest := g.pending[:0]
	n := 0
	for _, c := range g.pending {
		if n >= w.batchMax || overlap && g.inFlight[c.BoardID] > 0 || split && boardHalf(c.BoardID) != half {
			rest = append(rest, c)
			continue
		}
		batch = append(batch, c)
		n += len(c.Ops)
	}
	clear(g.pending[len(rest):])
	g.pending = rest
	g.ops -= n
	return batch
}

// boardHalf splits boards in two by a hash of their id.
func boardHalf(id string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(id))
	return h.Sum32() & 1
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
