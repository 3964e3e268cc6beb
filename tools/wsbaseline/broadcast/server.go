// Package broadcast is the plain baseline Tavern is measured against: a
// coder/websocket server that speaks the frames of PROTOCOL.md with no
// actors and no storage. Each op is answered at once with an ack (seq
// from a per-board counter) and broadcast as an ev to every member of
// its board, in seq order; a member whose bounded outbound queue (Queue
// messages, allocated only as it fills) is full is closed with 1013, as
// Tavern does. One goroutine reads and one writes per connection, as in
// coder/websocket's chat example.
package broadcast

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config shapes the server.
type Config struct {
	// Queue is each connection's outbound queue, in messages. Default
	// 1024, Tavern's default.
	Queue int
	// MaxFrame is the largest client message. Default 65536.
	MaxFrame int64
	// Node is the name the welcome carries. Default "wsbaseline".
	Node string
	Log  *slog.Logger
}

// Server is the baseline's HTTP handler: /ws, /healthz, /readyz, /metrics.
type Server struct {
	cfg Config
	mux *http.ServeMux

	mu     sync.Mutex
	boards map[string]*board
	conns  sync.WaitGroup
}

type board struct {
	id      string
	mu      sync.Mutex
	seq     int64
	members map[*conn]string // conn -> user
}

type conn struct {
	ws     *websocket.Conn
	cancel context.CancelFunc
	once   sync.Once
	user   string
	boards map[string]*board
	limit  int

	// The outbound queue: a slice that grows with use (an idle
	// connection holds none), at most limit messages.
	mu    sync.Mutex
	queue [][]byte
	wake  chan struct{}
}

// New returns a server.
func New(cfg Config) *Server {
	if cfg.Queue <= 0 {
		cfg.Queue = 1024
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = 65536
	}
	if cfg.Node == "" {
		cfg.Node = "wsbaseline"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), boards: map[string]*board{}}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.mux.HandleFunc("/ws", s.serveWS)
	s.mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	s.mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ready\n")) })
	s.mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Wait waits for every connection to end.
func (s *Server) Wait() { s.conns.Wait() }

type request struct {
	T     string          `json:"t"`
	Ref   *string         `json:"ref"`
	User  string          `json:"user"`
	Board string          `json:"board"`
	ID    string          `json:"id"`
	Op    json.RawMessage `json:"op"`
	Since *int64          `json:"since"`
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	s.conns.Add(1)
	defer s.conns.Done()
	ws.SetReadLimit(s.cfg.MaxFrame)
	ctx, cancel := context.WithCancel(r.Context())
	c := &conn{ws: ws, cancel: cancel, boards: map[string]*board{}, limit: s.cfg.Queue, wake: make(chan struct{}, 1)}
	go c.writer(ctx)
	defer func() {
		for _, b := range c.boards {
			s.leave(c, b)
		}
		cancel()
		ws.CloseNow()
	}()
	for {
		typ, msg, err := ws.Read(ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			ws.Close(websocket.StatusUnsupportedData, "binary frames are refused")
			return
		}
		var req request
		if err := json.Unmarshal(msg, &req); err != nil || req.T == "" {
			c.send(errorFrame(req.Ref, "bad_request", "not a message"))
			continue
		}
		if c.user == "" && req.T != "hello" {
			c.send(errorFrame(req.Ref, "unauthorized", "hello first"))
			ws.Close(websocket.StatusPolicyViolation, "hello first")
			return
		}
		switch req.T {
		case "hello":
			if c.user != "" || req.User == "" {
				c.send(errorFrame(req.Ref, "bad_request", "bad hello"))
				continue
			}
			c.user = req.User
			b := appendHead(nil, "welcome", req.Ref)
			b = appendStr(b, "user", c.user)
			b = appendStr(b, "node", s.cfg.Node)
			b = append(b, `,"limits":{"max_frame":`...)
			b = strconv.AppendInt(b, s.cfg.MaxFrame, 10)
			b = append(b, `,"ops_per_sec":200,"ops_burst":200}}`...)
			c.send(b)
		case "join":
			s.join(c, req)
		case "op":
			bd := c.boards[req.Board]
			if bd == nil {
				c.send(errorFrame(req.Ref, "not_joined", "join the board first"))
				continue
			}
			bd.op(c, req)
		case "leave":
			if bd := c.boards[req.Board]; bd != nil {
				s.leave(c, bd)
				delete(c.boards, req.Board)
			}
			b := appendHead(nil, "left", req.Ref)
			c.send(append(appendStr(b, "board", req.Board), '}'))
		case "ping":
			c.send(append(appendHead(nil, "pong", req.Ref), '}'))
		default:
			c.send(errorFrame(req.Ref, "bad_request", "unknown type"))
		}
	}
}

