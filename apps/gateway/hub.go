package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/ergo-services/ergo/gen"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/tavernhq/tavern/apps/gateway/web"
	"github.com/tavernhq/tavern/apps/gateway/wire"
	"github.com/tavernhq/tavern/internal/metrics"
)

// hub is what the gateway's HTTP handlers and processes share: the
// listener, the HTTP server, the set of open connections and the runtime
// op rate. tavern_gateway starts and stops it.
type hub struct {
	set   *settings
	log   *slog.Logger
	ready func(context.Context) error
	auth  *authenticator
	rate  atomic.Pointer[opsRate]
	orig  *originPolicy
	guard *connGuard // every TCP connection of the listeners

	mu       sync.Mutex
	ln       net.Listener
	bound    string // the address the listener got
	srv      *http.Server
	serving  chan struct{} // closed when Serve returned
	redirLn  net.Listener  // plain HTTP redirecting to TLS, if configured
	redirect *http.Server
	sup      gen.Process // session_sup
	conns    map[*conn]struct{}
	perIP    map[string]*ipState
	swept    time.Time
	nextID   uint64
	draining bool // no new clients: a drain or a stop is under way
	wg       sync.WaitGroup
}

type ipState struct {
	conns int
	lim   *rate.Limiter // new connections per second
}

// opsRate is the op rate limit; gen changes with every update so sessions
// notice it with one atomic load per op.
type opsRate struct {
	perSec float64
	burst  int
	gen    uint64
}

func newHub(set *settings, log *slog.Logger, ready func(context.Context) error) *hub {
	h := &hub{
		set: set, log: log, ready: ready,
		auth:  &authenticator{mode: set.authMode, secret: set.secret},
		orig:  newOriginPolicy(set.origins, set.allowNoOrigin, set.tls != nil),
		guard: newConnGuard(set.maxConns, set.maxConnsPerIP),
		conns: make(map[*conn]struct{}),
		perIP: make(map[string]*ipState),
	}
	h.rate.Store(&opsRate{perSec: set.opsPerSec, burst: set.opsBurst, gen: 1})
	return h
}

func (h *hub) setOpsRate(perSec float64, burst int) error {
	if perSec <= 0 || burst < 1 {
		return fmt.Errorf("%w: ops_per_sec must be > 0 and ops_burst >= 1", ErrBadSetting)
	}
	for {
		old := h.rate.Load()
		if h.rate.CompareAndSwap(old, &opsRate{perSec: perSec, burst: burst, gen: old.gen + 1}) {
			return nil
		}
	}
}

// listen binds the listener if it is not bound.
func (h *hub) listen() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ln != nil {
		return nil
	}
	addr := h.set.listen
	if h.bound != "" {
		addr = h.bound // a restart keeps the port it had
	}
	ln, err := bindListener(addr)
	if err != nil {
		return err
	}
	if h.set.redirectHTTP != "" && h.set.tls != nil {
		rl, err := bindListener(h.set.redirectHTTP)
		if err != nil {
			ln.Close()
			return err
		}
		h.redirLn = rl
	}
	h.ln = ln
	h.bound = ln.Addr().String()
	return nil
}

// redirectToTLS sends plain-HTTP requests to the same path on the TLS
// listener's port.
func (h *hub) redirectToTLS(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		host = hh
	}
	_, port, _ := net.SplitHostPort(h.addr())
	if port != "443" && port != "" {
		host = net.JoinHostPort(host, port)
	}
	http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
}

func (h *hub) addr() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bound
}

// start serves HTTP on the bound listener; sup is session_sup.
func (h *hub) start(sup gen.Process) error {
	if err := h.listen(); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sup = sup
	h.draining = false
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", h.serveWS)
	mux.HandleFunc("/healthz", h.serveHealth)
	mux.HandleFunc("/readyz", h.serveReady)
	mux.Handle("/metrics", promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{}))
	mux.Handle("/", web.Handler())
	srv := h.httpServer(mux)
	var ln net.Listener = guardListener{Listener: h.ln, g: h.guard}
	if h.set.tls != nil {
		srv.TLSConfig = h.set.tls.Clone()
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	h.srv = srv
	done := make(chan struct{})
	h.serving = done
	var redirDone chan struct{}
	if h.redirLn != nil {
		h.redirect = h.httpServer(http.HandlerFunc(h.redirectToTLS))
		redirDone = make(chan struct{})
		go func(rs *http.Server, rl net.Listener) {
			defer close(redirDone)
			_ = rs.Serve(rl)
		}(h.redirect, guardListener{Listener: h.redirLn, g: h.guard})
	}
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.log.Error("http server stopped", "err", err)
		}
		if redirDone != nil {
			<-redirDone
		}
	}()
	register(h)
	h.log.Info("gateway listening", "addr", h.bound, "tls", h.set.tls != nil, "auth", h.set.authMode)
	return nil
}

