package board

import (
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/tavernhq/tavern/apps/gateway/wire"
)

// Output is where a member writes its client's frames. Send returns false
// when the client's outbound queue is full; the member then closes it.
type Output interface {
	Send(frame []byte) bool
	Close(code int, reason string)
}

// OpTracker is an Output that follows its ops until their ack: Member
// tells it when an op was answered with an error instead, so it waits for
// no ack of that op (its ev may still come: a retry gets "dup":true).
type OpTracker interface {
	OpFailed(board, opID string)
}

// opError answers an op with an error frame; no ack follows.
func (m *Member) opError(board, opID string, ref wire.Ref, code, msg string) {
	if t, ok := m.Out.(OpTracker); ok {
		t.OpFailed(board, opID)
	}
	m.Out.Send(wire.ErrorMsg(&wire.Error{Code: code, Msg: msg, Ref: ref.S, HasRef: ref.OK}))
}

// Member is the board side of one client session: it runs inside the
// session's process, joins boards through the router, tracks each
// board's last delivered seq, and keeps the client's stream gap-free:
// duplicates are dropped, a gap or a restarted board triggers a quiet
// re-join from the last seq, and what cannot be mended closes the client
// with 1013 so it resumes with "since".
type Member struct {
	User     string
	Out      Output
	OpTimout time.Duration // an op with no answer by then is "unavailable"
	// Direct, if set, is the client's connection itself, safe for
	// concurrent use: boards on this node write events through it (Feed).
	Direct Output

	held bool // the session holds frames back (SetHeld): feeds stay closed

	proc    gen.Process // the session's process, for timers
	boards  map[string]*membership
	byActor map[etf.Pid]*membership
	reqs    map[uint64]*request
	nextTag uint64
}

type memberPhase int

const (
	locating memberPhase = iota
	joining
	joined
)

type membership struct {
	board   string
	phase   memberPhase
	actor   etf.Pid
	monitor etf.Ref
	feed    *Feed // lastSeq: the last event the client has
	local   bool  // the actor is on this node and has the feed
	quiet   bool  // the current join is a transparent re-join
	tries   int   // quiet re-joins that failed in a row
}

type requestKind int

const (
	reqLocate requestKind = iota
	reqJoin
	reqOp
)

type request struct {
	kind  requestKind
	board string
	ref   wire.Ref
	since int64
	opID  string
	sent  time.Time
}

// NewMember returns a Member for a client that said hello as user.
func NewMember(user string, out Output, opTimeout time.Duration) *Member {
	return &Member{
		User: user, Out: out, OpTimout: opTimeout,
		boards:  make(map[string]*membership),
		byActor: make(map[etf.Pid]*membership),
		reqs:    make(map[uint64]*request),
	}
}

func (m *Member) tag(r *request) uint64 {
	m.nextTag++
	r.sent = time.Now()
	m.reqs[m.nextTag] = r
	return m.nextTag
}

// Join starts a join (since < 0: whole snapshot). The answer reaches the
// client when the board replies.
func (m *Member) Join(p gen.Process, board string, since int64, ref wire.Ref) {
	m.proc = p
	ms, ok := m.boards[board]
	if ok && ms.phase == joined {
		ms.quiet = false
		ms.feed.setOpen(false) // until the answer is written
		m.sendJoin(p, ms, &request{kind: reqJoin, board: board, ref: ref, since: since})
		return
	}
	// A join already under way is superseded: its answers are dropped.
	for tag, r := range m.reqs {
		if r.board == board && r.kind != reqOp {
			delete(m.reqs, tag)
		}
	}
	if !ok {
		ms = &membership{board: board, feed: newFeed(m.Direct)}
		m.boards[board] = ms
	}
	ms.phase = locating
	ms.quiet = false
	m.locate(p, ms, &request{kind: reqLocate, board: board, ref: ref, since: since})
}

func (m *Member) locate(p gen.Process, ms *membership, r *request) {
	r.kind = reqLocate
	tag := m.tag(r)
	if err := p.Send(RouterName, Locate{Board: ms.board, ReplyTo: p.Self(), Tag: tag}); err != nil {
		delete(m.reqs, tag)
		m.fail(ms, r, CodeUnavailable, "join: board router unavailable")
	}
}

