package load

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// History is what one client saw of one board: a segment per join, each
// the gap-free run of events that followed it.
type History struct {
	Client   string    `json:"client"`
	Board    string    `json:"board"`
	Segments []Segment `json:"segments"`
}

// Segment is one membership of a board, from a joined to the loss of the
// connection (or the end of the run, then Open).
type Segment struct {
	// Start is the seq the client had applied when the segment began: the
	// joined seq after a snapshot, or the since it joined with.
	Start    int64 `json:"start"`
	Snapshot bool  `json:"snapshot,omitempty"`
	// Open: the client was still joined when the history was taken, after
	// the run settled, so it must have every op of the board.
	Open   bool    `json:"open,omitempty"`
	Events []Event `json:"events"`
}

// Event is one ev a client received.
type Event struct {
	Seq  int64  `json:"seq"`
	User string `json:"user"`
	ID   string `json:"id"`
}

// AckRecord is one ack a client received.
type AckRecord struct {
	Board     string    `json:"board"`
	User      string    `json:"user"`
	ID        string    `json:"id"`
	Seq       int64     `json:"seq"`
	Dup       bool      `json:"dup,omitempty"`
	FirstSent time.Time `json:"first_sent"`
	At        time.Time `json:"at"`
	// Extra: the op had been acknowledged already (an answer to a retry
	// whose first ack had arrived).
	Extra bool `json:"extra,omitempty"`
}

// Refusal is an op the server refused for good (an error other than
// unavailable and rate_limited): it must not be on the board.
type Refusal struct {
	Board string `json:"board"`
	User  string `json:"user"`
	ID    string `json:"id"`
	Code  string `json:"code"`
	Msg   string `json:"msg"`
}

// Records are what a recorded run's clients saw.
type Records struct {
	Histories []History
	Acks      []AckRecord
	Refusals  []Refusal
	// Sent is the set of user+"\x00"+id of every op sent; nil skips the
	// phantom check.
	Sent map[string]bool
}

// DBRow is one row of board_ops.
type DBRow struct {
	Board string
	Seq   int64
	User  string
	ID    string
}

// Violation is one broken invariant.
type Violation struct {
	Board  string `json:"board"`
	Seq    int64  `json:"seq"`
	Kind   string `json:"kind"` // lost, duplicate, reorder, gap, mismatch, behind, refused_stored, db_gap, phantom
	Client string `json:"client,omitempty"`
	Detail string `json:"detail"`
}

func (v Violation) String() string {
	s := fmt.Sprintf("board %s seq %d: %s: %s", v.Board, v.Seq, v.Kind, v.Detail)
	if v.Client != "" {
		s += " (client " + v.Client + ")"
	}
	return s
}

// Report is the checker's verdict.
type Report struct {
	Boards     int         `json:"boards"`
	DBOps      int         `json:"db_ops"`
	Acks       int         `json:"acks"`
	Events     int         `json:"events"`
	Violations []Violation `json:"violations"`
}

// OK reports whether every invariant held.
func (r Report) OK() bool { return len(r.Violations) == 0 }

// First is the first violation in (board, seq) order, or "".
func (r Report) First() string {
	if len(r.Violations) == 0 {
		return ""
	}
	return r.Violations[0].String()
}

func (r Report) String() string {
	if r.OK() {
		return fmt.Sprintf("ok: %d boards, %d ops in the database, %d acks, %d events checked",
			r.Boards, r.DBOps, r.Acks, r.Events)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "FAILED: %d violations; first: %s", len(r.Violations), r.First())
	for i, v := range r.Violations[1:] {
		if i == 9 {
			fmt.Fprintf(&b, "\n  ... %d more", len(r.Violations)-11)
			break
		}
		b.WriteString("\n  " + v.String())
	}
	return b.String()
}

