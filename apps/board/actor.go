package board

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"

	"github.com/tavernhq/tavern/apps/board/rules"
	"github.com/tavernhq/tavern/apps/gateway/wire"
	"github.com/tavernhq/tavern/apps/store"
	"github.com/tavernhq/tavern/internal/metrics"
)

// actor is one active board: it orders the board's ops, keeps its state,
// hands ops to the group-commit writer, and after each commit acks the
// senders and sends the events to the members, in seq order.
type actor struct {
	gen.Server
}

// Messages the actor sends itself or gets from the router.
type (
	activate   struct{ Delay time.Duration } // router: load now (after Delay)
	loadNow    struct{}
	commitDone struct {
		Epoch int64
		Gen   uint64 // the board's commitGen when it was submitted
		Last  int64
		Err   error
	}
	resubmit  struct{}
	idleCheck struct{ Gen uint64 }
	crash     struct{} // console "kill": panic inside the actor on purpose
	register  struct {
		Board string
		Pid   etf.Pid
	}
)

type phase int

const (
	phaseWaiting phase = iota // started, waiting for the router's activate
	phaseLoading              // reading the database
	phaseActive
)

type pendingOp struct {
	seq    int64
	member etf.Pid
	user   string
	opID   string
	tag    uint64
	op     *rules.Op
	frame  []byte
	dup    bool // a retry of an op still in flight: answer dup on commit
}

type memberInfo struct {
	user string
	ref  etf.Ref
	to   any   // the member's pid, boxed once: Send takes an interface, and a pid boxed per event was an allocation per delivery
	feed *Feed // a member on this node that offered its connection (JoinLocal)
}

// dedupKey stands for a user's op id in a board's dedup memory: 128 bits
// of two independently seeded hashes instead of the two strings. A board
// remembers 10,000 ids (dedup_keep); as strings they were about a
// megabyte per busy board, most of a node's live heap, and objects the
// GC traced at every cycle (longer mark phases: a node's p99 latency).
// As hashes they hold no pointers, in a third of the memory. Two ids
// that differ share a key with a chance of about 2^-128 per pair (the
// seeds are random per process and never leave it).
type dedupKey [2]uint64

var dedupSeeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

func keyOf(user, opID string) dedupKey {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(user))) // ("ab","c") is not ("a","bc")
	var k dedupKey
	for i := range k {
		var h maphash.Hash
		h.SetSeed(dedupSeeds[i])
		_, _ = h.Write(n[:])
		_, _ = h.WriteString(user)
		_, _ = h.WriteString(opID)
		k[i] = h.Sum64()
	}
	return k
}

type boardState struct {
	deps *Deps
	id   string
	log  *slog.Logger

	phase phase
	epoch int64

	seq       int64        // last assigned
	committed int64        // last durable and published
	spec      *rules.State // state after every assigned op
	durable   *rules.State // state after the committed ops: what joiners see
	rnd       *rand.Rand

	pending     []pendingOp // assigned, not yet committed, in seq order
	unsubmitted []store.Op  // assigned, not yet handed to the writer
	inFlight    int         // commits handed to the writer, not yet answered
	commitGen   uint64      // bumped when in-flight commits are given up
	snapSeq     int64       // seq of the last stored snapshot
	snapDue     *store.Snapshot
	snapCache   []byte // encoded durable snapshot at snapCacheSeq
	snapCacheAt int64

	ring frameRing // ev frames of the last ReplayKeep committed ops

	dedup      map[dedupKey]int64
	dedupOrder []dedupKey // FIFO to forget the oldest
	dedupHead  int
	oldestOp   int64 // lowest seq whose op id is in dedup (0: none)

	members map[etf.Pid]*memberInfo
	users   map[string]int

	waiting []etf.Term // requests that arrived before the board was loaded
	moving  bool       // handing off to another node: finish, then stop
	idleGen uint64
	loadTry int
}

