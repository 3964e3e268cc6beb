package load

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// boardState is what a client knows of one board it is a member of.
type boardState struct {
	name     string
	members  int   // members of the board in the run
	joined   bool  // joined on the current connection
	joinSent int64 // unix nanos the pending join was sent; 0 if none
	since    int64 // the since of the pending join; -1 for none
	ever     bool  // joined at least once: later joins carry since
	last     int64 // last seq applied
	segs     []Segment
}

// pendingOp is an op sent and not yet acknowledged: retried with the same
// id until it is.
type pendingOp struct {
	n        int64
	id       string
	board    string
	body     []byte
	phase    int
	first    time.Time
	lastSend int64 // unix nanos; 0 when it is not on the current connection
}

// client is one connection of the run: one user, its boards, its ops.
type client struct {
	r     *Runner
	idx   int
	user  string
	sh    *shard
	wake  chan struct{}
	ready chan struct{}

	mu        sync.Mutex
	ws        *websocket.Conn
	url       int
	boards    []*boardState
	pending   map[string]*pendingOp
	nextOp    int64
	readyOnce sync.Once
	kindIdx   int
}

func newClient(r *Runner, i int) *client {
	c := &client{r: r, idx: i, user: r.cfg.UserOf(i), sh: r.stats.shard(i),
		wake: make(chan struct{}, 1), ready: make(chan struct{}),
		url: i % len(r.cfg.URLs), pending: map[string]*pendingOp{}}
	c.boards = []*boardState{{name: r.cfg.BoardOf(i), members: r.cfg.membersOf(i), since: -1}}
	return c
}

func (c *client) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *client) board(name string) *boardState {
	for _, b := range c.boards {
		if b.name == name {
			return b
		}
	}
	return nil
}

// run keeps the client connected until ctx ends: dial, hello, join every
// board (with since once it has been joined), read; on any loss, count
// the close code and reconnect to the next node.
func (c *client) run(ctx context.Context) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		ws, err := c.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.count("dial")
			c.mu.Lock()
			c.url++
			c.mu.Unlock()
			sleep(ctx, jitter(backoff))
			backoff = min(backoff*2, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		connCtx, cancel := context.WithCancel(ctx)
		c.r.connected.Add(1)
		c.mu.Lock()
		c.ws = ws
		c.mu.Unlock()
		c.sendJoins(connCtx, ws)
		err = c.read(connCtx, ws)
		c.r.connected.Add(-1)
		cancel()
		_ = ws.CloseNow()
		c.disconnected()
		if ctx.Err() != nil {
			return
		}
		code := websocket.CloseStatus(err)
		c.sh.mu.Lock()
		c.sh.closes[closeKey(int(code))]++
		c.sh.reconnects++
		c.sh.mu.Unlock()
		c.r.cfg.Log.Debug("connection lost", "user", c.user, "code", int(code), "err", err)
		c.mu.Lock()
		c.url++
		c.mu.Unlock()
		sleep(ctx, jitter(20*time.Millisecond))
	}
}

func (c *client) count(what string) {
	c.sh.mu.Lock()
	c.sh.errors[what]++
	c.sh.mu.Unlock()
}

// connect dials the client's current node and says hello.
func (c *client) connect(ctx context.Context) (*websocket.Conn, error) {
	c.mu.Lock()
	url := c.r.cfg.URLs[c.url%len(c.r.cfg.URLs)]
	c.mu.Unlock()
	dctx, cancel := context.WithTimeout(ctx, c.r.cfg.DialTimeout)
	defer cancel()
	opts := &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled}
	if c.r.httpClient != nil {
		opts.HTTPClient = c.r.httpClient
	}
	ws, resp, err := websocket.Dial(dctx, url, opts)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, fmt.Errorf("dial %s: HTTP %d: %w", url, resp.StatusCode, err)
		}
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	ws.SetReadLimit(-1)
	hello := `{"t":"hello","ref":"h","user":` + strconv.Quote(c.user) + `}`
	if err := ws.Write(dctx, websocket.MessageText, []byte(hello)); err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("hello: %w", err)
	}
	_, b, err := ws.Read(dctx)
	if err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("welcome: %w", err)
	}
	f, err := ParseFrame(b)
	if err != nil || f.T != "welcome" {
		ws.CloseNow()
		return nil, fmt.Errorf("want welcome, got %.200s", b)
	}
	return ws, nil
}