// Check proves the guarantees of PROTOCOL.md on a run's records, against
// the database rows of its boards:
//   - the database holds each board's ops at seq 1..n with no gap;
//   - every acknowledged op is in the database at the acked seq, with its
//     user and id (retries acked with the same seq), so none is lost;
//   - every event a member received is the database's op at that seq, and
//     each membership segment is gap-free, in order, without duplicates,
//     from where it joined; so every acknowledged op is seen exactly once
//     at the same seq by every member joined across it;
//   - a member still joined at the end has every op of the board;
//   - the database holds no op that no client sent, nor any op the
//     server refused with an error.
//
// Violations come sorted by board and seq.
func Check(rec Records, rows []DBRow) Report {
	hist, acks, sent := rec.Histories, rec.Acks, rec.Sent
	rep := Report{Acks: len(acks), DBOps: len(rows)}
	var vs []Violation
	add := func(v Violation) { vs = append(vs, v) }

	// The database, per board.
	type opKey struct{ user, id string }
	db := map[string][]DBRow{} // board -> rows in seq order, index seq-1 when gap-free
	bySeq := map[string]map[int64]DBRow{}
	byOp := map[string]map[opKey]int64{}
	for _, r := range rows {
		if bySeq[r.Board] == nil {
			bySeq[r.Board] = map[int64]DBRow{}
			byOp[r.Board] = map[opKey]int64{}
		}
		if _, dup := bySeq[r.Board][r.Seq]; dup {
			add(Violation{Board: r.Board, Seq: r.Seq, Kind: "duplicate", Detail: "two database rows at one seq"})
		}
		bySeq[r.Board][r.Seq] = r
		k := opKey{r.User, r.ID}
		if s, dup := byOp[r.Board][k]; dup {
			add(Violation{Board: r.Board, Seq: r.Seq, Kind: "duplicate",
				Detail: fmt.Sprintf("op %s/%s stored twice, at seq %d and %d", r.User, r.ID, s, r.Seq)})
		}
		byOp[r.Board][k] = r.Seq
		db[r.Board] = append(db[r.Board], r)
		if sent != nil && !sent[r.User+"\x00"+r.ID] {
			add(Violation{Board: r.Board, Seq: r.Seq, Kind: "phantom",
				Detail: fmt.Sprintf("database op %s/%s was never sent", r.User, r.ID)})
		}
	}
	for _, f := range rec.Refusals {
		if s, ok := byOp[f.Board][opKey{f.User, f.ID}]; ok {
			add(Violation{Board: f.Board, Seq: s, Kind: "refused_stored",
				Detail: fmt.Sprintf("op %s/%s was refused (%s: %s) yet stored", f.User, f.ID, f.Code, f.Msg)})
		}
	}
	dbMax := map[string]int64{}
	for b, rs := range db {
		slices.SortFunc(rs, func(x, y DBRow) int { return cmp.Compare(x.Seq, y.Seq) })
		for i, r := range rs {
			if want := int64(i + 1); r.Seq != want {
				add(Violation{Board: b, Seq: want, Kind: "db_gap",
					Detail: fmt.Sprintf("the database has no op at seq %d (next is %d)", want, r.Seq)})
				break
			}
		}
		dbMax[b] = rs[len(rs)-1].Seq
	}

	// Acknowledged ops.
	ackedAt := map[string]int64{} // board/user/id -> seq
	for _, a := range acks {
		k := a.Board + "\x00" + a.User + "\x00" + a.ID
		if s, ok := ackedAt[k]; ok && s != a.Seq {
			add(Violation{Board: a.Board, Seq: a.Seq, Kind: "duplicate",
				Detail: fmt.Sprintf("op %s/%s acknowledged at seq %d and at seq %d", a.User, a.ID, s, a.Seq)})
			continue
		}
		ackedAt[k] = a.Seq
		r, ok := bySeq[a.Board][a.Seq]
		switch {
		case !ok:
			add(Violation{Board: a.Board, Seq: a.Seq, Kind: "lost",
				Detail: fmt.Sprintf("acknowledged op %s/%s is not in the database", a.User, a.ID)})
		case r.User != a.User || r.ID != a.ID:
			add(Violation{Board: a.Board, Seq: a.Seq, Kind: "mismatch",
				Detail: fmt.Sprintf("acknowledged op %s/%s, the database has %s/%s there", a.User, a.ID, r.User, r.ID)})
		}
	}

	// What the members saw.
	boards := map[string]bool{}
	for b := range db {
		boards[b] = true
	}
	for _, h := range hist {
		boards[h.Board] = true
		for _, seg := range h.Segments {
			next := seg.Start + 1
			seen := map[int64]bool{}
			for i, e := range seg.Events {
				rep.Events++
				if r, ok := bySeq[h.Board][e.Seq]; !ok {
					add(Violation{Board: h.Board, Seq: e.Seq, Client: h.Client, Kind: "lost",
						Detail: fmt.Sprintf("member received op %s/%s, which the database does not have", e.User, e.ID)})
				} else if r.User != e.User || r.ID != e.ID {
					add(Violation{Board: h.Board, Seq: e.Seq, Client: h.Client, Kind: "mismatch",
						Detail: fmt.Sprintf("member received %s/%s, the database has %s/%s", e.User, e.ID, r.User, r.ID)})
				}
				if e.Seq != next {
					add(classify(h, seg, i, next, seen))
					break // the rest of the segment is out of step
				}
				seen[e.Seq] = true
				next++
			}
			last := next - 1
			if seg.Open && last < dbMax[h.Board] {
				add(Violation{Board: h.Board, Seq: last + 1, Client: h.Client, Kind: "behind",
					Detail: fmt.Sprintf("member joined at the end has seq %d, the board has %d", last, dbMax[h.Board])})
			}
		}
	}
	rep.Boards = len(boards)
	slices.SortStableFunc(vs, func(a, b Violation) int {
		return cmp.Or(cmp.Compare(a.Board, b.Board), cmp.Compare(a.Seq, b.Seq),
			cmp.Compare(kindOrder[a.Kind], kindOrder[b.Kind]))
	})
	rep.Violations = vs
	return rep
}

