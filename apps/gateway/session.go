package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"golang.org/x/time/rate"

	"github.com/tavernhq/tavern/apps/board"
	"github.com/tavernhq/tavern/apps/gateway/wire"
	"github.com/tavernhq/tavern/internal/metrics"
)

// session is the process of one client connection, started under
// session_sup once the WebSocket is open. It authenticates the client,
// applies the op rate limit, answers join/op/leave/ping through
// board.Member, and receives the boards' messages in HandleInfo. Its
// client's frames go out through the connection's queue, never blocking.
type session struct {
	gen.Server
}

// InlineCallback runs a board's acks and events, most of a session's
// messages, and the client's ops and pings on its loop goroutine
// (gen.InlineCallbacks, a third_party/ergo patch): they never Call and
// their callbacks are shallow. The rest (joins, the client's other
// frames) go on a goroutine each as before: the loop goroutine would keep
// the stack of a deep callback, about 4 KB per idle client in make bench.
func (*session) InlineCallback(m interface{}) bool {
	switch m := m.(type) {
	case board.Event, board.Events, board.Ack:
		return true
	case inbound:
		return m.req != nil && (m.req.Type == wire.TypeOp || m.req.Type == wire.TypePing)
	}
	return false
}

// inbound is one client message, decoded by the reader (req or err set).
type inbound struct {
	req *wire.Request
	err *wire.Error
	at  time.Time
}

// testHookInbound, set by tests only, runs before a session handles a
// decoded client message.
var testHookInbound atomic.Pointer[func(*wire.Request)]

// testHookHold, set by tests only, runs when a session starts holding
// frames back (sessionOut).
var testHookHold atomic.Pointer[func()]

// connEnded tells the session its connection is closed.
type connEnded struct{}

// Messages a session sends itself.
type (
	helloTimeout struct{}
	expireTick   struct{}
)

type opKey struct{ board, id string }

// waitingOp is an op held until its board is joined.
type waitingOp struct {
	req *wire.Request
	at  time.Time
}

// maxWaiting bounds the ops held for boards being joined; beyond it they
// go to Member, which answers "unavailable".
const maxWaiting = 1024

// opSent is an op of this connection waiting for its ack.
type opSent struct {
	at   time.Time // it reached the session (for the latency metric)
	sent time.Time // it went to the board (after Member's own clock)
}

type sessionState struct {
	hub *hub
	c   *conn

	user     string
	allowAll bool
	allowed  []string // board ids the token allows, sorted
	member   *board.Member

	lim     *rate.Limiter
	limGen  uint64
	opsSent map[opKey]opSent // ops waiting for their ack

	// sessionOut's hold: frames held back until the acks in awaiting are
	// written; acking is the op whose ack Member is writing, if any.
	hold      [][]byte
	awaiting  map[opKey]struct{}
	holdSince time.Time
	acking    opKey
	userEnc   []byte // `,"user":<user as JSON>,"id":`, to spot our evs
	ticking   bool
	joins     map[string]bool // boards asked for: true once joined

	// Ops for a board being (re)joined wait for it: Member would answer
	// them "unavailable" (rejoining).
	waiting  map[string][]waitingOp
	nWaiting int

	mendLater    map[string]struct{} // boards to mend once their join is answered
	presenceLost map[string]struct{} // boards to send the whole presence of, then

	helloCancel gen.CancelFunc
}

// sessionMailbox is the size of a session's mailbox: board events, presence
// and replies queue there while the session copies them to its client's
// queue. What does not fit goes to gateway_overflow, which has it mended or
// redelivered (see overflow). Ergo allocates three buffers of this many
// 48-byte slots per process (18 KiB at 128), so it is a good part of a
// session's idle memory (about 68 KiB in all, TestIdleMemory).
const sessionMailbox = 128

// sessionDirectbox: the reader waits on each Direct, so one slot is in use
// per connection; the rest absorbs the gateway's own requests.
const sessionDirectbox = 4

func (s *session) Init(process *gen.ServerProcess, args ...etf.Term) error {
	h := args[0].(*hub)
	c := args[1].(*conn)
	st := &sessionState{hub: h, c: c}
	process.State = st
	if d := h.set.helloTimeout; d > 0 {
		st.helloCancel = process.SendAfter(process.Self(), helloTimeout{}, d)
	}
	return nil
}

