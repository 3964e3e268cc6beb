package board

import (
	"errors"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"
)

// FanoutName is the registered name of each node's fanout process: a
// board on another node sends it one message per event, and it delivers
// the event to that board's members here.
const FanoutName = "tavern_fanout"

type fanout struct{ gen.Server }

// InlineCallback: the fanout never Calls, and there is one per node: all
// its callbacks run on its loop goroutine (gen.InlineCallbacks, a
// third_party/ergo patch).
func (*fanout) InlineCallback(interface{}) bool { return true }

func (f *fanout) HandleInfo(process *gen.ServerProcess, message etf.Term) gen.ServerStatus {
	switch m := message.(type) {
	case FanoutEvent:
		deliverLocal(process, m.Members.Pids(process.NodeName()), Event{Board: m.Board, Seq: m.Seq, Frame: m.Frame})
	case FanoutEvents:
		deliverLocal(process, m.Members.Pids(process.NodeName()), Events{Board: m.Board, First: m.First, Frames: m.Frames})
	case FanoutPresence:
		deliverLocal(process, m.Members.Pids(process.NodeName()), Presence{Board: m.Board, Joins: m.Joins, Leaves: m.Leaves})
	}
	return gen.ServerStatusOK
}

// deliverLocal sends msg to local members; one whose mailbox is full is
// stopped with ExitOverflow (its client resumes with "since") rather than
// silently missing the message.
func deliverLocal(process gen.Process, pids []etf.Pid, msg etf.Term) {
	for _, pid := range pids {
		if err := process.Send(pid, msg); err != nil && errors.Is(err, lib.ErrProcessMailboxFull) {
			if p := process.ProcessByPid(pid); p != nil {
				_ = p.Exit(ExitOverflow)
			}
		}
	}
}