// Init never fails (a failing Init panics the supervisor, ERGO_NOTES.md):
// it only tells the router it exists and waits for "activate".
func (a *actor) Init(process *gen.ServerProcess, args ...etf.Term) error {
	deps, _ := args[0].(*Deps)
	id, _ := args[1].(string)
	st := &boardState{
		deps:    deps,
		id:      id,
		log:     deps.Log.With("board", id),
		members: make(map[etf.Pid]*memberInfo),
		users:   make(map[string]int),
	}
	process.State = st
	if err := process.Send(RouterName, register{Board: id, Pid: process.Self()}); err != nil {
		st.log.Error("board cannot reach its router", "err", err)
		process.Send(process.Self(), gen.MessageExit{Reason: "normal"})
	}
	return nil
}

// InlineCallback runs a board's hot path, ops and the writer's answers, on
// its loop goroutine (gen.InlineCallbacks, a third_party/ergo patch): a
// goroutine per callback costs each op two more trips through the
// scheduler, which a loaded node pays in latency. Neither Calls. The rest
// keep a goroutine each, so an idle board's loop never grows the stack of
// a load or a join.
func (*actor) InlineCallback(m interface{}) bool {
	switch m.(type) {
	case Op, commitDone, resubmit:
		return true
	}
	return false
}

func (a *actor) HandleInfo(process *gen.ServerProcess, message etf.Term) gen.ServerStatus {
	st := process.State.(*boardState)
	switch m := message.(type) {
	case activate:
		if st.phase != phaseWaiting {
			return gen.ServerStatusOK
		}
		st.phase = phaseLoading
		if m.Delay > 0 {
			process.SendAfter(process.Self(), loadNow{}, m.Delay)
		} else {
			process.Send(process.Self(), loadNow{})
		}
	case loadNow:
		status := st.load(process)
		if st.moving && st.phase == phaseActive && st.settled() {
			return gen.ServerStatusStop // handed off while it reloaded
		}
		return status
	case Join, JoinLocal:
		if st.phase != phaseActive {
			return st.hold(process, m)
		}
		j, feed := joinOf(m)
		if st.superseded(process) {
			// A newer activation owns the board (this node was paused or
			// cut off): never answer from stale state.
			failTo(process, j.Member, st.id, j.Tag, CodeUnavailable, "join: board moved")
			st.abandon(process, "board moved")
			return gen.ServerStatusStop // normal: its supervisor must not restart it here
		}
		st.join(process, j, feed)
	case Op:
		if st.phase != phaseActive {
			return st.hold(process, m)
		}
		st.op(process, m)
	case Leave:
		st.leave(process, m.Member)
		st.armIdle(process)
	case gen.MessageDown:
		if _, ok := st.members[m.Pid]; ok {
			st.leave(process, m.Pid)
			st.armIdle(process)
		}
	case commitDone:
		return st.committedUpTo(process, m)
	case resubmit:
		st.submit(process)
	case idleCheck:
		if m.Gen == st.idleGen && st.idle() {
			st.log.Debug("board passivates")
			return gen.ServerStatusStop
		}
	case handoff:
		st.moving = true
		if st.settled() {
			return gen.ServerStatusStop
		}
	case crash:
		panic(fmt.Sprintf("board %s: crash requested by an operator", st.id))
	case gen.MessageExit:
		return gen.ServerStatusStopWithReason(m.Reason)
	default:
		st.log.Warn("board got an unknown message", "type", fmt.Sprintf("%T", message))
	}
	return gen.ServerStatusOK
}

// HandleDirect answers questions about the board from its node.
func (a *actor) HandleDirect(process *gen.ServerProcess, ref etf.Ref, message interface{}) (interface{}, gen.DirectStatus) {
	st := process.State.(*boardState)
	switch message.(type) {
	case infoRequest:
		return st.info(), gen.DirectStatusOK
	}
	return nil, lib.ErrUnsupportedRequest
}

