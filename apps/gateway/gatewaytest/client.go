package gatewaytest

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Wait is how long a client waits for a message it expects.
var Wait = 10 * time.Second

// Msg is a decoded server message.
type Msg map[string]any

// T is the message's type.
func (m Msg) T() string { s, _ := m["t"].(string); return s }

// Str returns a string field.
func (m Msg) Str(k string) string { s, _ := m[k].(string); return s }

// Int returns a number field as an int64.
func (m Msg) Int(k string) int64 { f, _ := m[k].(float64); return int64(f) }

// Has reports whether the field is present.
func (m Msg) Has(k string) bool { _, ok := m[k]; return ok }

// Client is a WebSocket client of a test node. A background goroutine
// reads (so pings are answered) into an unbounded queue, unless the client
// was dialed paused; every wait has a deadline.
type Client struct {
	t    testing.TB
	Name string
	WS   *websocket.Conn
	Raw  [][]byte // every text message received, in order (kept only if Record)

	mu      sync.Mutex
	queue   []Msg
	err     error // why reading stopped
	wake    chan struct{}
	started bool
	done    chan struct{}
	record  bool
}

// DialOptions shape a client.
type DialOptions struct {
	Header http.Header
	Paused bool // do not read until Resume: the client answers no ping
	Record bool // keep raw frames in Raw
	// ReadBuffer, if set, is the socket's receive buffer: small, it makes
	// a client that does not read fill the server's queue quickly.
	ReadBuffer int
	// OnPing is called for each ping the server sends.
	OnPing func()
	// TLS is the client's TLS configuration for wss:// URLs (nil: the
	// system's roots).
	TLS *tls.Config
	// LocalIP, if set, is the address the client connects from, like
	// 127.0.0.2 (any 127/8 address works on Linux): another client IP
	// for the per-address limits.
	LocalIP string
}

// Dial connects to url (ws://.../ws) and closes the client when the test
// ends.
func Dial(t testing.TB, url string) *Client {
	t.Helper()
	return DialWith(t, url, DialOptions{})
}

// DialWith connects with options.
func DialWith(t testing.TB, url string, o DialOptions) *Client {
	t.Helper()
	c, resp, err := TryDialWith(url, o)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (HTTP %d)", url, err, status)
	}
	cl := &Client{t: t, WS: c, wake: make(chan struct{}, 1), done: make(chan struct{}), record: o.Record}
	t.Cleanup(cl.Close)
	if !o.Paused {
		cl.Resume()
	}
	return cl
}

// TryDial dials without a test: the caller looks at the error and
// response.
func TryDial(url string, h http.Header) (*websocket.Conn, *http.Response, error) {
	return TryDialWith(url, DialOptions{Header: h})
}

// TryDialWith dials with options (Paused and Record do not apply).
func TryDialWith(url string, o DialOptions) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	opts := &websocket.DialOptions{HTTPHeader: o.Header}
	if o.OnPing != nil {
		opts.OnPingReceived = func(context.Context, []byte) bool { o.OnPing(); return true }
	}
	if o.ReadBuffer > 0 || o.TLS != nil || o.LocalIP != "" {
		d := &net.Dialer{}
		if o.LocalIP != "" {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(o.LocalIP)}
		}
		tr := &http.Transport{TLSClientConfig: o.TLS, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err == nil && o.ReadBuffer > 0 {
				_ = c.(*net.TCPConn).SetReadBuffer(o.ReadBuffer)
			}
			return c, err
		}}
		defer tr.CloseIdleConnections()
		opts.HTTPClient = &http.Client{Transport: tr}
	}
	c, resp, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(-1) // server messages have no limit
	return c, resp, nil
}

// Resume starts the background reader.
func (c *Client) Resume() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return
	}
	c.started = true
	go c.read()
}

func (c *Client) read() {
	defer close(c.done)
	for {
		typ, b, err := c.WS.Read(context.Background())
		c.mu.Lock()
		if err != nil {
			c.err = err
			c.mu.Unlock()
			c.signal()
			return
		}
		if c.record {
			c.Raw = append(c.Raw, b)
		}
		var m Msg
		if typ != websocket.MessageText {
			m = Msg{"t": "<binary>"}
		} else if jerr := json.Unmarshal(b, &m); jerr != nil {
			m = Msg{"t": "<invalid>", "raw": string(b)}
		}
		c.queue = append(c.queue, m)
		c.mu.Unlock()
		c.signal()
	}
}

func (c *Client) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Close closes the connection at once and waits for the reader.
func (c *Client) Close() {
	_ = c.WS.CloseNow()
	c.mu.Lock()
	started := c.started
	c.mu.Unlock()
	if started {
		<-c.done
	}
}

// Send writes v (a string is sent as is, anything else as JSON).
func (c *Client) Send(v any) {
	c.t.Helper()
	var b []byte
	switch x := v.(type) {
	case string:
		b = []byte(x)
	case []byte:
		b = x
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			c.t.Fatalf("%s: marshal: %v", c.Name, err)
		}
	}
	if err := c.TrySend(websocket.MessageText, b); err != nil {
		c.t.Fatalf("%s: send %.200s: %v", c.Name, b, err)
	}
}

// TrySend writes one message of type typ and returns the error.
func (c *Client) TrySend(typ websocket.MessageType, b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	return c.WS.Write(ctx, typ, b)
}

// Next returns the next message, failing the test after Wait.
func (c *Client) Next() Msg {
	c.t.Helper()
	m, err := c.NextWithin(Wait)
	if err != nil {
		c.t.Fatalf("%s: %v", c.Name, err)
	}
	return m
}

