package gateway

import (
	"bytes"
	"context"
	"errors"
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

// conn is one client WebSocket. Its I/O runs in two goroutines: the reader
// (the HTTP handler's goroutine) hands each message to the session process
// with Direct, and the writer drains a bounded outbound queue. The session
// writes through conn's Send and Close (board.Output), which never block.
//
// Every way a connection ends goes through Close: the first code wins, the
// writer performs the close and then stops the session process.
type conn struct {
	ws      *websocket.Conn
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

	mu       sync.Mutex
	frames   [][]byte // queued, not yet written
	closing  bool
	code     int
	reason   string
	stopped  bool        // keep-alive stopped: the connection is over
	watchdog *time.Timer // cuts the socket if a requested close stalls
	user     string      // set once welcomed
	welcomed bool
	boards   []string

	wake chan struct{} // cap 1: frames queued or close requested
	done chan struct{} // closed when the writer has finished
}

func newConn(ws *websocket.Conn, id uint64, remote string, s *settings) *conn {
	return &conn{
		ws: ws, id: id, remote: remote, at: time.Now(), limit: s.outboundQueue,
		pingEvery: s.pingInterval, pingWait: s.pingTimeout,
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
}

// Send queues a text frame. It reports false when the outbound queue is
// full: the caller then closes the client (1013). After a close was
// requested frames are dropped and Send reports true: the stream ends
// there, without a gap.
func (c *conn) Send(frame []byte) bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return true
	}
	if len(c.frames) >= c.limit {
		c.mu.Unlock()
		return false
	}
	c.frames = append(c.frames, frame)
	c.mu.Unlock()
	countError(frame)
	c.signal()
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
	if code == wire.CloseTryAgain || code == closeAbnormal {
		clear(c.frames)
		c.frames = nil
	}
	if !c.stopped {
		c.watchdog = time.AfterFunc(closeGrace, func() { _ = c.ws.CloseNow() })
	}
	c.mu.Unlock()
	c.signal()
}

// abort cuts the socket at once: the peer is gone or does not answer.
func (c *conn) abort(reason string) {
	c.Close(closeAbnormal, reason)
	_ = c.ws.CloseNow()
}

func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
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

// writeLoop writes queued frames until a close is requested or a write
// fails, then closes the socket and stops the session process.
func (c *conn) writeLoop() {
	defer close(c.done)
	ctx := context.Background()
	var batch [][]byte
	for range c.wake {
		c.mu.Lock()
		batch, c.frames = c.frames, batch[:0]
		closing, code, reason := c.closing, c.code, c.reason
		c.mu.Unlock()
		for i, f := range batch {
			if err := c.ws.Write(ctx, websocket.MessageText, f); err != nil {
				c.abort("write failed")
				closing, code = true, 0
				break
			}
			batch[i] = nil
			if i%64 == 63 && c.dropping() {
				break
			}
		}
		if closing {
			if code != 0 {
				_ = c.ws.Close(websocket.StatusCode(code), reason)
			}
			break
		}
		if cap(batch) > 64 {
			batch = nil // keep an idle connection small
		}
	}
	c.mu.Lock()
	code := c.code
	if c.watchdog != nil {
		c.watchdog.Stop()
	}
	c.mu.Unlock()
	_ = c.ws.CloseNow()
	metrics.Closes.WithLabelValues(strconv.Itoa(code)).Inc()
}

// errSessionGone: the session process has terminated.
var errSessionGone = errors.New("session terminated")

// direct hands req to the session process. Ergo 2.2.4 reads a process's
// channels without a lock while the process is cleaned up, so nothing
// outside the session may touch it once its Terminate has begun: lifeMu
// orders each request before the session's termination mark.
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
	for try := 0; try < 50; try++ {
		err := c.direct(connEnded{})
		if err == nil || !errors.Is(err, lib.ErrProcessBusy) && !errors.Is(err, lib.ErrTimeout) {
			return
		}
		time.Sleep(wait)
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// dropping reports whether a close that drops the queue was requested
// while the writer was busy: it then stops writing at once.
func (c *conn) dropping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing && (c.code == wire.CloseTryAgain || c.code == closeAbnormal)
}

// readLoop reads client messages and hands them to the session until the
// connection ends. It runs in the HTTP handler's goroutine.
func (c *conn) readLoop() {
	ctx := context.Background()
	for {
		typ, data, err := c.ws.Read(ctx)
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
	if silent := start.Sub(time.Unix(0, c.lastHeard.Load())); silent >= c.pingWait {
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

// finish waits for the writer and the keep-alive to end and stops the
// session; the reader has returned already.
func (c *conn) finish() {
	<-c.done
	c.stopSession()
	c.mu.Lock()
	c.stopped = true
	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
	c.mu.Unlock()
	c.pings.Wait()
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