func (m *Member) sendJoin(p gen.Process, ms *membership, r *request) {
	r.kind = reqJoin
	tag := m.tag(r)
	join := Join{Member: p.Self(), User: m.User, Since: r.since, Quiet: ms.quiet, Tag: tag}
	ms.local = m.Direct != nil && string(ms.actor.Node) == p.NodeName()
	var err error
	if ms.local {
		err = p.Send(ms.actor, JoinLocal{Join: join, Feed: ms.feed})
	} else {
		err = p.Send(ms.actor, join)
	}
	if err != nil {
		delete(m.reqs, tag)
		m.fail(ms, r, CodeUnavailable, "join: board unavailable")
	}
}

// rejoinTries bounds the quiet re-join of a moved or restarted board
// (about 6 s in all) before the client is closed to resume by itself.
const rejoinTries = 6

// retryRejoin is the member's own timer for another quiet re-join.
type retryRejoin struct{ Board string }

// fail answers a join that could not be made. A failed quiet re-join is
// tried again a few times (the board may be moving between nodes), then
// the client is closed so it resumes with "since": never a gap.
func (m *Member) fail(ms *membership, r *request, code, msg string) {
	if ms.quiet {
		if ms.tries < rejoinTries && m.proc != nil {
			ms.tries++
			ms.phase = locating
			m.proc.SendAfter(m.proc.Self(), retryRejoin{Board: ms.board}, time.Duration(50<<ms.tries)*time.Millisecond)
			return
		}
		m.Out.Close(wire.CloseTryAgain, "board unavailable; rejoin with since")
		return
	}
	m.forget(ms)
	m.Out.Send(wire.ErrorMsg(&wire.Error{Code: code, Msg: msg, Ref: r.ref.S, HasRef: r.ref.OK}))
}

func (m *Member) forget(ms *membership) {
	ms.feed.setOpen(false)
	delete(m.boards, ms.board)
	if ms.actor != (etf.Pid{}) && m.byActor[ms.actor] == ms {
		delete(m.byActor, ms.actor)
	}
}

// Joined reports whether the client has joined board.
func (m *Member) Joined(board string) bool {
	ms, ok := m.boards[board]
	return ok && ms.phase == joined
}

// Op sends an op to a joined board; errors are answered to the client.
func (m *Member) Op(p gen.Process, board, opID string, op []byte, ref wire.Ref) {
	ms, ok := m.boards[board]
	if !ok || ms.phase != joined {
		code, msg := CodeNotJoined, "op: board "+board+" not joined"
		if ok {
			code, msg = CodeUnavailable, "op: board "+board+" is rejoining"
		}
		m.opError(board, opID, ref, code, msg)
		return
	}
	r := &request{kind: reqOp, board: board, ref: ref, opID: opID}
	tag := m.tag(r)
	if err := p.Send(ms.actor, Op{Member: p.Self(), User: m.User, OpID: opID, Op: op, Tag: tag}); err != nil {
		delete(m.reqs, tag)
		m.opError(board, opID, ref, CodeUnavailable, "op: board busy")
	}
}

// Leave ends a membership (answered "left" by the caller in any case).
func (m *Member) Leave(p gen.Process, board string) {
	ms, ok := m.boards[board]
	if !ok {
		return
	}
	if ms.actor != (etf.Pid{}) {
		_ = p.Send(ms.actor, Leave{Member: p.Self()})
		p.DemonitorProcess(ms.monitor)
	}
	m.forget(ms)
	// Answers still on their way are for a board the client left.
	for tag, r := range m.reqs {
		if r.board == board && r.kind != reqOp {
			delete(m.reqs, tag)
		}
	}
}

// LeaveAll ends every membership (the session is closing).
func (m *Member) LeaveAll(p gen.Process) {
	for b := range m.boards {
		m.Leave(p, b)
	}
}