// NextWithin returns the next message, or an error if none came within d
// or the connection ended.
func (c *Client) NextWithin(d time.Duration) (Msg, error) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		if len(c.queue) > 0 {
			m := c.queue[0]
			c.queue[0] = nil
			c.queue = c.queue[1:]
			c.mu.Unlock()
			return m, nil
		}
		err := c.err
		c.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("connection ended: %w", err)
		}
		select {
		case <-c.wake:
		case <-deadline.C:
			return nil, fmt.Errorf("no message within %v", d)
		}
	}
}

// Expect returns the next message and checks its type.
func (c *Client) Expect(typ string) Msg {
	c.t.Helper()
	m := c.Next()
	if m.T() != typ {
		c.t.Fatalf("%s: want a %q message, got %v", c.Name, typ, m)
	}
	return m
}

// ExpectError returns the next message, which must be an error with code
// (and ref, unless ref is "*"; "" means no ref).
func (c *Client) ExpectError(code, ref string) Msg {
	c.t.Helper()
	m := c.Expect("error")
	if m.Str("code") != code {
		c.t.Fatalf("%s: want error %s, got %v", c.Name, code, m)
	}
	c.checkRef(m, ref)
	if m.Str("msg") == "" {
		c.t.Fatalf("%s: error without msg: %v", c.Name, m)
	}
	return m
}

func (c *Client) checkRef(m Msg, ref string) {
	c.t.Helper()
	switch {
	case ref == "*":
	case ref == "" && m.Has("ref"):
		c.t.Fatalf("%s: want no ref, got %v", c.Name, m)
	case ref != "" && m.Str("ref") != ref:
		c.t.Fatalf("%s: want ref %q, got %v", c.Name, ref, m)
	}
}

// Until skips messages until one of type typ ("": any type) for which
// keep (if set) is true.
func (c *Client) Until(typ string, keep func(Msg) bool) Msg {
	c.t.Helper()
	for {
		m := c.Next()
		if (typ == "" || m.T() == typ) && (keep == nil || keep(m)) {
			return m
		}
	}
}

// ExpectClose waits for the connection to end and checks the close code
// the server sent, skipping the messages before it.
func (c *Client) ExpectClose(code int) {
	c.t.Helper()
	got := c.WaitClose()
	if got != code {
		c.t.Fatalf("%s: want close %d, got %d (%v)", c.Name, code, got, c.err)
	}
}

// WaitClose waits for the connection to end and returns the close code
// (-1: no close frame).
func (c *Client) WaitClose() int {
	c.t.Helper()
	c.Resume()
	select {
	case <-c.done:
	case <-time.After(Wait):
		c.t.Fatalf("%s: connection still open after %v", c.Name, Wait)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return int(websocket.CloseStatus(c.err))
}

// Pending is the number of messages received and not yet taken.
func (c *Client) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue)
}

// Hello says hello as user (dev auth) and returns the welcome.
func (c *Client) Hello(user string) Msg {
	c.t.Helper()
	c.Name = user
	c.Send(Msg{"t": "hello", "ref": "hello", "user": user})
	m := c.Expect("welcome")
	if m.Str("user") != user {
		c.t.Fatalf("%s: welcome %v", user, m)
	}
	return m
}

// HelloToken says hello with a JWT and returns the welcome.
func (c *Client) HelloToken(token string) Msg {
	c.t.Helper()
	c.Send(Msg{"t": "hello", "ref": "hello", "token": token})
	m := c.Expect("welcome")
	c.Name = m.Str("user")
	return m
}

// Join joins board (since < 0: without since) and returns the joined
// message; the replayed evs and the presence that follow stay queued.
func (c *Client) Join(board string, since int64) Msg {
	c.t.Helper()
	msg := Msg{"t": "join", "ref": "j-" + board, "board": board}
	if since >= 0 {
		msg["since"] = since
	}
	c.Send(msg)
	m := c.Expect("joined")
	if m.Str("board") != board || m.Str("ref") != "j-"+board {
		c.t.Fatalf("%s: joined %v", c.Name, m)
	}
	return m
}

// JoinFull joins board and consumes the presence after it; it returns
// the joined message and the presence users.
func (c *Client) JoinFull(board string) (Msg, []string) {
	c.t.Helper()
	j := c.Join(board, -1)
	p := c.Expect("presence")
	return j, Strings(p["users"])
}

var opN struct {
	sync.Mutex
	n int
}

// NewOpID returns a unique op id.
func NewOpID() string {
	opN.Lock()
	defer opN.Unlock()
	opN.n++
	return fmt.Sprintf("op-%d", opN.n)
}

// Op sends an op with a fresh id and ref and returns them.
func (c *Client) Op(board string, op any) (id, ref string) {
	c.t.Helper()
	id = NewOpID()
	ref = "r-" + id
	c.Send(Msg{"t": "op", "ref": ref, "board": board, "id": id, "op": op})
	return id, ref
}

// Apply sends an op and waits for its ack (skipping other messages before
// it); it returns the ack.
func (c *Client) Apply(board string, op any) Msg {
	c.t.Helper()
	id, ref := c.Op(board, op)
	for {
		m := c.Next()
		if m.Str("ref") != ref {
			continue
		}
		if m.T() != "ack" || m.Str("id") != id {
			c.t.Fatalf("%s: want ack of %s, got %v", c.Name, id, m)
		}
		return m
	}
}

// Strings converts a decoded JSON list of strings.
func Strings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// ErrClosed reports whether err ended a client's connection.
func ErrClosed(err error) bool {
	var ce websocket.CloseError
	return errors.As(err, &ce)
}