func (s *session) HandleDirect(process *gen.ServerProcess, ref etf.Ref, message interface{}) (interface{}, gen.DirectStatus) {
	if _, ok := message.(connEnded); ok {
		// The connection is over: stop. Killing itself from inside a
		// callback is the one way to stop a process that cannot race with
		// its cleanup in Ergo 2.2.4.
		process.Kill()
		return nil, gen.DirectStatusOK
	}
	st := process.State.(*sessionState)
	in, ok := message.(inbound)
	if !ok {
		return nil, gen.DirectStatusOK
	}
	if st.c.isClosing() {
		return nil, gen.DirectStatusOK
	}
	if h := testHookInbound.Load(); h != nil && in.req != nil {
		(*h)(in.req)
	}
	st.handle(process, in)
	st.drain(process)
	return nil, gen.DirectStatusOK
}

// drainMax is how many more queued messages HandleInfo handles in one go.
const drainMax = 256

// HandleInfo takes the boards' messages and the session's own timers.
//
// Ergo runs each callback in a new goroutine, which makes a session slower
// than a board sending it events; a board that finds a member's mailbox
// full drops it (1013). So after one message HandleInfo takes what else
// waits in the mailbox, up to drainMax, and handles it the same way. Only
// plain messages reach a session's mailbox: nobody Calls or Casts a
// session, and its Direct requests arrive on another channel.
func (s *session) HandleInfo(process *gen.ServerProcess, message etf.Term) gen.ServerStatus {
	st := process.State.(*sessionState)
	st.info(process, message)
	st.drain(process)
	return gen.ServerStatusOK
}

// drain handles up to drainMax messages waiting in the mailbox.
func (st *sessionState) drain(process *gen.ServerProcess) {
	mailbox := process.ProcessChannels().Mailbox
	for range drainMax {
		select {
		case m := <-mailbox:
			st.info(process, m.Message)
		default:
			return
		}
	}
}

func (st *sessionState) info(process *gen.ServerProcess, message etf.Term) {
	switch message.(type) {
	case helloTimeout:
		if st.member == nil {
			metrics.ConnectionsDropped.WithLabelValues("hello_timeout").Inc()
			st.c.Send(wire.ErrorMsg(wire.NewError(wire.Ref{}, wire.CodeUnauthorized, "no hello in time")))
			st.c.Close(wire.ClosePolicy, "no hello in time")
		}
		return
	case expireTick:
		st.ticking = false
		st.expire(process)
		return
	case redeliver:
		r := message.(redeliver)
		if st.member != nil {
			st.member.Released(r.Released)
		}
		for _, m := range r.Msgs {
			st.info(process, m)
		}
		st.lostPresence(r.Presence)
		st.mend(process, r.Boards)
		return
	}
	if st.member == nil {
		return
	}
	_, isJoin := message.(board.Joined)
	if isJoin {
		st.c.setBurst(true)
	}
	if a, ok := message.(board.Ack); ok {
		st.acking = opKey{a.Board, a.OpID}
	}
	handled := st.member.Handle(process, message)
	st.acking = opKey{}
	if st.member.Pending() {
		st.tick(process) // e.g. a quiet re-join that mends a gap
	}
	if isJoin {
		st.c.setBurst(false)
	}
	if !handled {
		return
	}
	switch m := message.(type) {
	case board.Joined:
		st.joinAnswered(process, m)
		if st.member.Joined(m.Board) {
			if _, ok := st.joins[m.Board]; ok {
				st.joins[m.Board] = true
			}
			st.flushWaiting(process, m.Board)
		}
		st.refreshBoards()
	case board.Failed:
		if !st.member.Joined(m.Board) {
			if was, ok := st.joins[m.Board]; ok && !was {
				delete(st.joins, m.Board) // the first join failed: Member forgot it
			}
			st.flushWaiting(process, m.Board)
		}
		st.refreshBoards()
	case gen.MessageDown:
		st.refreshBoards()
	}
}

func (s *session) Terminate(process *gen.ServerProcess, reason string) {
	st, ok := process.State.(*sessionState)
	if !ok {
		return
	}
	st.c.sessionTerminating()
	defer func() { st.log().Debug("session ended", "reason", reason) }()
	// Ergo cancels a process's context when it delivers an exit, so the
	// reason may read "kill" while the real one waits in the channel.
	if reason == "kill" {
		select {
		case ex := <-process.ProcessChannels().GracefulExit:
			reason = ex.Reason
		default:
		}
	}
	if st.helloCancel != nil {
		st.helloCancel()
	}
	if st.member != nil {
		st.member.LeaveAll(process)
	}
	switch reason {
	case board.ExitOverflow:
		st.c.Close(wire.CloseTryAgain, "client too slow; rejoin with since")
	case "normal", "shutdown", "kill":
		st.c.Close(closeGoingAway, "server going away")
	default:
		st.log().Error("session crashed", "reason", reason)
		st.c.Close(wire.CloseTryAgain, "session failed; reconnect")
	}
}