// Bounds of the HTTP server beside the handshake timeout.
const (
	// httpWriteTimeout bounds writing a plain HTTP response (/metrics,
	// the page) to a client that reads slowly. A WebSocket is hijacked
	// before it applies, and net/http clears the deadline then.
	httpWriteTimeout = 30 * time.Second
	// httpIdleTimeout closes a keep-alive connection idle this long.
	httpIdleTimeout = time.Minute
	// maxHeaderBytes bounds a request's headers (a browser's upgrade
	// request with its cookies fits).
	maxHeaderBytes = 32 << 10
)

// httpServer returns an HTTP server for handler with the gateway's
// bounds: the TLS handshake and the request headers within
// handshake_timeout_ms (a slowloris sending headers byte by byte is cut
// then), the request whole within it too (no endpoint takes a body).
func (h *hub) httpServer(handler http.Handler) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: h.set.handshakeTimeout,
		ReadTimeout:       h.set.handshakeTimeout,
		WriteTimeout:      httpWriteTimeout,
		IdleTimeout:       httpIdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(h.log.Handler(), slog.LevelDebug),
	}
}

// stopListening closes the listener and the HTTP server's idle and
// in-flight plain HTTP connections (WebSockets are hijacked: they are not
// the server's any more).
func (h *hub) stopListening() {
	h.mu.Lock()
	srv, redir, done, ln, rl := h.srv, h.redirect, h.serving, h.ln, h.redirLn
	h.srv, h.ln, h.serving, h.redirect, h.redirLn = nil, nil, nil, nil, nil
	h.draining = true
	h.mu.Unlock()
	if redir != nil {
		_ = redir.Close()
	} else if rl != nil {
		_ = rl.Close() // bound, never served
	}
	if srv != nil {
		_ = srv.Close()
		<-done
	} else if ln != nil {
		_ = ln.Close()
	}
}

// closeAll closes every connection with code; it returns how many.
func (h *hub) closeAll(code int, reason string) int {
	h.mu.Lock()
	list := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		list = append(list, c)
	}
	h.mu.Unlock()
	for _, c := range list {
		c.Close(code, reason)
	}
	return len(list)
}

// shutdown stops listening, closes every client with code and waits for
// the connections to end, or cuts them when ctx is done.
func (h *hub) shutdown(ctx context.Context, code int, reason string) error {
	unregister(h)
	h.stopListening()
	h.closeAll(code, reason)
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	h.mu.Lock()
	for c := range h.conns {
		_ = c.ws.CloseNow()
	}
	h.mu.Unlock()
	<-done
	return ctx.Err()
}

// drain refuses new clients (and /readyz) and closes every client with
// 1012; the listener stays open for /healthz and /metrics.
func (h *hub) drain() int {
	h.mu.Lock()
	h.draining = true
	h.mu.Unlock()
	return h.closeAll(wire.CloseRestart, "server restarting; reconnect elsewhere")
}

func (h *hub) isDraining() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.draining
}

func (h *hub) notice(text string) int {
	frame := wire.Notice(text)
	h.mu.Lock()
	list := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		list = append(list, c)
	}
	h.mu.Unlock()
	n := 0
	for _, c := range list {
		if _, ok := c.info(); !ok {
			continue // no hello yet
		}
		if !c.Send(frame) {
			c.Close(wire.CloseTryAgain, "client too slow")
			continue
		}
		n++
	}
	return n
}

func (h *hub) clients() []ClientInfo {
	h.mu.Lock()
	list := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		list = append(list, c)
	}
	h.mu.Unlock()
	out := make([]ClientInfo, 0, len(list))
	for _, c := range list {
		if in, ok := c.info(); ok {
			out = append(out, in)
		}
	}
	return out
}

func (h *hub) serveHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok\n"))
}

