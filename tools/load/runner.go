package load

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Runner drives a run: it connects the clients, then runs phases one
// after another (Fixed, Saturate, FindMax), each measured on its own, and
// keeps a time series across them.
type Runner struct {
	cfg        Config
	stats      *Stats
	clients    []*client
	httpClient *http.Client
	connected  atomic.Int64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	plan       atomic.Pointer[plan]
	phases     atomic.Int32
	phaseName  atomic.Pointer[string]
	offered    atomic.Uint64 // float64 bits
	seqChanged chan struct{}

	mu       sync.Mutex
	maxAcked map[string]int64
	acks     []AckRecord
	refusals []Refusal
	phaseLog []PhaseResult
}

// plan is what the clients' senders do now.
type plan struct {
	phase    int
	mode     int // modeIdle, modeOpen, modeClosed
	interval time.Duration
	window   int // closed loop: ops in flight per client
	changed  chan struct{}
}

const (
	modeIdle = iota
	modeOpen
	modeClosed
)

// New returns a runner; nothing is connected before Connect.
func New(cfg Config) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{cfg: cfg, stats: newStats(time.Now()), ctx: ctx, cancel: cancel,
		maxAcked: map[string]int64{}, seqChanged: make(chan struct{}, 1)}
	tr := &http.Transport{MaxIdleConnsPerHost: 0, DisableKeepAlives: false}
	if cfg.TLS != nil {
		tr.TLSClientConfig = cfg.TLS.Clone()
	} else {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	r.httpClient = &http.Client{Transport: tr}
	r.plan.Store(&plan{mode: modeIdle, changed: make(chan struct{})})
	idle := "connect"
	r.phaseName.Store(&idle)
	for i := range cfg.Clients {
		r.clients = append(r.clients, newClient(r, i))
	}
	return r, nil
}

// Started is when the runner was made: time 0 of its series.
func (r *Runner) Started() time.Time { return r.stats.start }

// Config is the runner's configuration, with defaults applied.
func (r *Runner) Config() Config { return r.cfg }

// Connected is the number of clients connected now.
func (r *Runner) Connected() int { return int(r.connected.Load()) }

// Connect starts every client and waits until all of them have joined
// their boards, or ctx ends. Clients dial ConnectConcurrency at a time.
func (r *Runner) Connect(ctx context.Context) error {
	r.wg.Add(2)
	go r.tickLoop()
	go r.watchdog()
	sem := make(chan struct{}, r.cfg.ConnectConcurrency)
	for _, c := range r.clients {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("connect: %w", ctx.Err())
		}
		r.wg.Add(2)
		go func() {
			defer r.wg.Done()
			c.run(r.ctx)
		}()
		go func() {
			defer r.wg.Done()
			c.sendLoop(r.ctx)
		}()
		go func() {
			select {
			case <-c.ready:
			case <-ctx.Done():
			case <-r.ctx.Done():
			}
			<-sem
		}()
	}
	for _, c := range r.clients {
		select {
		case <-c.ready:
		case <-ctx.Done():
			return fmt.Errorf("connect: %d of %d clients joined: %w", r.joinedCount(), len(r.clients), ctx.Err())
		}
	}
	return nil
}

func (r *Runner) joinedCount() int {
	n := 0
	for _, c := range r.clients {
		select {
		case <-c.ready:
			n++
		default:
		}
	}
	return n
}

// Close stops every client and closes its connection.
func (r *Runner) Close() {
	r.setPlan(modeIdle, 0, 0, 0)
	r.cancel()
	r.wg.Wait()
	r.stats.tick(time.Now(), 0, "end", 0)
}

func (r *Runner) setPlan(mode, phase int, interval time.Duration, window int) {
	old := r.plan.Swap(&plan{phase: phase, mode: mode, interval: interval, window: window, changed: make(chan struct{})})
	close(old.changed)
}

func (r *Runner) newPhase(name string, offered float64) int {
	p := int(r.phases.Add(1))
	r.phaseName.Store(&name)
	r.offered.Store(floatBits(offered))
	return p
}