// closeGoingAway is RFC 6455's 1001: the server is stopping.
const closeGoingAway = 1001

func (st *sessionState) log() *slog.Logger {
	return st.hub.log.With("session", strconv.FormatUint(st.c.id, 10), "user", st.user)
}

func (st *sessionState) send(frame []byte) {
	if !st.c.Send(frame) {
		st.c.Close(wire.CloseTryAgain, "client too slow")
	}
}

func (st *sessionState) sendErr(e *wire.Error) { st.send(wire.ErrorMsg(e)) }

func (st *sessionState) handle(process *gen.ServerProcess, in inbound) {
	if st.member == nil {
		if in.err == nil && in.req.Type == wire.TypeHello {
			st.hello(process, in.req)
			return
		}
		ref := wire.Ref{}
		if in.err != nil {
			ref = in.err.ReplyRef()
		} else {
			ref = in.req.ReplyRef()
		}
		st.unauthorized(ref, "hello first")
		return
	}
	if in.err != nil {
		st.sendErr(in.err)
		return
	}
	req := in.req
	ref := req.ReplyRef()
	switch req.Type {
	case wire.TypeHello:
		st.sendErr(req.Errorf(wire.CodeBadRequest, "hello: already said hello"))
	case wire.TypePing:
		st.send(wire.Pong(ref))
	case wire.TypeJoin:
		if !st.mayJoin(req.Board) {
			st.sendErr(req.Errorf(wire.CodeForbidden, "join: board %s not allowed by the token", req.Board))
			return
		}
		since := int64(-1)
		if req.HasSince {
			since = req.Since
		}
		if st.joins == nil {
			st.joins = make(map[string]bool)
		}
		if _, ok := st.joins[req.Board]; !ok {
			st.joins[req.Board] = false
		}
		st.member.Join(process, req.Board, since, ref)
		st.tick(process) // a join lost between nodes is answered in time
	case wire.TypeLeave:
		st.member.Leave(process, req.Board)
		delete(st.joins, req.Board)
		st.flushWaiting(process, req.Board) // answered not_joined
		delete(st.mendLater, req.Board)
		delete(st.presenceLost, req.Board)
		st.refreshBoards()
		st.send(wire.Left(ref, req.Board))
	case wire.TypeOp:
		if !st.allowOp() {
			st.sendErr(req.Errorf(wire.CodeRateLimited, "op: more than %s ops per second", fmtRate(st.lim.Limit())))
			return
		}
		if !st.member.Joined(req.Board) && st.nWaiting < maxWaiting {
			if _, asked := st.joins[req.Board]; asked {
				if st.waiting == nil {
					st.waiting = make(map[string][]waitingOp)
				}
				st.waiting[req.Board] = append(st.waiting[req.Board], waitingOp{req: req, at: in.at})
				st.nWaiting++
				st.tick(process)
				return
			}
		}
		st.sendOp(process, req, in.at)
	}
}

// sendOp hands an op to Member, noting it to match its ack.
func (st *sessionState) sendOp(process *gen.ServerProcess, req *wire.Request, at time.Time) {
	if st.member.Joined(req.Board) {
		// Noted first: Member may answer it with an error at once (OpFailed).
		if st.opsSent == nil {
			st.opsSent = make(map[opKey]opSent)
		}
		st.opsSent[opKey{req.Board, req.ID}] = opSent{at: at, sent: time.Now()}
		st.tick(process)
	}
	st.member.Op(process, req.Board, req.ID, req.Op, req.ReplyRef())
}

// flushWaiting sends the ops waiting for board b; Member answers them if
// the board is still not joined.
func (st *sessionState) flushWaiting(process *gen.ServerProcess, b string) {
	ops, ok := st.waiting[b]
	if !ok {
		return
	}
	delete(st.waiting, b)
	st.nWaiting -= len(ops)
	for _, o := range ops {
		st.sendOp(process, o.req, o.at)
	}
}

