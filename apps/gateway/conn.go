package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"

	"github.com/tavernhq/tavern/apps/gateway/wire"
	"github.com/tavernhq/tavern/internal/metrics"
)

// closeGrace bounds how long a requested close may wait for the writer
// (stuck in a write to a client that does not read) before the socket is
// cut without a close handshake.
const closeGrace = 10 * time.Second

// closeAbnormal is the code counted when a connection ends without a close
// frame we could send: the peer vanished or stopped answering pings.
const closeAbnormal = 1006

// maxBurst bounds the frames of join answers queued beyond the limit.
const maxBurst = 1 << 16

// maxSpare is the largest queue array the writer keeps for the next
// batch; a bigger one (a join's replay) is let go.
const maxSpare = 64

// conn is one client WebSocket. Its I/O runs in at most two goroutines:
// the reader (the HTTP handler's goroutine) hands each message to the
// session process with Direct; the writer, started when frames are queued
// and gone when the queue is empty (an idle client has none), writes the
// queue in batches, corked into few system calls. The session writes
// through Send and Close (board.Output), which never block.
//
// Every way a connection ends goes through Close: the first code wins; the
// writer performs the close, then the handler stops the session process.
type conn struct {
	ws      *websocket.Conn
	sock    *corkConn
	id      uint64
	remote  string
	at      time.Time
	limit   int // outbound queue size, in frames
	session gen.Process

	lifeMu      sync.Mutex // see direct
	sessionGone bool

	// keep-alive
	pingEvery, pingWait time.Duration
	pingTimer           *time.Timer
	pings               sync.WaitGroup
	lastHeard           atomic.Int64 // unix ns of the last message or pong
	msgSince            atomic.Int64 // unix ns the message being read began; 0 between messages

	mu       sync.Mutex
	frames   [][]byte // queued, not yet written
	burst    bool     // the session is writing a join's answer (see Send)
	exempt   int      // frames of join answers in frames
	writing  bool     // a writer goroutine runs
	closing  bool
	code     int
	reason   string
	stopped  bool        // keep-alive stopped: the connection is over
	watchdog *time.Timer // cuts the socket if a requested close stalls
	user     string      // set once welcomed
	welcomed bool
	boards   []string

	done chan struct{} // closed once the socket is closed
}

func newConn(ws *websocket.Conn, sock *corkConn, id uint64, remote string, s *settings) *conn {
	return &conn{
		ws: ws, sock: sock, id: id, remote: remote, at: time.Now(), limit: s.outboundQueue,
		pingEvery: s.pingInterval, pingWait: s.pingTimeout,
		done: make(chan struct{}),
	}
}

// Send queues a text frame. It reports false when the outbound queue is
// full: the caller then closes the client (1013). After a close was
// requested frames are dropped and Send reports true: the stream ends
// there, without a gap.
//
// The answer to a join (joined, the replayed evs, presence) is one reply
// that may be longer than the queue; its frames do not count against the
// limit, or a client away for more ops than the queue holds could never
// resume: it would be closed again at every join with since.
func (c *conn) Send(frame []byte) bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return true
	}
	if c.burst {
		if len(c.frames) >= c.limit+maxBurst {
			c.mu.Unlock()
			return false
		}
		c.exempt++
	} else if len(c.frames)-c.exempt >= c.limit {
		c.mu.Unlock()
		return false
	}
	c.frames = append(c.frames, frame)
	start := c.startWriterLocked()
	c.mu.Unlock()
	countError(frame)
	if start {
		go c.writeLoop()
	}
	return true
}

// startWriterLocked reports whether a writer must be started. c.mu is held.
func (c *conn) startWriterLocked() bool {
	if c.writing {
		return false
	}
	c.writing = true
	return true
}

// Close asks the writer to close the connection with code. For 1013 (the
// client cannot keep up) the queued frames are dropped; otherwise they are
// written first, so an error reaches the client before its close. Only the
// first call counts.
func (c *conn) Close(code int, reason string) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing, c.code, c.reason = true, code, reason
	metrics.Closes.WithLabelValues(strconv.Itoa(code)).Inc()
	if dropsQueue(code) {
		clear(c.frames)
		c.frames, c.exempt = nil, 0
	}
	if !c.stopped {
		c.watchdog = time.AfterFunc(closeGrace, func() { _ = c.ws.CloseNow() })
	}
	start := c.startWriterLocked()
	c.mu.Unlock()
	if start {
		go c.writeLoop()
	}
}