// Handle takes a message the session process received; it reports false
// for messages that are not the board's business.
func (m *Member) Handle(p gen.Process, message etf.Term) bool {
	m.proc = p
	switch msg := message.(type) {
	case retryRejoin:
		if ms, ok := m.boards[msg.Board]; ok && ms.quiet && ms.phase == locating {
			m.locate(p, ms, &request{kind: reqLocate, board: ms.board, since: ms.feed.last()})
		}
	case Located:
		r, ok := m.take(msg.Tag)
		if !ok {
			return true
		}
		ms, ok := m.boards[r.board]
		if !ok || ms.phase != locating {
			return true
		}
		ms.actor = msg.Pid
		ms.monitor = p.MonitorProcess(msg.Pid)
		m.byActor[msg.Pid] = ms
		ms.phase = joining
		m.sendJoin(p, ms, r)
	case Joined:
		r, ok := m.take(msg.Tag)
		if !ok {
			return true
		}
		ms, ok := m.boards[r.board]
		if !ok || ms.actor != msg.Actor {
			return true
		}
		m.joined(ms, r, msg)
	case Ack:
		r, ok := m.take(msg.Tag)
		if !ok {
			return true
		}
		m.Out.Send(wire.Ack(r.ref, msg.Board, msg.OpID, msg.Seq, msg.Dup))
	case Failed:
		r, ok := m.take(msg.Tag)
		if !ok {
			return true
		}
		if r.kind == reqOp {
			m.opError(r.board, r.opID, r.ref, msg.Code, msg.Msg)
			return true
		}
		if ms, ok := m.boards[r.board]; ok {
			m.fail(ms, r, msg.Code, msg.Msg)
		}
	case Event:
		defer m.fed(msg.Board, msg.Feed)
		ms, ok := m.boards[msg.Board]
		if !ok || ms.phase != joined {
			return true // before joined: the join's answer covers it
		}
		switch dup, next := ms.feed.advance(msg.Seq); {
		case dup:
			// already delivered (a replay overlapped)
		case next:
			if !m.Out.Send(msg.Frame) {
				m.Out.Close(wire.CloseTryAgain, "client too slow")
			}
		default:
			// A gap: something was lost on the way. Mend it from the board.
			m.rejoin(p, ms)
		}
	case Events:
		defer m.fed(msg.Board, msg.Feed)
		frames, err := UnpackFrames(msg.Frames)
		if err != nil {
			m.Out.Close(wire.CloseTryAgain, "board sent malformed events")
			return true
		}
		for i, f := range frames {
			m.Handle(p, Event{Board: msg.Board, Seq: msg.First + int64(i), Frame: f})
		}
	case Presence:
		defer m.fed(msg.Board, msg.Feed)
		ms, ok := m.boards[msg.Board]
		if !ok || ms.phase != joined {
			return true
		}
		if !m.Out.Send(wire.PresenceDelta(msg.Board, msg.Joins, msg.Leaves)) {
			m.Out.Close(wire.CloseTryAgain, "client too slow")
		}
	case gen.MessageDown:
		ms, ok := m.byActor[msg.Pid]
		if !ok {
			return false
		}
		delete(m.byActor, msg.Pid)
		m.actorDown(p, ms)
	default:
		return false
	}
	return true
}

func (m *Member) take(tag uint64) (*request, bool) {
	r, ok := m.reqs[tag]
	if ok {
		delete(m.reqs, tag)
	}
	return r, ok
}

func (m *Member) joined(ms *membership, r *request, msg Joined) {
	replay, err := UnpackFrames(msg.Replay)
	if err != nil {
		m.Out.Close(wire.CloseTryAgain, "board sent a malformed replay")
		return
	}
	if ms.quiet {
		// A transparent re-join: only what the client has not seen.
		if !msg.Replayed {
			m.Out.Close(wire.CloseTryAgain, "board restarted; rejoin with since")
			return
		}
		ms.phase = joined
		ms.quiet = false
		ms.tries = 0
		m.replay(ms, replay, msg.Seq)
		m.syncFeed(ms)
		return
	}
	ms.phase = joined
	var snap []byte
	if !msg.Replayed {
		snap = msg.Snapshot
		if len(snap) == 0 {
			snap = []byte(`{"entities":[]}`)
		}
	}
	if !m.Out.Send(wire.Joined(r.ref, msg.Board, msg.Seq, snap)) {
		m.Out.Close(wire.CloseTryAgain, "client too slow")
		return
	}
	ms.feed.setLast(msg.Seq - int64(len(replay)))
	if snap != nil {
		ms.feed.setLast(msg.Seq)
	}
	m.replay(ms, replay, msg.Seq)
	if !m.Out.Send(wire.PresenceFull(msg.Board, msg.Users)) {
		m.Out.Close(wire.CloseTryAgain, "client too slow")
		return
	}
	m.syncFeed(ms)
}