func (a *actor) Terminate(process *gen.ServerProcess, reason string) {
	st, ok := process.State.(*boardState)
	if !ok {
		return
	}
	// Whoever waits on an answer learns now; the op may still commit, and a
	// retry with the same id is answered dup.
	for _, p := range st.pending {
		failTo(process, p.member, st.id, p.tag, CodeUnavailable, "board restarting")
	}
	st.pending = nil
	st.failWaiting(process, "board stopped")
	if reason != "normal" && reason != "shutdown" {
		st.log.Warn("board actor terminated", "reason", reason)
	}
}

// hold keeps a request until the board is loaded; a bounded queue.
func (st *boardState) hold(process *gen.ServerProcess, m etf.Term) gen.ServerStatus {
	if len(st.waiting) >= st.deps.Config.Mailbox {
		st.fail(process, m, CodeUnavailable, "board loading")
		return gen.ServerStatusOK
	}
	st.waiting = append(st.waiting, m)
	return gen.ServerStatusOK
}

func (st *boardState) failWaiting(process *gen.ServerProcess, msg string) {
	for _, m := range st.waiting {
		st.fail(process, m, CodeUnavailable, msg)
	}
	st.waiting = nil
}

func (st *boardState) fail(process *gen.ServerProcess, m etf.Term, code, msg string) {
	switch r := m.(type) {
	case Join:
		failTo(process, r.Member, st.id, r.Tag, code, msg)
	case JoinLocal:
		failTo(process, r.Member, st.id, r.Tag, code, msg)
	case Op:
		failTo(process, r.Member, st.id, r.Tag, code, msg)
	}
}

func failTo(process gen.Process, to etf.Pid, board string, tag uint64, code, msg string) {
	_ = process.Send(to, Failed{Board: board, Code: code, Msg: msg, Tag: tag})
}

// load activates the board in the database (bumping its epoch) and reads
// its snapshot and later ops. While the database is down it retries with
// backoff, answering requests "unavailable".
func (st *boardState) load(process *gen.ServerProcess) gen.ServerStatus {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	replay, err := st.loadFrom(ctx)
	if err != nil {
		st.loadTry++
		delay := min(time.Duration(1<<min(st.loadTry, 10))*20*time.Millisecond, 5*time.Second)
		st.log.Warn("board load failed; retrying", "err", err, "in", delay)
		st.failWaiting(process, "database unavailable")
		process.SendAfter(process.Self(), loadNow{}, delay)
		return gen.ServerStatusOK
	}
	st.loadTry = 0
	st.phase = phaseActive
	// Ops that became durable in a commit whose answer was lost are new to
	// the members still attached: send them now, in order.
	for _, ev := range replay {
		st.publish(process, ev.Seq, ev.Frame, nil) // authors not known
	}
	waiting := st.waiting
	st.waiting = nil
	for _, m := range waiting {
		switch r := m.(type) {
		case Join, JoinLocal:
			j, feed := joinOf(r)
			st.join(process, j, feed)
		case Op:
			st.op(process, r)
		}
	}
	st.armIdle(process)
	return gen.ServerStatusOK
}