// sendJoins joins every board on a new connection: with since = the last
// seq applied once the board has been joined, so the server replays.
func (c *client) sendJoins(ctx context.Context, ws *websocket.Conn) {
	var frames [][]byte
	c.mu.Lock()
	now := time.Now().UnixNano()
	for _, b := range c.boards {
		frames = append(frames, c.joinFrameLocked(b, now))
	}
	c.mu.Unlock()
	for _, f := range frames {
		if ws.Write(ctx, websocket.MessageText, f) != nil {
			return
		}
	}
}

func (c *client) joinFrameLocked(b *boardState, now int64) []byte {
	b.joined = false
	b.joinSent = now
	f := []byte(`{"t":"join","ref":"j","board":` + strconv.Quote(b.name))
	if b.ever {
		b.since = b.last
		f = append(f, `,"since":`...)
		f = strconv.AppendInt(f, b.last, 10)
	} else {
		b.since = -1
	}
	return append(f, '}')
}

// read handles the server's messages until the connection ends.
func (c *client) read(ctx context.Context, ws *websocket.Conn) error {
	for {
		typ, b, err := ws.Read(ctx)
		if err != nil {
			return err
		}
		now := time.Now()
		if typ != websocket.MessageText {
			c.violation("binary frame from the server")
			continue
		}
		f, err := ParseFrame(b)
		if err != nil {
			c.violation(err.Error())
			continue
		}
		switch f.T {
		case "ev":
			c.onEvent(&f, now)
		case "ack":
			c.onAck(&f, now)
		case "joined":
			c.onJoined(ctx, ws, &f)
		case "error":
			c.onError(ctx, ws, &f)
		}
	}
}

func (c *client) violation(what string) {
	c.sh.mu.Lock()
	c.sh.violations++
	n := c.sh.violations
	c.sh.mu.Unlock()
	if n <= 5 {
		c.r.cfg.Log.Warn("protocol violation", "user", c.user, "what", what)
	}
}

func (c *client) onJoined(ctx context.Context, ws *websocket.Conn, f *Frame) {
	c.mu.Lock()
	b := c.board(f.Board)
	if b == nil {
		c.mu.Unlock()
		c.violation("joined for a board never joined: " + f.Board)
		return
	}
	seg := Segment{Start: b.since}
	if len(f.Snapshot) > 0 || b.since < 0 {
		b.last = f.Seq
		seg = Segment{Start: f.Seq, Snapshot: true}
	}
	b.joined, b.ever, b.joinSent = true, true, 0
	if c.r.cfg.Record {
		b.segs = append(b.segs, seg)
	}
	// Resend, in order and with the same ids, what was never answered.
	var resend []*pendingOp
	now := time.Now().UnixNano()
	for _, p := range c.pending {
		if p.board == b.name && p.lastSend == 0 {
			resend = append(resend, p)
		}
	}
	slices.SortFunc(resend, func(a, b *pendingOp) int { return int(a.n - b.n) })
	frames := make([][]byte, len(resend))
	for i, p := range resend {
		p.lastSend = now
		frames[i] = p.body
	}
	c.mu.Unlock()
	c.readyOnce.Do(func() { close(c.ready) })
	c.signal()
	if len(resend) > 0 {
		c.sh.mu.Lock()
		for _, p := range resend {
			c.sh.phase(p.phase).resent++
		}
		c.sh.mu.Unlock()
	}
	for _, fr := range frames {
		if ws.Write(ctx, websocket.MessageText, fr) != nil {
			return
		}
	}
}

func (c *client) onEvent(f *Frame, now time.Time) {
	c.mu.Lock()
	b := c.board(f.Board)
	switch {
	case b == nil || !b.joined:
		c.mu.Unlock()
		c.violation("ev of a board not joined: " + f.Board)
		return
	case f.Seq != b.last+1:
		c.mu.Unlock()
		c.violation(fmt.Sprintf("board %s: ev seq %d after %d", f.Board, f.Seq, b.last))
		c.mu.Lock()
	}
	if f.Seq > b.last {
		b.last = f.Seq
	}
	if c.r.cfg.Record {
		seg := &b.segs[len(b.segs)-1]
		seg.Events = append(seg.Events, Event{Seq: f.Seq, User: f.User, ID: f.ID})
	}
	// Counted before c.mu is released: once b.last shows this ev, Settle
	// may end the phase, and the delivery must be in its figures.
	if phase, sent, ok := ParseStamp(f.Op); ok {
		d := now.Sub(time.Unix(0, sent))
		c.sh.mu.Lock()
		ps := c.sh.phase(phase)
		ps.delivered++
		recordDur(ps.deliv, d)
		recordDur(c.sh.secDeliv, d)
		c.sh.secDelivN++
		c.sh.mu.Unlock()
	}
	c.mu.Unlock()
	c.r.noteSeq()
}