func dropsQueue(code int) bool { return code == wire.CloseTryAgain || code == closeAbnormal }

// abort cuts the socket at once: the peer is gone or does not answer.
func (c *conn) abort(reason string) {
	c.Close(closeAbnormal, reason)
	_ = c.ws.CloseNow()
}

func (c *conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// welcome records who the client is, for Clients and Notice.
func (c *conn) welcome(user string) {
	c.mu.Lock()
	c.user, c.welcomed = user, true
	c.mu.Unlock()
}

// setBurst marks the frames sent until setBurst(false) as a join's answer.
func (c *conn) setBurst(on bool) {
	c.mu.Lock()
	c.burst = on
	c.mu.Unlock()
}

func (c *conn) setBoards(boards []string) {
	c.mu.Lock()
	c.boards = boards
	c.mu.Unlock()
}

func (c *conn) info() (ClientInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return ClientInfo{
		Session: strconv.FormatUint(c.id, 10), User: c.user, RemoteAddr: c.remote,
		Boards: append([]string(nil), c.boards...), ConnectedAt: c.at,
	}, c.welcomed
}

// writeLoop writes the queue in batches until it is empty (then the
// goroutine ends) or a close was requested (then it closes the socket).
func (c *conn) writeLoop() {
	ctx := context.Background()
	var spare [][]byte // the last batch's array, empty: the queue's next one
	for {
		c.mu.Lock()
		batch := c.frames
		c.frames, c.exempt = spare, 0
		closing, code, reason := c.closing, c.code, c.reason
		if len(batch) == 0 && !closing {
			c.writing = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()

		c.sock.cork()
		failed := false
		for i, f := range batch {
			if err := c.ws.Write(ctx, websocket.MessageText, f); err != nil {
				failed = true
				break
			}
			batch[i] = nil
			if i%64 == 63 && c.dropping() {
				break
			}
		}
		if err := c.sock.uncork(); err != nil {
			failed = true
		}
		if failed {
			c.abort("write failed")
			closing, code = true, 0
		}
		if closing {
			if code != 0 {
				_ = c.ws.Close(websocket.StatusCode(code), reason)
			}
			break
		}
		spare = nil
		if cap(batch) <= maxSpare {
			spare = batch[:0]
		}
	}
	c.mu.Lock()
	if c.watchdog != nil {
		c.watchdog.Stop()
	}
	c.mu.Unlock()
	_ = c.ws.CloseNow()
	close(c.done)
}

// dropping reports whether a close that drops the queue was requested
// while the writer was busy: it then stops writing at once.
func (c *conn) dropping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing && dropsQueue(c.code)
}

// errSessionGone: the session process has terminated.
var errSessionGone = errors.New("session terminated")

// direct hands req to the session process. Nothing outside the session
// may reach into it once its Terminate has begun (Ergo 2.2.4 tears a
// process down without locks that outside callers respect): lifeMu orders
// each request before the session's termination mark.
func (c *conn) direct(req any) error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.sessionGone {
		return errSessionGone
	}
	_, err := c.session.Direct(req)
	return err
}

// sessionTerminating is called first thing in the session's Terminate.
func (c *conn) sessionTerminating() {
	c.lifeMu.Lock()
	c.sessionGone = true
	c.lifeMu.Unlock()
}