func (st *boardState) loadFrom(ctx context.Context) ([]Event, error) {
	cfg := st.deps.Config
	act, err := st.deps.Store.Activate(ctx, st.id)
	if err != nil {
		return nil, err
	}
	lim := st.deps.Limits
	var state *rules.State
	if act.Snapshot != nil {
		state, err = rules.LoadSnapshot(act.Snapshot, lim)
		if err != nil {
			return nil, fmt.Errorf("board %s: stored snapshot at %d: %w", st.id, act.SnapshotSeq, err)
		}
	} else {
		state = rules.NewState(lim)
	}
	// Everything after the snapshot is replayed; op ids and ev frames of
	// the last DedupKeep / ReplayKeep ops are remembered.
	from := min(act.SnapshotSeq, max(0, act.Seq-int64(max(cfg.DedupKeep, cfg.ReplayKeep))))
	ops, err := st.deps.Store.LoadOps(ctx, st.id, from, act.Seq)
	if err != nil {
		return nil, err
	}
	if int64(len(ops)) != act.Seq-from {
		return nil, fmt.Errorf("board %s: op log has %d ops in (%d, %d]: a gap", st.id, len(ops), from, act.Seq)
	}
	st.epoch = act.Epoch
	st.dedup = make(map[dedupKey]int64, len(ops))
	st.dedupOrder = st.dedupOrder[:0]
	st.dedupHead = 0
	st.oldestOp = 0
	st.ring.reset()
	oldCommitted := st.committed
	var replay []Event
	replayRand := rand.New(rand.NewPCG(1, 2)) // rolls change no state
	for i := range ops {
		o := &ops[i]
		if o.Seq > act.SnapshotSeq {
			dop, err := rules.Decode(o.Op, lim)
			if err != nil {
				return nil, fmt.Errorf("board %s: stored op %d: %w", st.id, o.Seq, err)
			}
			if _, err := state.Apply(dop, replayRand); err != nil {
				// A stored op was valid when it was accepted; failing now is
				// a rules change, kept in the log but without effect.
				st.log.Error("stored op no longer applies", "seq", o.Seq, "err", err)
			}
		}
		st.remember(keyOf(o.User, o.OpID), o.Seq)
		frame := wire.Event(st.id, o.Seq, o.User, o.OpID, o.Op, o.Result)
		st.pushRing(frame, o.Seq)
		if len(st.members) > 0 && o.Seq > oldCommitted {
			replay = append(replay, Event{Board: st.id, Seq: o.Seq, Frame: frame})
		}
	}
	st.spec = state
	st.durable = state.Clone()
	st.seq, st.committed, st.snapSeq = act.Seq, act.Seq, act.SnapshotSeq
	st.snapCache = nil
	st.rnd = rand.New(rand.NewPCG(rand.Uint64(), uint64(act.Epoch)))
	return replay, nil
}

func (st *boardState) remember(k dedupKey, seq int64) {
	if old, ok := st.dedup[k]; ok && old <= seq {
		return
	}
	st.dedup[k] = seq
	st.dedupOrder = append(st.dedupOrder, k)
	if st.oldestOp == 0 {
		st.oldestOp = seq
	}
	keep := st.deps.Config.DedupKeep
	if len(st.dedupOrder)-st.dedupHead > keep {
		old := st.dedupOrder[st.dedupHead]
		st.dedupOrder[st.dedupHead] = dedupKey{}
		st.dedupHead++
		if s, ok := st.dedup[old]; ok {
			delete(st.dedup, old)
			st.oldestOp = s + 1
		}
		if st.dedupHead > keep { // compact the FIFO now and then
			st.dedupOrder = append(st.dedupOrder[:0], st.dedupOrder[st.dedupHead:]...)
			st.dedupHead = 0
		}
	}
}

func (st *boardState) pushRing(frame []byte, seq int64) {
	st.ring.push(frame, seq, st.deps.Config.ReplayKeep)
}

// joinOf reads a Join or a JoinLocal.
func joinOf(m etf.Term) (Join, *Feed) {
	if jl, ok := m.(JoinLocal); ok {
		return jl.Join, jl.Feed
	}
	return m.(Join), nil
}

func (st *boardState) join(process *gen.ServerProcess, m Join, feed *Feed) {
	if st.moving {
		failTo(process, m.Member, st.id, m.Tag, CodeUnavailable, "join: board moving to another node")
		return
	}
	mi, already := st.members[m.Member]
	if !already {
		mi = &memberInfo{user: m.User, ref: process.MonitorProcess(m.Member), to: m.Member}
		st.members[m.Member] = mi
		st.users[m.User]++
		if st.users[m.User] == 1 && !m.Quiet {
			st.presence(process, m.Member, []string{m.User}, nil)
		}
	}
	// A re-join offers the member's same feed again, or none.
	mi.feed = feed
	reply := Joined{Board: st.id, Actor: process.Self(), Seq: st.committed, Users: st.userList(), Tag: m.Tag}
	if replay, ok := st.replaySince(m.Since); ok {
		reply.Replay = PackFrames(replay)
		reply.Replayed = true
	} else {
		reply.Snapshot = st.durableSnapshot()
	}
	if err := process.Send(m.Member, reply); err != nil {
		st.dropMember(process, m.Member, err)
	}
	st.idleGen++
}

