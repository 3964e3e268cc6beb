package board

import (
	"github.com/ergo-services/ergo/etf"
)

// The internal API of boards, as messages between processes. A session
// (or any member process) locates a board through the node's router, then
// talks to the board actor directly and monitors it. Every request carries a
// Tag the sender chooses; the answer echoes it.

// RouterName is the registered name of each node's board router.
const RouterName = "tavern_boards"

// Locate asks the router for the actor of a board, starting it if needed.
// Answered with Located or Failed to ReplyTo.
type Locate struct {
	Board   string
	ReplyTo etf.Pid
	Tag     uint64
}

// Located tells where a board's actor runs.
type Located struct {
	Board string
	Pid   etf.Pid
	Tag   uint64
}

// Join makes Member a member of the board: it will receive Event and
// Presence messages. Answered with Joined or Failed. Since < 0 means "send
// the snapshot". Quiet marks a transparent re-join after the board
// restarted: other members are not told of it.
type Join struct {
	Member etf.Pid
	User   string
	Since  int64
	Quiet  bool
	Tag    uint64
}

// Joined answers Join. Seq is the last op the member now has: either
// Snapshot (whole state at Seq) or Replay (the ev frames after Since, in
// order) is set, never both. Users is the presence list after the join.
type Joined struct {
	Board    string
	Actor    etf.Pid
	Seq      int64
	Snapshot []byte
	Replay   [][]byte
	Users    []string
	Tag      uint64
}

// Leave ends a membership. It has no answer.
type Leave struct {
	Member etf.Pid
}

// Op submits an op. Answered with Ack or Failed.
type Op struct {
	Member etf.Pid
	User   string
	OpID   string
	Op     []byte
	Tag    uint64
}

// Ack says the op is durable at Seq. Dup: it was accepted before.
type Ack struct {
	Board string
	OpID  string
	Seq   int64
	Dup   bool
	Tag   uint64
}

// Failed answers any request that did not succeed, with a protocol error
// code (bad_op, not_found, not_joined, unavailable, internal, ...).
type Failed struct {
	Board string
	Code  string
	Msg   string
	Tag   uint64
}

// Event is one committed op, as the wire frame every member writes.
type Event struct {
	Board string
	Seq   int64
	Frame []byte
}

// Presence is a change of a board's users.
type Presence struct {
	Board  string
	Joins  []string
	Leaves []string
}

// Protocol error codes the board answers with (PROTOCOL.md).
const (
	CodeBadOp       = "bad_op"
	CodeNotFound    = "not_found"
	CodeNotJoined   = "not_joined"
	CodeUnavailable = "unavailable"
	CodeBadRequest  = "bad_request"
	CodeInternal    = "internal"
)