// tick arms the expiry timer.
func (st *sessionState) tick(process *gen.ServerProcess) {
	if !st.ticking {
		st.ticking = true
		process.SendAfter(process.Self(), expireTick{}, time.Second)
	}
}

func (st *sessionState) unauthorized(ref wire.Ref, msg string) {
	st.c.Send(wire.ErrorMsg(wire.NewError(ref, wire.CodeUnauthorized, msg)))
	st.c.Close(wire.ClosePolicy, "unauthorized")
}

func (st *sessionState) hello(process *gen.ServerProcess, req *wire.Request) {
	id, err := st.hub.auth.authenticate(req, time.Now())
	if err != nil {
		st.log().Info("hello refused", "err", err)
		st.unauthorized(req.ReplyRef(), publicAuthMsg(err))
		return
	}
	if st.helloCancel != nil {
		st.helloCancel()
		st.helloCancel = nil
	}
	st.user = id.user
	st.allowAll, st.allowed = id.allowAll, id.boards
	set := st.hub.set
	enc := wire.Notice(id.user) // {"t":"notice","text":<user>}
	enc = enc[len(`{"t":"notice","text":`) : len(enc)-1]
	st.userEnc = append(append([]byte(`,"user":`), enc...), `,"id":`...)
	st.member = board.NewMember(id.user, sessionOut{st}, set.opTimeout)
	st.member.Direct = st.c
	r := st.hub.rate.Load()
	st.lim = rate.NewLimiter(rate.Limit(r.perSec), r.burst)
	st.limGen = r.gen
	st.c.welcome(id.user)
	st.send(wire.Welcome(req.ReplyRef(), id.user, process.NodeName(), wire.Limits{
		MaxFrame: set.maxFrame, OpsPerSec: r.perSec, OpsBurst: r.burst,
	}))
	st.log().Debug("client welcomed", "remote", st.c.remote)
}

func publicAuthMsg(err error) string {
	var pe publicError
	if errors.As(err, &pe) {
		return pe.public
	}
	return "bad credentials"
}

func (st *sessionState) mayJoin(boardID string) bool {
	if st.allowAll {
		return true
	}
	_, ok := slices.BinarySearch(st.allowed, boardID)
	return ok
}

// allowOp takes a token from the connection's bucket, following a rate
// changed at runtime (SetOpsRate).
func (st *sessionState) allowOp() bool {
	if r := st.hub.rate.Load(); r.gen != st.limGen {
		st.limGen = r.gen
		st.lim.SetLimit(rate.Limit(r.perSec))
		st.lim.SetBurst(r.burst)
	}
	return st.lim.Allow()
}

// expire answers ops that got no answer in time and forgets latencies of
// ops that will never be acked (failed ones).
func (st *sessionState) expire(process *gen.ServerProcess) {
	now := time.Now()
	if st.member != nil {
		st.member.Expire(now)
	}
	// Member has answered these "unavailable" (its clock started before
	// ours): their ack will not come.
	for k, o := range st.opsSent {
		if now.Sub(o.sent) > st.hub.set.opTimeout {
			delete(st.opsSent, k)
		}
	}
	for b, ops := range st.waiting {
		if now.Sub(ops[0].at) > st.hub.set.opTimeout {
			st.flushWaiting(process, b) // Member answers: the join takes too long
		}
	}
	if len(st.awaiting) > 0 && now.Sub(st.holdSince) > st.hub.set.opTimeout {
		st.log().Warn("an ack never came; closing", "ops", len(st.awaiting))
		st.c.Close(wire.CloseTryAgain, "ack lost; rejoin with since")
		st.hold, st.awaiting = nil, nil
	}
	if len(st.opsSent) > 0 || len(st.awaiting) > 0 || st.nWaiting > 0 || (st.member != nil && st.member.Pending()) {
		st.tick(process)
	} else {
		st.opsSent = nil
	}
}

// refreshBoards publishes the joined boards for Clients.
func (st *sessionState) refreshBoards() {
	var list []string
	for b := range st.joins {
		if st.member.Joined(b) {
			list = append(list, b)
		}
	}
	slices.Sort(list)
	st.c.setBoards(list)
}

// sessionOut is the session's board.Output: the connection, guarded so
// that the client never sees one of its ops' ev before the op's ack. The
// board sends the ack first, but an ack that overflowed the mailbox is
// redelivered late (see overflow), and one lost between nodes never comes:
// an ev of ours whose ack is pending starts a hold; the frames after it
// wait, in order, until the missing ack is written first. If it does not
// come within the op timeout the client is closed with 1013: it resumes
// with since and retries the op with the same id, answered with the
// original ack.
type sessionOut struct{ st *sessionState }