// superseded asks the database whether a newer activation exists. A
// join is rare next to ops, so it pays the query; ops learn it at commit.
func (st *boardState) superseded(process *gen.ServerProcess) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	epoch, err := st.deps.Store.Epoch(ctx, st.id)
	if err != nil {
		return false // the database is down: commits will tell
	}
	return epoch != st.epoch
}

// replaySince returns the frames after since, if the ring still has them
// (valid until the next commit: PackFrames copies them).
func (st *boardState) replaySince(since int64) ([][]byte, bool) {
	if since < 0 || since > st.committed {
		return nil, false
	}
	n := st.committed - since
	if n == 0 {
		return [][]byte{}, true
	}
	if n > int64(st.ring.len()) || st.ring.last != st.committed {
		return nil, false
	}
	return st.ring.lastN(int(n)), true
}

func (st *boardState) durableSnapshot() []byte {
	if st.snapCache == nil || st.snapCacheAt != st.committed {
		st.snapCache = st.durable.Snapshot()
		st.snapCacheAt = st.committed
	}
	return st.snapCache
}

func (st *boardState) userList() []string {
	users := make([]string, 0, len(st.users))
	for u := range st.users {
		users = append(users, u)
	}
	slices.Sort(users)
	return users
}

func (st *boardState) leave(process *gen.ServerProcess, member etf.Pid) {
	mi, ok := st.members[member]
	if !ok {
		return
	}
	process.DemonitorProcess(mi.ref)
	delete(st.members, member)
	st.users[mi.user]--
	if st.users[mi.user] <= 0 {
		delete(st.users, mi.user)
		st.presence(process, etf.Pid{}, nil, []string{mi.user})
	}
}

// dropMember removes a member whose mailbox is full and stops its process:
// it cannot be kept gap-free, so its client is closed (1013) to resume.
func (st *boardState) dropMember(process *gen.ServerProcess, member etf.Pid, err error) {
	st.log.Warn("member cannot keep up; dropping it", "member", member.String(), "err", err)
	st.leave(process, member)
	if p := process.ProcessByPid(member); p != nil {
		_ = p.Exit(ExitOverflow)
	}
}

// ExitOverflow is the exit reason of a member process whose mailbox
// overflowed: its client must resume with "since".
const ExitOverflow = "overflow"

func (st *boardState) presence(process *gen.ServerProcess, except etf.Pid, joins, leaves []string) {
	msg := Presence{Board: st.id, Joins: joins, Leaves: leaves}
	var frame []byte // written once, when a member has a feed
	d := &feedDirect{
		try: func(f *Feed) bool {
			if frame == nil {
				frame = wire.PresenceDelta(st.id, joins, leaves)
			}
			return f.tryFrame(frame)
		},
		stamp: func(id uint64) etf.Term { m := msg; m.Feed = id; return m },
	}
	st.toMembers(process, except, msg, d,
		func(ids LocalIDs) etf.Term {
			return FanoutPresence{Members: ids, Board: st.id, Joins: joins, Leaves: leaves}
		})
}