// sendLoop sends the client's ops as the plan says.
func (c *client) sendLoop(ctx context.Context) {
	select {
	case <-c.ready:
	case <-ctx.Done():
		return
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		p := c.r.plan.Load()
		switch p.mode {
		case modeIdle:
			select {
			case <-ctx.Done():
				return
			case <-p.changed:
			}
		case modeClosed:
			for ctx.Err() == nil && c.r.plan.Load() == p {
				if c.room(p.window) {
					c.send(p.phase)
					continue
				}
				timer.Reset(50 * time.Millisecond)
				select {
				case <-c.wake:
				case <-timer.C:
				case <-p.changed:
				case <-ctx.Done():
				}
			}
			if ctx.Err() != nil {
				return
			}
		case modeOpen:
			next := time.Now().Add(time.Duration(rand.Int64N(int64(p.interval) + 1)))
			for c.r.plan.Load() == p {
				timer.Reset(time.Until(next))
				select {
				case <-ctx.Done():
					return
				case <-p.changed:
					continue
				case <-timer.C:
				}
				c.send(p.phase)
				next = next.Add(p.interval)
				if lag := time.Since(next); lag > time.Second {
					next = time.Now() // do not burst to catch up after a stall
				}
			}
		}
	}
}

func (r *Runner) tickLoop() {
	defer r.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case now := <-t.C:
			r.stats.tick(now, r.Connected(), *r.phaseName.Load(), floatFrom(r.offered.Load()))
		}
	}
}

// watchdog drops connections that wait too long for an answer.
func (r *Runner) watchdog() {
	defer r.wg.Done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case now := <-t.C:
			for _, c := range r.clients {
				c.checkStall(now.UnixNano(), r.cfg.StallTimeout)
			}
		}
	}
}

func (r *Runner) noteAck(a AckRecord) {
	r.mu.Lock()
	if a.Seq > r.maxAcked[a.Board] {
		r.maxAcked[a.Board] = a.Seq
	}
	if r.cfg.Record {
		r.acks = append(r.acks, a)
	}
	r.mu.Unlock()
}

func (r *Runner) noteRefusal(f Refusal) {
	r.cfg.Log.Debug("op refused", "board", f.Board, "id", f.ID, "code", f.Code, "msg", f.Msg)
	if r.cfg.Record {
		r.mu.Lock()
		r.refusals = append(r.refusals, f)
		r.mu.Unlock()
	}
}

func (r *Runner) noteSeq() {
	select {
	case r.seqChanged <- struct{}{}:
	default:
	}
}

// Fixed sends at rate ops per second in total (spread evenly over the
// clients, open loop) for d, then settles (see Settle) and returns what
// the phase measured.
func (r *Runner) Fixed(ctx context.Context, name string, rate float64, d time.Duration) PhaseResult {
	ph := r.newPhase(name, rate)
	interval := time.Duration(float64(len(r.clients)) / rate * float64(time.Second))
	r.setPlan(modeOpen, ph, max(interval, time.Microsecond), 0)
	sleep(ctx, d)
	r.setPlan(modeIdle, 0, 0, 0)
	r.Settle(ctx, r.cfg.StepSettle)
	res := r.stats.mergePhase(ph).result(name, "fixed", rate, d)
	r.logPhase(res)
	return res
}

// Saturate runs closed loop for d: every client keeps Window ops in
// flight. It measures the most the system acknowledges.
func (r *Runner) Saturate(ctx context.Context, name string, d time.Duration) PhaseResult {
	return r.SaturateWindow(ctx, name, d, r.cfg.Window)
}

// SaturateWindow is Saturate with window ops in flight per client.
func (r *Runner) SaturateWindow(ctx context.Context, name string, d time.Duration, window int) PhaseResult {
	ph := r.newPhase(name, 0)
	r.setPlan(modeClosed, ph, 0, min(max(window, 1), r.cfg.Window))
	sleep(ctx, d)
	r.setPlan(modeIdle, 0, 0, 0)
	r.Settle(ctx, r.cfg.StepSettle)
	res := r.stats.mergePhase(ph).result(name, "saturate", 0, d)
	r.logPhase(res)
	return res
}

func (r *Runner) logPhase(p PhaseResult) {
	r.mu.Lock()
	r.phaseLog = append(r.phaseLog, p)
	r.mu.Unlock()
	idle := "idle"
	r.phaseName.Store(&idle)
	r.offered.Store(0)
}

// Settle waits, sending nothing new, until every op is acknowledged and
// every connected member has every acknowledged op of its board, or
// until timeout. It reports whether everything settled.
func (r *Runner) Settle(ctx context.Context, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if r.settled() {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		sleep(ctx, 20*time.Millisecond)
	}
}

// Pending is the number of ops sent and not yet acknowledged.
func (r *Runner) Pending() int {
	n := 0
	for _, c := range r.clients {
		c.mu.Lock()
		n += len(c.pending)
		c.mu.Unlock()
	}
	return n
}

