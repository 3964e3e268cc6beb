package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
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

// inbound is one client message, decoded by the reader (req or err set).
type inbound struct {
	req *wire.Request
	err *wire.Error
	at  time.Time
}

// connEnded tells the session its connection is closed.
type connEnded struct{}

// Messages a session sends itself.
type (
	helloTimeout struct{}
	expireTick   struct{}
)

type opKey struct{ board, id string }

type sessionState struct {
	hub *hub
	c   *conn

	user     string
	allowAll bool
	allowed  []string // board ids the token allows, sorted
	member   *board.Member

	lim     *rate.Limiter
	limGen  uint64
	opsSent map[opKey]time.Time // ops waiting for their ack, for the latency metric
	ticking bool
	joins   map[string]struct{} // boards asked for, to list the joined ones

	helloCancel gen.CancelFunc
}

// sessionMailbox is the size of a session's mailbox: board events, presence
// and replies queue there while the session copies them to its client's
// queue. A board that finds it full drops the member, which closes its
// client with 1013 (ExitOverflow). Ergo allocates three buffers of this many
// 48-byte slots per process, so it is also most of a session's idle memory.
const sessionMailbox = 256

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
	st.handle(process, in)
	return nil, gen.DirectStatusOK
}

func (s *session) HandleInfo(process *gen.ServerProcess, message etf.Term) gen.ServerStatus {
	st := process.State.(*sessionState)
	switch message.(type) {
	case helloTimeout:
		if st.member == nil {
			st.c.Send(wire.ErrorMsg(wire.NewError(wire.Ref{}, wire.CodeUnauthorized, "no hello in time")))
			st.c.Close(wire.ClosePolicy, "no hello in time")
		}
		return gen.ServerStatusOK
	case expireTick:
		st.ticking = false
		st.expire(process)
		return gen.ServerStatusOK
	}
	if st.member == nil || !st.member.Handle(process, message) {
		return gen.ServerStatusOK
	}
	switch m := message.(type) {
	case board.Ack:
		k := opKey{m.Board, m.OpID}
		if t, ok := st.opsSent[k]; ok {
			metrics.AckLatency.Observe(time.Since(t).Seconds())
			delete(st.opsSent, k)
		}
	case board.Joined, board.Failed, gen.MessageDown:
		st.refreshBoards()
	}
	return gen.ServerStatusOK
}

func (s *session) Terminate(process *gen.ServerProcess, reason string) {
	st, ok := process.State.(*sessionState)
	if !ok {
		return
	}
	st.c.sessionTerminating()
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
			st.joins = make(map[string]struct{})
		}
		st.joins[req.Board] = struct{}{}
		st.member.Join(process, req.Board, since, ref)
	case wire.TypeLeave:
		st.member.Leave(process, req.Board)
		delete(st.joins, req.Board)
		st.refreshBoards()
		st.send(wire.Left(ref, req.Board))
	case wire.TypeOp:
		if !st.allowOp() {
			st.sendErr(req.Errorf(wire.CodeRateLimited, "op: more than %s ops per second", fmtRate(st.lim.Limit())))
			return
		}
		if st.member.Joined(req.Board) {
			if st.opsSent == nil {
				st.opsSent = make(map[opKey]time.Time)
			}
			st.opsSent[opKey{req.Board, req.ID}] = in.at
			if !st.ticking {
				st.ticking = true
				process.SendAfter(process.Self(), expireTick{}, time.Second)
			}
		}
		st.member.Op(process, req.Board, req.ID, req.Op, ref)
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
	st.member = board.NewMember(id.user, st.c, set.opTimeout)
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
	keep := st.hub.set.opTimeout + 2*time.Second
	for k, t := range st.opsSent {
		if now.Sub(t) > keep {
			delete(st.opsSent, k)
		}
	}
	if len(st.opsSent) > 0 {
		st.ticking = true
		process.SendAfter(process.Self(), expireTick{}, time.Second)
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

func fmtRate(l rate.Limit) string {
	return fmt.Sprintf("%g", float64(l))
}