func (st *boardState) op(process *gen.ServerProcess, m Op) {
	if st.moving {
		failTo(process, m.Member, st.id, m.Tag, CodeUnavailable, "op: board moving to another node; retry with the same id")
		return
	}
	if mi, ok := st.members[m.Member]; !ok || mi.user != m.User {
		failTo(process, m.Member, st.id, m.Tag, CodeNotJoined, "op: board "+st.id+" not joined")
		return
	}
	k := keyOf(m.User, m.OpID)
	if seq, ok := st.dedup[k]; ok {
		st.answerDup(process, m, seq)
		return
	}
	if st.oldestOp > 1 {
		// The board has ops older than what it remembers: ask the log.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		seq, found, err := st.deps.Store.FindOp(ctx, st.id, m.User, m.OpID)
		cancel()
		if err != nil {
			failTo(process, m.Member, st.id, m.Tag, CodeUnavailable, "op: database unavailable")
			return
		}
		if found {
			st.answerDup(process, m, seq)
			return
		}
	}
	dop, err := rules.Decode(m.Op, st.deps.Limits)
	if err == nil {
		var result []byte
		result, err = st.spec.Apply(dop, st.rnd)
		if err == nil {
			st.accept(process, m, k, dop, result)
			return
		}
	}
	var re *rules.Error
	if errors.As(err, &re) {
		failTo(process, m.Member, st.id, m.Tag, re.Code, re.Msg)
		return
	}
	failTo(process, m.Member, st.id, m.Tag, CodeInternal, "op: "+err.Error())
}

func (st *boardState) answerDup(process *gen.ServerProcess, m Op, seq int64) {
	if seq <= st.committed {
		_ = process.Send(m.Member, Ack{Board: st.id, OpID: m.OpID, Seq: seq, Dup: true, Tag: m.Tag})
		return
	}
	// The original is still in flight: answer when it commits.
	st.pending = append(st.pending, pendingOp{seq: seq, member: m.Member, opID: m.OpID, tag: m.Tag, dup: true})
}

func (st *boardState) accept(process *gen.ServerProcess, m Op, k dedupKey, dop *rules.Op, result []byte) {
	st.seq++
	seq := st.seq
	st.remember(k, seq)
	st.pending = append(st.pending, pendingOp{
		seq: seq, member: m.Member, user: m.User, opID: m.OpID, tag: m.Tag, op: dop,
		frame: wire.Event(st.id, seq, m.User, m.OpID, dop.Raw, result),
	})
	st.unsubmitted = append(st.unsubmitted, store.Op{Seq: seq, User: m.User, OpID: m.OpID, Op: dop.Raw, Result: result})
	st.submit(process)
}

// maxCommitsInFlight: a board hands its next commit to the writer while
// the previous one is written (the writer keeps a board's commits in
// order, and one that cannot follow a failed one is fenced), so an op
// waits for one transaction, not for the end of the one before it too;
// beyond that, ops gather and a busy board commits many per transaction.
const maxCommitsInFlight = 2

// submit hands the waiting ops to the writer.
func (st *boardState) submit(process *gen.ServerProcess) {
	if st.inFlight >= maxCommitsInFlight || (len(st.unsubmitted) == 0 && st.snapDue == nil) {
		return
	}
	ops := st.unsubmitted
	last := st.committed
	if len(ops) > 0 {
		last = ops[len(ops)-1].Seq
	}
	epoch, gen := st.epoch, st.commitGen
	self := process.Self()
	c := &store.Commit{BoardID: st.id, Epoch: epoch, Ops: ops, Snapshot: st.snapDue}
	c.Done = func(err error) { notify(process, self, commitDone{Epoch: epoch, Gen: gen, Last: last, Err: err}) }
	switch err := st.deps.Store.Submit(c); {
	case err == nil:
		st.inFlight++
		st.unsubmitted = nil
		st.snapDue = nil
	case errors.Is(err, store.ErrBusy):
		process.SendAfter(self, resubmit{}, 2*time.Millisecond)
	default:
		// Closed: the node is stopping; answer everyone now.
		st.abandon(process, "store closed")
	}
}