// stopSession ends the session process once the connection is over.
func (c *conn) stopSession() {
	wait := time.Millisecond
	for range 50 {
		err := c.direct(connEnded{})
		if err == nil || !errors.Is(err, lib.ErrProcessBusy) && !errors.Is(err, lib.ErrTimeout) {
			return
		}
		time.Sleep(wait)
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// readLoop reads client messages and hands them to the session until the
// connection ends. It runs in the HTTP handler's goroutine.
//
// A message must arrive whole within the ping timeout of its first frame
// (see ping): pongs between the frames of a message trickled byte by byte
// do not keep it alive.
func (c *conn) readLoop() {
	ctx := context.Background()
	for {
		typ, data, err := c.read(ctx)
		c.heard()
		if err != nil {
			switch code := websocket.CloseStatus(err); {
			case errors.Is(err, websocket.ErrMessageTooBig):
				c.Close(wire.CloseTooBig, "message too big")
			case code != -1:
				c.Close(int(code), "closed by the client")
			default:
				c.abort("read failed")
			}
			return
		}
		if typ != websocket.MessageText {
			c.Close(wire.CloseUnsupportedData, "binary messages are not supported")
			return
		}
		if !utf8.Valid(data) {
			c.Close(wire.CloseInvalidUTF8, "message is not valid UTF-8")
			return
		}
		if c.isClosing() {
			continue // keep reading so the close handshake completes
		}
		req, werr := wire.Decode(data)
		if err := c.direct(inbound{req: req, err: werr, at: time.Now()}); err != nil {
			if errors.Is(err, errSessionGone) || errors.Is(err, lib.ErrProcessTerminated) || errors.Is(err, lib.ErrProcessUnknown) {
				c.Close(wire.CloseTryAgain, "session ended")
			} else {
				c.Close(wire.CloseTryAgain, "server overloaded")
			}
			return
		}
	}
}

// read reads one message, marking the time it began.
func (c *conn) read(ctx context.Context) (websocket.MessageType, []byte, error) {
	typ, r, err := c.ws.Reader(ctx)
	if err != nil {
		return 0, nil, err
	}
	c.msgSince.Store(time.Now().UnixNano())
	data, err := io.ReadAll(r)
	c.msgSince.Store(0)
	return typ, data, err
}

// startKeepalive pings the client every pingEvery and cuts a client
// that was silent (no message, no pong) for pingWait. The timer costs no
// goroutine while it waits; a ping runs in the timer's goroutine.
func (c *conn) startKeepalive() {
	c.heard()
	if c.pingEvery <= 0 || c.pingWait <= 0 {
		return
	}
	c.mu.Lock()
	c.pingTimer = time.AfterFunc(c.pingEvery, c.ping)
	c.mu.Unlock()
}

// heard records that the client showed signs of life.
func (c *conn) heard() { c.lastHeard.Store(time.Now().UnixNano()) }

func (c *conn) ping() {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return
	}
	c.pings.Add(1)
	c.mu.Unlock()
	defer c.pings.Done()

	start := time.Now()
	if since := c.msgSince.Load(); since != 0 && start.Sub(time.Unix(0, since)) >= c.pingWait {
		metrics.ConnectionsDropped.WithLabelValues("slow_message").Inc()
		c.abort("keep-alive: message not finished in time")
		return
	}
	if silent := start.Sub(time.Unix(0, c.lastHeard.Load())); silent >= c.pingWait {
		metrics.ConnectionsDropped.WithLabelValues("idle").Inc()
		c.abort("keep-alive: client silent")
		return
	}
	// Wait for the pong at most until the next ping is due.
	ctx, cancel := context.WithTimeout(context.Background(), c.pingEvery)
	if c.ws.Ping(ctx) == nil {
		c.heard()
	}
	cancel()
	c.mu.Lock()
	if !c.stopped {
		c.pingTimer.Reset(max(c.pingEvery-time.Since(start), time.Millisecond))
	}
	c.mu.Unlock()
}

// finish waits for the socket to be closed and the keep-alive to stop,
// then stops the session; the reader has returned already.
func (c *conn) finish() {
	<-c.done
	c.mu.Lock()
	c.stopped = true
	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
	c.mu.Unlock()
	c.pings.Wait()
	c.stopSession()
}

var (
	errorPrefix = []byte(`{"t":"error"`)
	codeField   = []byte(`,"code":"`)
)

// countError counts an error frame by its code. The encoder writes code
// after ref, and a ref cannot hold `,"code":"` unescaped, so the first
// match is the field.
func countError(frame []byte) {
	if !bytes.HasPrefix(frame, errorPrefix) {
		return
	}
	i := bytes.Index(frame, codeField)
	if i < 0 {
		return
	}
	rest := frame[i+len(codeField):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return
	}
	metrics.Errors.WithLabelValues(string(rest[:j])).Inc()
}
