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
//   - a presence change cannot be mended: its client is closed with 1013
//     (it resumes with since and gets the presence afresh);
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
}

// redeliver hands a session what overflowed, in order, and the boards to
// mend after it.
type redeliver struct {
	Msgs   []etf.Term
	Boards []string
}

// retryRedeliver sends a session its pending redeliver.
type retryRedeliver struct{ Session etf.Pid }

func (o *overflow) Init(process *gen.ServerProcess, args ...etf.Term) error {
	process.State = &overflowState{hub: args[0].(*hub), pending: make(map[etf.Pid]*redeliver)}
	return nil
}

func (o *overflow) HandleInfo(process *gen.ServerProcess, message etf.Term) gen.ServerStatus {
	st := process.State.(*overflowState)
	switch m := message.(type) {
	case gen.MessageFallback:
		switch inner := m.Message.(type) {
		case board.Event:
			st.queue(process, m.Process, nil, inner.Board)
		case board.Presence:
			st.hub.closeSession(m.Process, wire.CloseTryAgain, "client too slow; rejoin with since")
			delete(st.pending, m.Process)
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
			_ = process.Send(m.Session, *r)
		}
	}
	return gen.ServerStatusOK
}

// queue records msg (if any) and a board to mend (if any) for session;
// the first entry schedules the delivery.
func (st *overflowState) queue(process *gen.ServerProcess, session etf.Pid, msg etf.Term, mend string) {
	r := st.entry(process, session, time.Millisecond)
	if msg != nil {
		r.Msgs = append(r.Msgs, msg)
	}
	if mend != "" && !contains(r.Boards, mend) {
		r.Boards = append(r.Boards, mend)
	}
}

func (st *overflowState) requeue(process *gen.ServerProcess, session etf.Pid, back redeliver) {
	r := st.entry(process, session, 5*time.Millisecond)
	r.Msgs = append(back.Msgs, r.Msgs...)
	for _, b := range back.Boards {
		if !contains(r.Boards, b) {
			r.Boards = append(r.Boards, b)
		}
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
// does when it sees a gap: a fake event far ahead is such a gap.
func (st *sessionState) mend(process *gen.ServerProcess, boards []string) {
	if st.member == nil {
		return
	}
	for _, b := range boards {
		st.member.Handle(process, board.Event{Board: b, Seq: math.MaxInt64})
	}
}