func (r *Runner) settled() bool {
	r.mu.Lock()
	acked := make(map[string]int64, len(r.maxAcked))
	for k, v := range r.maxAcked {
		acked[k] = v
	}
	r.mu.Unlock()
	for _, c := range r.clients {
		c.mu.Lock()
		ok := len(c.pending) == 0
		for _, b := range c.boards {
			if !b.joined || b.last < acked[b.name] {
				ok = false
			}
		}
		c.mu.Unlock()
		if !ok {
			return false
		}
	}
	return true
}

// Result is everything a run measured.
type Result struct {
	Clients   int           `json:"clients"`
	BoardSize int           `json:"board_size"`
	Nodes     []string      `json:"nodes"`
	Kind      string        `json:"kind"`
	Started   time.Time     `json:"started"`
	Phases    []PhaseResult `json:"phases"`
	Total     PhaseResult   `json:"total"`
	Counters  Counters      `json:"counters"`
	Series    []Second      `json:"series"`
	Max       *MaxResult    `json:"max,omitempty"`
}

// Result returns what the run has measured so far.
func (r *Runner) Result() Result {
	r.mu.Lock()
	phases := append([]PhaseResult(nil), r.phaseLog...)
	r.mu.Unlock()
	var secs float64
	for _, p := range phases {
		secs += p.Seconds
	}
	return Result{
		Clients: r.cfg.Clients, BoardSize: r.cfg.BoardSize, Nodes: r.cfg.URLs, Kind: r.cfg.Kind,
		Started: r.stats.start, Phases: phases,
		Total:    r.stats.mergePhase(-1).result("total", "all", 0, time.Duration(secs*float64(time.Second))),
		Counters: r.stats.counters(), Series: r.stats.Series(),
	}
}

// Records returns what the clients saw (Record only): histories, acks,
// refusals and the ops sent.
func (r *Runner) Records() Records {
	r.mu.Lock()
	acks := append([]AckRecord(nil), r.acks...)
	refusals := append([]Refusal(nil), r.refusals...)
	r.mu.Unlock()
	return Records{Histories: r.Histories(), Acks: acks, Refusals: refusals, Sent: r.Sent()}
}

// Acks returns every ack received (Record only).
func (r *Runner) Acks() []AckRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]AckRecord(nil), r.acks...)
}

// Histories returns every client's history of every board (Record only);
// a board's last segment is Open if the client was joined when called.
func (r *Runner) Histories() []History {
	var out []History
	for _, c := range r.clients {
		c.mu.Lock()
		for _, b := range c.boards {
			h := History{Client: c.user, Board: b.name, Segments: make([]Segment, len(b.segs))}
			for i, s := range b.segs {
				s.Events = append([]Event(nil), s.Events...)
				h.Segments[i] = s
			}
			if n := len(h.Segments); n > 0 && b.joined {
				h.Segments[n-1].Open = true
			}
			out = append(out, h)
		}
		c.mu.Unlock()
	}
	return out
}

// Boards lists the run's boards.
func (r *Runner) Boards() []string {
	var out []string
	for i := 0; i < r.cfg.Clients; i += r.cfg.BoardSize {
		out = append(out, r.cfg.BoardOf(i))
	}
	return out
}

// Sent is the set of user/id pairs of every op sent (keys user+"\x00"+id),
// for the checker's phantom check.
func (r *Runner) Sent() map[string]bool {
	out := map[string]bool{}
	for _, c := range r.clients {
		c.mu.Lock()
		for n := int64(1); n <= c.nextOp; n++ {
			out[c.user+"\x00"+c.user+"-"+strconv.FormatInt(n, 10)] = true
		}
		c.mu.Unlock()
	}
	return out
}

// Begin starts sending at rate ops/s in total (open loop) as a new phase
// called name and returns at once with the phase's number; another Begin
// replaces it, Idle stops sending. Nothing is settled in between.
func (r *Runner) Begin(name string, rate float64) int {
	ph := r.newPhase(name, rate)
	interval := time.Duration(float64(len(r.clients)) / rate * float64(time.Second))
	r.setPlan(modeOpen, ph, max(interval, time.Microsecond), 0)
	return ph
}

// Idle stops sending new ops (retries go on).
func (r *Runner) Idle() {
	r.setPlan(modeIdle, 0, 0, 0)
	idle := "idle"
	r.phaseName.Store(&idle)
	r.offered.Store(0)
}

// Phase returns what phase ph (from Begin) has measured so far, over d.
func (r *Runner) Phase(ph int, name string, rate float64, d time.Duration) PhaseResult {
	return r.stats.mergePhase(ph).result(name, "fixed", rate, d)
}

// LogPhase adds a phase result to the run's result.
func (r *Runner) LogPhase(p PhaseResult) {
	r.mu.Lock()
	r.phaseLog = append(r.phaseLog, p)
	r.mu.Unlock()
}