func (o sessionOut) Send(frame []byte) bool {
	st := o.st
	if k := st.acking; k.board != "" {
		// Member writes one frame for an Ack message: this is the ack.
		st.acking = opKey{}
		if sent, ok := st.opsSent[k]; ok {
			metrics.AckLatency.Observe(time.Since(sent.at).Seconds())
			delete(st.opsSent, k)
		}
		if _, ok := st.awaiting[k]; ok {
			// The missing ack: it goes ahead of what it held back.
			delete(st.awaiting, k)
			if !st.c.Send(frame) {
				return false
			}
			if len(st.awaiting) == 0 {
				return o.release()
			}
			return true
		}
	}
	holding := len(st.awaiting) > 0
	if holding || len(st.opsSent) > 0 {
		if b, id, ok := ownEvent(frame, st.userEnc); ok {
			k := opKey{b, id}
			if _, waiting := st.opsSent[k]; waiting {
				if st.awaiting == nil {
					st.awaiting = make(map[opKey]struct{})
				}
				if !holding {
					st.holdSince = time.Now()
					st.member.SetHeld(true) // boards write through the session until it ends
					if h := testHookHold.Load(); h != nil {
						(*h)()
					}
				}
				st.awaiting[k] = struct{}{}
				holding = true
			}
		}
	}
	if holding {
		// Bounded like the queue (a join's answer may be long), and in
		// time by the op timeout (expire).
		if len(st.hold) >= st.c.limit+maxBurst {
			return false
		}
		st.hold = append(st.hold, frame)
		return true
	}
	return st.c.Send(frame)
}

// release writes the frames held back, which may start another hold.
func (o sessionOut) release() bool {
	st := o.st
	held := st.hold
	st.hold, st.awaiting = nil, nil
	for _, f := range held {
		if !o.Send(f) {
			return false
		}
	}
	if len(st.awaiting) == 0 {
		st.member.SetHeld(false)
	}
	return true
}

func (o sessionOut) Close(code int, reason string) { o.st.c.Close(code, reason) }

// OpFailed: the op was answered with an error, so no ack will come. Its
// ev may have come already (the op became durable, the answer was lost
// with a crashed actor) and started a hold: that hold ends now.
func (o sessionOut) OpFailed(boardID, opID string) {
	st := o.st
	k := opKey{boardID, opID}
	delete(st.opsSent, k)
	if _, ok := st.awaiting[k]; ok {
		delete(st.awaiting, k)
		if len(st.awaiting) == 0 && !o.release() {
			st.c.Close(wire.CloseTryAgain, "client too slow")
		}
	}
}

var evPrefix = []byte(`{"t":"ev","board":"`)

// ownEvent reports whether frame is an ev (as wire.Event writes it) of the
// user whose encoded field is userEnc, with its board and op id.
func ownEvent(frame, userEnc []byte) (boardID, opID string, ok bool) {
	if !bytes.HasPrefix(frame, evPrefix) {
		return "", "", false
	}
	rest := frame[len(evPrefix):]
	i := bytes.IndexByte(rest, '"') // board ids need no escaping
	if i < 0 {
		return "", "", false
	}
	boardID = string(rest[:i])
	rest = rest[i+1:]
	if !bytes.HasPrefix(rest, []byte(`,"seq":`)) {
		return "", "", false
	}
	rest = rest[len(`,"seq":`):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	rest = rest[j:]
	if !bytes.HasPrefix(rest, userEnc) {
		return "", "", false
	}
	rest = rest[len(userEnc):]
	// rest starts with the id, a JSON string.
	end, esc := 1, false
	for ; end < len(rest); end++ {
		if rest[end] == '\\' {
			esc = true
			end++
			continue
		}
		if rest[end] == '"' {
			break
		}
	}
	if len(rest) == 0 || rest[0] != '"' || end >= len(rest) {
		return "", "", false
	}
	if !esc {
		return boardID, string(rest[1:end]), true
	}
	if err := json.Unmarshal(rest[:end+1], &opID); err != nil {
		return "", "", false
	}
	return boardID, opID, true
}

func fmtRate(l rate.Limit) string {
	return fmt.Sprintf("%g", float64(l))
}