// notify delivers a message to the actor from another goroutine; a full
// mailbox must not lose a commit result, so it retries until delivered or
// the actor is gone.
func notify(process gen.Process, to etf.Pid, msg etf.Term) {
	err := process.Send(to, msg)
	if err == nil || !errors.Is(err, lib.ErrProcessMailboxFull) {
		return
	}
	go func() {
		for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
			time.Sleep(wait)
			err := process.Send(to, msg)
			if err == nil || !errors.Is(err, lib.ErrProcessMailboxFull) {
				return
			}
		}
	}()
}

func (st *boardState) committedUpTo(process *gen.ServerProcess, m commitDone) gen.ServerStatus {
	if m.Epoch != st.epoch || m.Gen != st.commitGen {
		// From before a reload, or after a commit of this board failed
		// (those that followed it cannot have been written).
		return gen.ServerStatusOK
	}
	st.inFlight--
	switch {
	case m.Err == nil:
	case errors.Is(m.Err, store.ErrFenced):
		st.log.Warn("board fenced by a newer activation; stopping", "epoch", st.epoch)
		st.abandon(process, "board moved")
		return gen.ServerStatusStop // normal: a restart here would fence the new owner in turn
	default:
		// Not durable, or not known to be: answer unavailable and reload
		// from the database, which knows what became durable.
		st.log.Warn("commit failed; reloading the board", "err", m.Err)
		st.abandon(process, "database unavailable")
		st.phase = phaseLoading
		process.Send(process.Self(), loadNow{})
		return gen.ServerStatusOK
	}
	n := 0
	first := st.committed + 1
	var (
		frames  [][]byte
		authors []string
	)
	for _, p := range st.pending {
		if p.seq > m.Last {
			break
		}
		n++
		if p.dup {
			_ = process.Send(p.member, Ack{Board: st.id, OpID: p.opID, Seq: p.seq, Dup: true, Tag: p.tag})
			continue
		}
		// A roll's state change is nil; durable follows spec exactly.
		if _, err := st.durable.Apply(p.op, st.rnd); err != nil {
			st.log.Error("committed op does not apply to the durable state", "seq", p.seq, "err", err)
		}
		st.committed = p.seq
		st.pushRing(p.frame, p.seq)
		// Every sender's ack goes before the evs (PROTOCOL.md: on the
		// sender's connection the ack comes before its ev).
		metrics.Ops.Inc()
		_ = process.Send(p.member, Ack{Board: st.id, OpID: p.opID, Seq: p.seq, Tag: p.tag})
		frames = append(frames, p.frame)
		if !slices.Contains(authors, p.user) {
			authors = append(authors, p.user)
		}
	}
	st.pending = append(st.pending[:0], st.pending[n:]...)
	st.publishAll(process, first, frames, authors)
	if every := int64(st.deps.StoreConfig.SnapshotEvery); every > 0 && st.committed-st.snapSeq >= every && st.snapDue == nil {
		st.snapDue = &store.Snapshot{Seq: st.committed, Data: st.durableSnapshot()}
		st.snapSeq = st.committed
	}
	st.submit(process)
	if st.moving && st.settled() {
		return gen.ServerStatusStop
	}
	st.armIdle(process)
	return gen.ServerStatusOK
}

// settled: nothing is on its way to the database.
func (st *boardState) settled() bool {
	return st.inFlight == 0 && len(st.unsubmitted) == 0 && st.snapDue == nil
}

// publishAll sends the events of one commit to every member: through its
// feed or as one message to each member on this node (toMembers), one
// message per other node, whatever their number. authors are the users of
// the events: their connections get them as messages, after the ack (nil:
// not known, every member does).
func (st *boardState) publishAll(process *gen.ServerProcess, first int64, frames [][]byte, authors []string) {
	switch len(frames) {
	case 0:
		return
	case 1:
		st.publish(process, first, frames[0], authors)
		return
	}
	packed := PackFrames(frames)
	msg := Events{Board: st.id, First: first, Frames: packed}
	d := &feedDirect{
		authors: authors,
		unknown: authors == nil,
		try:     func(f *Feed) bool { return f.tryEvents(first, frames) },
		stamp:   func(id uint64) etf.Term { m := msg; m.Feed = id; return m },
	}
	sent := st.toMembers(process, etf.Pid{}, msg, d,
		func(ids LocalIDs) etf.Term {
			return FanoutEvents{Members: ids, Board: st.id, First: first, Frames: packed}
		})
	metrics.DistEventMessages.Add(float64(sent))
	if st.deps.Publish != nil {
		for i, f := range frames {
			st.deps.Publish(process, st.id, first+int64(i), f)
		}
	}
}