func (c *client) onAck(f *Frame, now time.Time) {
	c.mu.Lock()
	p := c.pending[f.ID]
	delete(c.pending, f.ID)
	var members int
	if b := c.board(f.Board); b != nil {
		members = b.members
	}
	c.mu.Unlock()
	c.signal()
	var first time.Time
	if p != nil {
		first = p.first
		d := now.Sub(p.first)
		c.sh.mu.Lock()
		ps := c.sh.phase(p.phase)
		ps.acked++
		if f.Dup {
			ps.dupAcks++
		}
		ps.expected += int64(members)
		recordDur(ps.ack, d)
		recordDur(c.sh.secAck, d)
		c.sh.secAckN++
		c.sh.mu.Unlock()
	}
	c.r.noteAck(AckRecord{Board: f.Board, User: c.user, ID: f.ID, Seq: f.Seq, Dup: f.Dup,
		FirstSent: first, At: now, Extra: p == nil})
}

func (c *client) onError(ctx context.Context, ws *websocket.Conn, f *Frame) {
	c.mu.Lock()
	p := c.pending[f.Ref]
	var rejoin []byte
	switch {
	case p == nil && f.Ref == "j":
		// A join refused (a board moving, say): join again after a pause,
		// on this connection if it is still the client's.
		for _, b := range c.boards {
			if !b.joined && b.joinSent != 0 {
				b.joinSent = time.Now().UnixNano()
				name := b.name
				time.AfterFunc(jitter(200*time.Millisecond), func() { c.rejoin(ctx, ws, name) })
			}
		}
	case p == nil:
	case f.Code == "unavailable" || f.Code == "rate_limited":
		// Retry with the same id after a pause.
		p.lastSend = 0
		id := p.id
		time.AfterFunc(jitter(100*time.Millisecond), func() { c.resend(ctx, ws, id) })
	case f.Code == "not_joined":
		// The server forgot the membership: join again, with since; the
		// op is resent once joined.
		p.lastSend = 0
		if b := c.board(p.board); b != nil && b.joinSent == 0 {
			rejoin = c.joinFrameLocked(b, time.Now().UnixNano())
		}
	default:
		// Refused for good (bad_op, not_found, ...): not acknowledged.
		delete(c.pending, f.Ref)
	}
	c.mu.Unlock()
	if p != nil && f.Code != "unavailable" && f.Code != "rate_limited" && f.Code != "not_joined" {
		c.r.noteRefusal(Refusal{Board: p.board, User: c.user, ID: p.id, Code: f.Code, Msg: f.Msg})
	}
	c.sh.mu.Lock()
	if p != nil {
		c.sh.phase(p.phase).errors[f.Code]++
	}
	c.sh.errors[f.Code]++
	c.sh.mu.Unlock()
	c.signal()
	if rejoin != nil {
		_ = ws.Write(ctx, websocket.MessageText, rejoin)
	}
}

// rejoin sends board's join again on ws if it is still the client's
// connection and the board is not joined.
func (c *client) rejoin(ctx context.Context, ws *websocket.Conn, name string) {
	c.mu.Lock()
	b := c.board(name)
	if b == nil || c.ws != ws || b.joined {
		c.mu.Unlock()
		return
	}
	f := c.joinFrameLocked(b, time.Now().UnixNano())
	c.mu.Unlock()
	_ = ws.Write(ctx, websocket.MessageText, f)
}

// resend sends a pending op again on connection ws, if it is still the
// client's and the board is joined there; otherwise the next join does.
func (c *client) resend(ctx context.Context, ws *websocket.Conn, id string) {
	c.mu.Lock()
	p := c.pending[id]
	if p == nil || c.ws != ws || p.lastSend != 0 {
		c.mu.Unlock()
		return
	}
	if b := c.board(p.board); b == nil || !b.joined {
		c.mu.Unlock()
		return
	}
	p.lastSend = time.Now().UnixNano()
	body := p.body
	c.mu.Unlock()
	c.sh.mu.Lock()
	c.sh.phase(p.phase).resent++
	c.sh.mu.Unlock()
	_ = ws.Write(ctx, websocket.MessageText, body)
}