// replay writes the frames the client does not have yet; the feed is
// closed meanwhile (the member is joining), so lastSeq is the member's.
func (m *Member) replay(ms *membership, frames [][]byte, seq int64) {
	last := ms.feed.last()
	defer func() { ms.feed.setLast(last) }()
	first := seq - int64(len(frames)) + 1
	for i, f := range frames {
		s := first + int64(i)
		if s <= last {
			continue
		}
		if !m.Out.Send(f) {
			m.Out.Close(wire.CloseTryAgain, "client too slow")
			return
		}
		last = s
	}
	last = max(last, seq)
}

// rejoin mends a gap or a restarted board: a quiet join from lastSeq.
func (m *Member) rejoin(p gen.Process, ms *membership) {
	ms.quiet = true
	ms.phase = joining
	ms.feed.setOpen(false) // first: lastSeq stops moving
	m.sendJoin(p, ms, &request{kind: reqJoin, board: ms.board, since: ms.feed.last()})
}

// actorDown: the board's actor stopped (crash, passivation race, move).
// Ops waiting on it are answered "unavailable" (a retry with the same id
// is safe); the membership is re-established from lastSeq.
func (m *Member) actorDown(p gen.Process, ms *membership) {
	var clientJoin *request // a join of the client still unanswered
	for tag, r := range m.reqs {
		if r.board != ms.board {
			continue
		}
		delete(m.reqs, tag)
		switch {
		case r.kind == reqOp:
			m.opError(r.board, r.opID, r.ref, CodeUnavailable, "op: board restarting; retry with the same id")
		case !ms.quiet:
			clientJoin = r
		}
	}
	ms.actor = etf.Pid{}
	ms.local = false
	ms.feed.setOpen(false)
	wasJoined := ms.phase == joined || ms.quiet
	ms.phase = locating
	ms.quiet = wasJoined
	if clientJoin != nil {
		// The client's own join, with its own since and ref, goes on at
		// the board's next actor; it answers the client as asked.
		ms.quiet = false
		m.locate(p, ms, clientJoin)
		return
	}
	m.locate(p, ms, &request{kind: reqLocate, board: ms.board, since: ms.feed.last()})
}

// Pending reports whether a join or an op still waits for the board's
// answer: the session keeps its expiry timer running while it does.
func (m *Member) Pending() bool { return len(m.reqs) > 0 }

// Expire answers ops that got no answer within OpTimeout (a message lost
// between nodes) with "unavailable": the client retries with the same id.
func (m *Member) Expire(now time.Time) {
	for tag, r := range m.reqs {
		if now.Sub(r.sent) <= m.OpTimout {
			continue
		}
		delete(m.reqs, tag)
		if r.kind == reqOp {
			m.opError(r.board, r.opID, r.ref, CodeUnavailable, "op: no answer in time; retry with the same id")
			continue
		}
		// A locate or join lost between nodes.
		if ms, ok := m.boards[r.board]; ok && ms.phase != joined {
			m.fail(ms, r, CodeUnavailable, "join: no answer in time")
		}
	}
}

// syncFeed opens ms's feed when the board may write to the client itself:
// joined, at an actor that has the feed, nothing held back by the session.
func (m *Member) syncFeed(ms *membership) {
	ms.feed.setOpen(ms.phase == joined && !ms.quiet && ms.local && !m.held)
}

// fed: a message counted on a feed (id != 0) has been handled.
func (m *Member) fed(board string, id uint64) {
	if ms, ok := m.boards[board]; ok && id != 0 && ms.feed.id == id {
		ms.feed.done(1)
	}
}

// Released makes up for counted messages that never arrived (dropped by
// gateway_overflow; their boards are mended).
func (m *Member) Released(refs []FeedRef) {
	for _, r := range refs {
		m.fed(r.Board, r.Feed)
	}
}

// SetHeld tells Member that its session holds the client's frames back
// (an ev waits for its ack), or no longer does: boards must not write
// past the hold, so every feed closes until it ends.
func (m *Member) SetHeld(held bool) {
	if m.held == held {
		return
	}
	m.held = held
	for _, ms := range m.boards {
		m.syncFeed(ms)
	}
}
