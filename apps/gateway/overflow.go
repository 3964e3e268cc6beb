package gateway

import (
	"math"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/tavernhq/tavern/apps/board"
	"github.com/tavernhq/tavern/apps/gateway/wire"
)

// OverflowName is the registered name of the process that receives what
// does not fit in a session's mailbox.
const OverflowName = "gateway_overflow"

// overflowMailbox: when this is full too, the sender sees a full mailbox
// (a board then drops the member, which closes its client with 1013).
const overflowMailbox = 4096

// overflow receives the messages a session's full mailbox could not take
// (Ergo's mailbox fallback), so that a burst does not cost the client its
// connection:
//
//   - a board event is dropped: the session's board.Member notices the gap
//     at the next event and rejoins quietly from its last seq; so that a
//     board that falls silent mends too, the session is told which boards
//     lost events;
//   - a presence change is dropped too, and its board mended the same way;
//     the session then writes the board's whole presence (the users its
//     rejoin was answered with), which supersedes the lost change;
//   - anything else (an ack, a join's answer, a failure, a monitor's DOWN)
//     is redelivered, in order, once the mailbox has room. An ack that
//     comes back after its op's ev is caught by the session (sessionOut),
//     which then closes with 1013; a join's answer that comes back after
//     events of its board is followed by a mend.
type overflow struct {
	gen.Server
}

type overflowState struct {
	hub     *hub
	pending map[etf.Pid]*redeliver
	tries   map[etf.Pid]int // deliveries that came back, for the backoff
}

// redeliver hands a session what overflowed, in order, and the boards to
// mend after it.
type redeliver struct {
	Msgs     []etf.Term
	Boards   []string // boards to mend
	Presence []string // boards whose presence was lost (mended too)
	// Released: the dropped messages a board counted on the session's
	// feed (board.Feed), which the session must uncount.
	Released []board.FeedRef
}

// retryRedeliver sends a session its pending redeliver.
type retryRedeliver struct{ Session etf.Pid }

func (o *overflow) Init(process *gen.ServerProcess, args ...etf.Term) error {
	process.State = &overflowState{hub: args[0].(*hub), pending: make(map[etf.Pid]*redeliver), tries: make(map[etf.Pid]int)}
	return nil
}

func (o *overflow) HandleInfo(process *gen.ServerProcess, message etf.Term) gen.ServerStatus {
	st := process.State.(*overflowState)
	switch m := message.(type) {
	case gen.MessageFallback:
		switch inner := m.Message.(type) {
		case board.Event:
			st.queue(process, m.Process, nil, inner.Board)
			st.release(m.Process, inner.Board, inner.Feed)
		case board.Events:
			st.queue(process, m.Process, nil, inner.Board)
			st.release(m.Process, inner.Board, inner.Feed)
		case board.Presence:
			st.queue(process, m.Process, nil, inner.Board)
			st.release(m.Process, inner.Board, inner.Feed)
			r := st.pending[m.Process]
			if !contains(r.Presence, inner.Board) {
				r.Presence = append(r.Presence, inner.Board)
			}
		case board.Joined:
			st.queue(process, m.Process, inner, inner.Board)
		case redeliver:
			// Our own delivery did not fit either: it goes first next time.
			st.requeue(process, m.Process, inner)
		default:
			st.queue(process, m.Process, inner, "")
		}
	case retryRedeliver:
		if r, ok := st.pending[m.Session]; ok {
			delete(st.pending, m.Session)
			// A full mailbox brings it back as a fallback; an error means
			// the session is gone.
			if err := process.Send(m.Session, *r); err != nil {
				delete(st.tries, m.Session)
			}
			if len(st.pending) == 0 {
				clear(st.tries) // nothing waits: forget the backoffs
			}
		}
	}
	return gen.ServerStatusOK
}

// queue records msg (if any) and a board to mend (if any) for session;
// the first entry schedules the delivery.
func (st *overflowState) queue(process *gen.ServerProcess, session etf.Pid, msg etf.Term, mend string) {
	delete(st.tries, session) // the session took messages lately
	r := st.entry(process, session, time.Millisecond)
	if msg != nil {
		r.Msgs = append(r.Msgs, msg)
	}
	if mend != "" && !contains(r.Boards, mend) {
		r.Boards = append(r.Boards, mend)
	}
}

func (st *overflowState) requeue(process *gen.ServerProcess, session etf.Pid, back redeliver) {
	n := min(st.tries[session], 6)
	st.tries[session]++
	r := st.entry(process, session, (5*time.Millisecond)<<n) // up to 320ms
	r.Msgs = append(back.Msgs, r.Msgs...)
	for _, b := range back.Boards {
		if !contains(r.Boards, b) {
			r.Boards = append(r.Boards, b)
		}
	}
	for _, b := range back.Presence {
		if !contains(r.Presence, b) {
			r.Presence = append(r.Presence, b)
		}
	}
	r.Released = append(r.Released, back.Released...)
}

// release records a dropped message counted on a feed (id 0: none).
func (st *overflowState) release(session etf.Pid, boardID string, feed uint64) {
	if feed != 0 {
		r := st.pending[session]
		r.Released = append(r.Released, board.FeedRef{Board: boardID, Feed: feed})
	}
}

func (st *overflowState) entry(process *gen.ServerProcess, session etf.Pid, after time.Duration) *redeliver {
	r, ok := st.pending[session]
	if !ok {
		r = &redeliver{}
		st.pending[session] = r
		process.SendAfter(process.Self(), retryRedeliver{Session: session}, after)
	}
	return r
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// mend makes Member rejoin each board quietly from its last seq, as it
// does when it sees a gap: a fake event far ahead is such a gap. A board
// that is (re)joining is mended once its join is answered: the event lost
// may be newer than the seq that answer replays up to.
func (st *sessionState) mend(process *gen.ServerProcess, boards []string) {
	if st.member == nil {
		return
	}
	for _, b := range boards {
		if st.member.Joined(b) {
			st.member.Handle(process, board.Event{Board: b, Seq: math.MaxInt64})
		} else if _, ok := st.joins[b]; ok {
			if st.mendLater == nil {
				st.mendLater = make(map[string]struct{})
			}
			st.mendLater[b] = struct{}{}
		}
	}
}

// joinAnswered runs after Member took a join's answer m.
func (st *sessionState) joinAnswered(process *gen.ServerProcess, m board.Joined) {
	b := m.Board
	if !st.member.Joined(b) {
		return
	}
	if _, ok := st.mendLater[b]; ok {
		delete(st.mendLater, b)
		st.member.Handle(process, board.Event{Board: b, Seq: math.MaxInt64})
		return // the presence, if lost, comes with that rejoin's answer
	}
	if _, ok := st.presenceLost[b]; ok {
		delete(st.presenceLost, b)
		st.send(wire.PresenceFull(b, m.Users))
	}
}

// lostPresence records boards whose presence changes were dropped.
func (st *sessionState) lostPresence(boards []string) {
	for _, b := range boards {
		if _, ok := st.joins[b]; !ok {
			continue
		}
		if st.presenceLost == nil {
			st.presenceLost = make(map[string]struct{})
		}
		st.presenceLost[b] = struct{}{}
	}
}