func (s *Server) join(c *conn, req request) {
	s.mu.Lock()
	bd := s.boards[req.Board]
	if bd == nil {
		bd = &board{id: req.Board, members: map[*conn]string{}}
		s.boards[req.Board] = bd
	}
	s.mu.Unlock()
	c.boards[req.Board] = bd
	bd.mu.Lock()
	defer bd.mu.Unlock()
	_, again := bd.members[c]
	bd.members[c] = c.user
	b := appendHead(nil, "joined", req.Ref)
	b = appendStr(b, "board", bd.id)
	b = appendInt(b, "seq", bd.seq)
	b = append(b, `,"snapshot":{"entities":[]}}`...)
	c.send(b)
	users := map[string]bool{}
	for _, u := range bd.members {
		users[u] = true
	}
	p := appendHead(nil, "presence", nil)
	p = appendStr(p, "board", bd.id)
	p = append(p, `,"users":[`...)
	first := true
	for u := range users {
		if !first {
			p = append(p, ',')
		}
		first = false
		p = strconv.AppendQuote(p, u)
	}
	c.send(append(p, "]}"...))
	if !again {
		d := appendHead(nil, "presence", nil)
		d = appendStr(d, "board", bd.id)
		d = append(d, `,"joins":[`...)
		d = strconv.AppendQuote(d, c.user)
		d = append(d, `],"leaves":[]}`...)
		for m := range bd.members {
			if m != c {
				m.send(d)
			}
		}
	}
}

func (s *Server) leave(c *conn, bd *board) {
	bd.mu.Lock()
	defer bd.mu.Unlock()
	delete(bd.members, c)
	d := appendHead(nil, "presence", nil)
	d = appendStr(d, "board", bd.id)
	d = append(d, `,"joins":[],"leaves":[`...)
	d = strconv.AppendQuote(d, c.user)
	d = append(d, "]}"...)
	for m := range bd.members {
		m.send(d)
	}
}

// op acknowledges at once and broadcasts, under the board's lock so every
// member gets the board's evs in seq order.
func (bd *board) op(c *conn, req request) {
	if req.ID == "" || len(req.Op) == 0 || req.Op[0] != '{' {
		c.send(errorFrame(req.Ref, "bad_request", "op needs id and op"))
		return
	}
	bd.mu.Lock()
	defer bd.mu.Unlock()
	bd.seq++
	a := appendHead(nil, "ack", req.Ref)
	a = appendStr(a, "board", bd.id)
	a = appendStr(a, "id", req.ID)
	a = appendInt(a, "seq", bd.seq)
	c.send(append(a, '}'))
	ev := make([]byte, 0, 64+len(bd.id)+len(req.ID)+len(c.user)+len(req.Op))
	ev = append(ev, `{"t":"ev"`...)
	ev = appendStr(ev, "board", bd.id)
	ev = appendInt(ev, "seq", bd.seq)
	ev = appendStr(ev, "user", c.user)
	ev = appendStr(ev, "id", req.ID)
	ev = append(ev, `,"op":`...)
	ev = append(ev, req.Op...)
	ev = append(ev, '}')
	for m := range bd.members {
		m.send(ev)
	}
}

// send queues b; a full queue closes the connection with 1013, never
// skipping a message.
func (c *conn) send(b []byte) {
	c.mu.Lock()
	if len(c.queue) >= c.limit {
		c.mu.Unlock()
		c.once.Do(func() {
			go c.ws.Close(websocket.StatusTryAgainLater, "outbound queue full")
			c.cancel()
		})
		return
	}
	c.queue = append(c.queue, b)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// writer writes the queue in order, one message per frame.
func (c *conn) writer(ctx context.Context) {
	var batch [][]byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		}
		c.mu.Lock()
		batch, c.queue = c.queue, batch[:0]
		if cap(c.queue) > 64 {
			c.queue = nil // let a burst's memory go
		}
		c.mu.Unlock()
		for _, b := range batch {
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := c.ws.Write(wctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				c.cancel()
				return
			}
		}
		clear(batch)
		if cap(batch) > 64 {
			batch = nil
		}
	}
}

func appendHead(b []byte, t string, ref *string) []byte {
	b = append(b, `{"t":`...)
	b = strconv.AppendQuote(b, t)
	if ref != nil {
		b = appendStr(b, "ref", *ref)
	}
	return b
}

func appendStr(b []byte, k, v string) []byte {
	b = append(b, ',', '"')
	b = append(b, k...)
	b = append(b, '"', ':')
	s, _ := json.Marshal(v)
	return append(b, s...)
}

func appendInt(b []byte, k string, v int64) []byte {
	b = append(b, ',', '"')
	b = append(b, k...)
	b = append(b, '"', ':')
	return strconv.AppendInt(b, v, 10)
}

func errorFrame(ref *string, code, msg string) []byte {
	b := appendHead(nil, "error", ref)
	b = appendStr(b, "code", code)
	b = appendStr(b, "msg", msg)
	return append(b, '}')
}