// kindOrder ranks violations at the same board and seq: the gravest,
// most telling first.
var kindOrder = map[string]int{"lost": 0, "duplicate": 1, "reorder": 2, "gap": 3, "mismatch": 4,
	"behind": 5, "refused_stored": 6, "db_gap": 7, "phantom": 8}

// classify names what is wrong at event i of seg, which should be next.
func classify(h History, seg Segment, i int, next int64, seen map[int64]bool) Violation {
	e := seg.Events[i]
	v := Violation{Board: h.Board, Client: h.Client}
	switch {
	case e.Seq <= seg.Start || seen[e.Seq]:
		v.Seq, v.Kind = e.Seq, "duplicate"
		v.Detail = fmt.Sprintf("member received seq %d twice (expected %d next)", e.Seq, next)
	case e.Seq < next:
		v.Seq, v.Kind = e.Seq, "reorder"
		v.Detail = fmt.Sprintf("member received seq %d after %d", e.Seq, next-1)
	default:
		later := false
		for _, f := range seg.Events[i+1:] {
			if f.Seq == next {
				later = true
				break
			}
		}
		v.Seq = next
		if later {
			v.Kind = "reorder"
			v.Detail = fmt.Sprintf("member received seq %d before %d", e.Seq, next)
		} else {
			v.Kind = "gap"
			v.Detail = fmt.Sprintf("member never received seq %d (got %d next)", next, e.Seq)
		}
	}
	return v
}

// ReadBoardOps reads the board_ops rows of the boards whose id starts
// with prefix from a Postgres database.
func ReadBoardOps(ctx context.Context, dsn, prefix string) ([]DBRow, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	defer db.Close()
	q := `SELECT board_id, seq, "user", op_id FROM board_ops WHERE starts_with(board_id, $1) ORDER BY board_id, seq`
	rs, err := db.QueryContext(ctx, q, prefix)
	if err != nil {
		return nil, fmt.Errorf("read board_ops: %w", err)
	}
	defer rs.Close()
	var out []DBRow
	for rs.Next() {
		var r DBRow
		if err := rs.Scan(&r.Board, &r.Seq, &r.User, &r.ID); err != nil {
			return nil, fmt.Errorf("read board_ops: %w", err)
		}
		out = append(out, r)
	}
	return out, rs.Err()
}