func (c *client) disconnected() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ws = nil
	for _, b := range c.boards {
		b.joined, b.joinSent = false, 0
	}
	for _, p := range c.pending {
		p.lastSend = 0
	}
}

// send sends a new op of phase on the client's board. It returns false if
// nothing was sent: the window is full (shed) or the board is not joined
// (skipped).
func (c *client) send(phase int) bool {
	c.mu.Lock()
	b := c.boards[0]
	ws := c.ws
	if ws == nil || !b.joined {
		c.mu.Unlock()
		c.sh.mu.Lock()
		c.sh.phase(phase).skipped++
		c.sh.mu.Unlock()
		return false
	}
	if len(c.pending) >= c.r.cfg.Window {
		c.mu.Unlock()
		c.sh.mu.Lock()
		c.sh.phase(phase).shed++
		c.sh.mu.Unlock()
		return false
	}
	c.nextOp++
	now := time.Now()
	p := &pendingOp{n: c.nextOp, board: b.name, phase: phase, first: now, lastSend: now.UnixNano()}
	p.id = c.user + "-" + strconv.FormatInt(p.n, 10)
	p.body = c.opFrame(p)
	c.pending[p.id] = p
	c.mu.Unlock()
	c.sh.mu.Lock()
	c.sh.phase(phase).sent++
	c.sh.mu.Unlock()
	_ = ws.Write(context.Background(), websocket.MessageText, p.body)
	return true
}

// room reports whether the client may send now (closed loop).
func (c *client) room(window int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ws != nil && c.boards[0].joined && len(c.pending) < window
}

// opFrame builds an op message; the caller holds c.mu.
func (c *client) opFrame(p *pendingOp) []byte {
	b := make([]byte, 0, 200)
	b = append(b, `{"t":"op","ref":`...)
	b = strconv.AppendQuote(b, p.id)
	b = append(b, `,"board":`...)
	b = strconv.AppendQuote(b, p.board)
	b = append(b, `,"id":`...)
	b = strconv.AppendQuote(b, p.id)
	b = append(b, `,"op":`...)
	ent := "e" + strconv.Itoa(c.idx) + "-" + strconv.FormatInt(p.n%4, 10)
	kind := c.r.cfg.Kind
	if kind == "mix" {
		switch {
		case p.n <= 4 || p.n%3 == 1:
			kind = "put"
		case p.n%3 == 2:
			kind = "patch"
		default:
			kind = "chat"
		}
	}
	stamp := AppendStamp(nil, p.phase, p.first.UnixNano())
	switch kind {
	case "put":
		b = append(b, `{"kind":"put","entities":[{"id":"`...)
		b = append(b, ent...)
		b = append(b, `","asset":"token","pos":[`...)
		b = strconv.AppendInt(b, p.n%32, 10)
		b = append(b, `,0,`...)
		b = strconv.AppendInt(b, int64(c.idx%32), 10)
		b = append(b, `],"props":{"lg":"`...)
		b = append(b, stamp...)
		b = append(b, `"}}]}}`...)
	case "patch":
		b = append(b, `{"kind":"patch","entity":"`...)
		b = append(b, ent...)
		b = append(b, `","props":{"lg":"`...)
		b = append(b, stamp...)
		b = append(b, `"}}}`...)
	default:
		b = append(b, `{"kind":"chat","text":"`...)
		b = append(b, stamp...)
		b = append(b, `"}}`...)
	}
	return b
}

// stalled reports whether an answer has been awaited longer than d on the
// current connection (a hung node), and closes it if so.
func (c *client) checkStall(now int64, d time.Duration) {
	limit := now - int64(d)
	c.mu.Lock()
	ws := c.ws
	stalled := false
	if ws != nil {
		for _, b := range c.boards {
			if b.joinSent != 0 && b.joinSent < limit {
				stalled = true
			}
		}
		for _, p := range c.pending {
			if p.lastSend != 0 && p.lastSend < limit {
				stalled = true
				break
			}
		}
	}
	c.mu.Unlock()
	if stalled {
		c.count("stalled")
		_ = ws.CloseNow()
	}
}

func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

var errStopped = errors.New("load: stopped")