// publish sends one committed event to every member: through the feed or
// as a message to those on this node, and as one message per other node
// to its fanout process.
func (st *boardState) publish(process *gen.ServerProcess, seq int64, frame []byte, authors []string) {
	msg := Event{Board: st.id, Seq: seq, Frame: frame}
	one := [][]byte{frame}
	d := &feedDirect{
		authors: authors,
		unknown: authors == nil,
		try:     func(f *Feed) bool { return f.tryEvents(seq, one) },
		stamp:   func(id uint64) etf.Term { m := msg; m.Feed = id; return m },
	}
	sent := st.toMembers(process, etf.Pid{}, msg, d,
		func(ids LocalIDs) etf.Term { return FanoutEvent{Members: ids, Board: st.id, Seq: seq, Frame: frame} })
	metrics.DistEventMessages.Add(float64(sent))
	if st.deps.Publish != nil {
		st.deps.Publish(process, st.id, seq, frame)
	}
}

// toMembers sends local to each member on this node (or writes it through
// the member's feed when d says so) and remote to each other node's fanout.
func (st *boardState) toMembers(process *gen.ServerProcess, except etf.Pid, local etf.Term, d *feedDirect, remote func(LocalIDs) etf.Term) int {
	self := etf.Atom(process.NodeName())
	var byNode map[etf.Atom][]etf.Pid
	for pid, mi := range st.members {
		if pid == except {
			continue
		}
		if pid.Node == self {
			msg := local
			if mi.feed != nil {
				if d.byAuthor(mi.user) {
					mi.feed.count() // the message way
				} else if d.try(mi.feed) {
					continue // written; else try counted the message
				}
				msg = d.stamp(mi.feed.id)
			}
			if err := process.Send(mi.to, msg); err != nil && errors.Is(err, lib.ErrProcessMailboxFull) {
				st.dropMember(process, pid, err)
			}
			continue
		}
		if byNode == nil {
			byNode = make(map[etf.Atom][]etf.Pid)
		}
		byNode[pid.Node] = append(byNode[pid.Node], pid)
	}
	for node, pids := range byNode {
		_ = process.Send(gen.ProcessID{Name: FanoutName, Node: string(node)}, remote(ToLocalIDs(pids)))
	}
	return len(byNode)
}

// abandon answers every op not yet durable with "unavailable" and forgets
// them; the speculative state goes back to the durable one.
func (st *boardState) abandon(process *gen.ServerProcess, why string) {
	for _, p := range st.pending {
		failTo(process, p.member, st.id, p.tag, CodeUnavailable, "op: "+why)
	}
	for _, p := range st.pending {
		if !p.dup {
			delete(st.dedup, keyOf(p.user, p.opID))
		}
	}
	st.pending = nil
	st.unsubmitted = nil
	st.snapDue = nil
	st.inFlight = 0
	st.commitGen++
	st.seq = st.committed
	st.spec = st.durable.Clone()
}

func (st *boardState) idle() bool {
	return len(st.members) == 0 && len(st.pending) == 0 && st.inFlight == 0 && len(st.unsubmitted) == 0 && len(st.waiting) == 0
}

func (st *boardState) armIdle(process *gen.ServerProcess) {
	if !st.idle() || st.deps.Config.IdleMs <= 0 {
		return
	}
	st.idleGen++
	process.SendAfter(process.Self(), idleCheck{Gen: st.idleGen}, time.Duration(st.deps.Config.IdleMs)*time.Millisecond)
}
