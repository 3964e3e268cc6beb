package board

import (
	"encoding/binary"
	"errors"

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
	// Hops counts forwards between routers: a forwarded Locate is served
	// where it lands, so two nodes whose views of the cluster differ for
	// a moment cannot bounce it (the epoch fence keeps one owner).
	Hops int
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
// order, packed by PackFrames) is set, never both; a join with nothing to
// replay has neither and Replayed true. Users is the presence list.
type Joined struct {
	Board    string
	Actor    etf.Pid
	Seq      int64
	Snapshot []byte
	Replay   []byte
	Replayed bool
	Users    Names
	Tag      uint64
}

// PackFrames packs frames into one byte slice, each behind its length as
// a uvarint: ETF carries a list of binaries badly, one binary well.
func PackFrames(frames [][]byte) []byte {
	n := 0
	for _, f := range frames {
		n += len(f) + binary.MaxVarintLen32
	}
	out := make([]byte, 0, n)
	for _, f := range frames {
		out = binary.AppendUvarint(out, uint64(len(f)))
		out = append(out, f...)
	}
	return out
}

// UnpackFrames is the inverse of PackFrames.
func UnpackFrames(b []byte) ([][]byte, error) {
	var frames [][]byte
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return nil, errors.New("board: malformed packed frames")
		}
		frames = append(frames, b[k:k+int(n)])
		b = b[k+int(n):]
	}
	return frames, nil
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
	Feed  uint64 // counted on the member's Feed of this id (0: none)
}

// Events is several committed ops in a row, First first, as ev frames
// packed by PackFrames: a busy board sends one message per commit, not
// one per op.
type Events struct {
	Board  string
	First  int64
	Frames []byte
	Feed   uint64 // as in Event
}

// Presence is a change of a board's users.
type Presence struct {
	Board  string
	Joins  Names
	Leaves Names
	Feed   uint64 // as in Event
}

// Names is named so that ETF can carry it inside registered structs (it
// refuses unnamed slices other than []byte).
type Names []string

// LocalIDs lists processes of the node a message is sent to, as pairs of
// pid ID and creation: ETF cannot carry a slice of pids in a struct, and
// the node is the receiver's own.
type LocalIDs []uint64

// ToLocalIDs packs pids of one node.
func ToLocalIDs(pids []etf.Pid) LocalIDs {
	out := make(LocalIDs, 0, 2*len(pids))
	for _, p := range pids {
		out = append(out, p.ID, uint64(p.Creation))
	}
	return out
}

// Pids unpacks them as pids of node.
func (l LocalIDs) Pids(node string) []etf.Pid {
	out := make([]etf.Pid, 0, len(l)/2)
	for i := 0; i+1 < len(l); i += 2 {
		out = append(out, etf.Pid{Node: etf.Atom(node), ID: l[i], Creation: uint32(l[i+1])})
	}
	return out
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