func (h *hub) serveReady(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if h.isDraining() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("draining\n"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := h.ready(ctx); err != nil {
		h.log.Warn("not ready", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// admit checks the connection limits for a new client from ip; it returns
// the refusal reason, or "" and registers the attempt.
func (h *hub) admit(ip string) (status int, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.draining || h.sup == nil {
		return http.StatusServiceUnavailable, "draining"
	}
	if h.set.maxConns > 0 && len(h.conns) >= h.set.maxConns {
		return http.StatusServiceUnavailable, "max_conns"
	}
	now := time.Now()
	h.sweep(now)
	st := h.perIP[ip]
	if st == nil {
		st = &ipState{}
		if h.set.connRatePerIP > 0 {
			st.lim = rate.NewLimiter(rate.Limit(h.set.connRatePerIP), max(1, int(h.set.connRatePerIP)))
		}
		h.perIP[ip] = st
	}
	if h.set.maxConnsPerIP > 0 && st.conns >= h.set.maxConnsPerIP {
		return http.StatusTooManyRequests, "max_conns_per_ip"
	}
	if st.lim != nil && !st.lim.AllowN(now, 1) {
		return http.StatusTooManyRequests, "conn_rate_per_ip"
	}
	st.conns++
	return 0, ""
}

// sweep forgets addresses with no connection whose rate bucket is full
// again, at most every few seconds. h.mu is held.
func (h *hub) sweep(now time.Time) {
	if now.Sub(h.swept) < 5*time.Second {
		return
	}
	h.swept = now
	for ip, st := range h.perIP {
		if st.conns == 0 && (st.lim == nil || st.lim.TokensAt(now) >= float64(st.lim.Burst())) {
			delete(h.perIP, ip)
		}
	}
}

func (h *hub) release(ip string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if st := h.perIP[ip]; st != nil {
		st.conns--
	}
}

// serveWS upgrades a client to a WebSocket and runs its connection: the
// session process under session_sup, the writer goroutine, and the reader
// in this goroutine until the connection ends.
func (h *hub) serveWS(w http.ResponseWriter, r *http.Request) {
	ip := clientKey(r.RemoteAddr)
	if reason := h.orig.check(r); reason != "" {
		metrics.ConnectionsRefused.WithLabelValues(reason).Inc()
		msg := "Origin not allowed"
		if reason == refusedNoOrigin {
			msg = "Origin header required"
		}
		http.Error(w, http.StatusText(http.StatusForbidden)+": "+msg, http.StatusForbidden)
		return
	}
	if status, reason := h.admit(ip); status != 0 {
		metrics.ConnectionsRefused.WithLabelValues(reason).Inc()
		w.Header().Set("Retry-After", "1")
		http.Error(w, http.StatusText(status)+": "+reason, status)
		return
	}
	defer h.release(ip)

	cw := &corkWriter{ResponseWriter: w}
	// The origin was checked above (originPolicy); coder/websocket's own
	// check matches other rules (host patterns), so it is off.
	ws, err := websocket.Accept(cw, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		metrics.ConnectionsRefused.WithLabelValues("handshake").Inc()
		h.log.Debug("websocket handshake failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	ws.SetReadLimit(int64(h.set.maxFrame))

	h.mu.Lock()
	if h.draining || h.sup == nil {
		h.mu.Unlock()
		metrics.ConnectionsRefused.WithLabelValues("draining").Inc()
		_ = ws.Close(wire.CloseRestart, "server restarting")
		return
	}
	h.nextID++
	c := newConn(ws, cw.conn, h.nextID, r.RemoteAddr, h.set)
	sup := h.sup
	h.conns[c] = struct{}{}
	h.wg.Add(1)
	h.mu.Unlock()
	metrics.Connections.Inc()
	defer func() {
		h.mu.Lock()
		delete(h.conns, c)
		h.mu.Unlock()
		metrics.Connections.Dec()
		h.wg.Done()
	}()

	p, err := startSession(sup, h, c)
	if err != nil {
		h.log.Warn("cannot start a session", "err", err)
		metrics.ConnectionsRefused.WithLabelValues("session").Inc()
		metrics.Closes.WithLabelValues("1013").Inc()
		_ = ws.Close(wire.CloseTryAgain, "server busy")
		return
	}
	c.session = p
	c.startKeepalive()
	c.readLoop()
	c.finish()
}
