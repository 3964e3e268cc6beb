package load

import (
	"maps"
	"strconv"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are kept in microseconds from 1 µs to 5 minutes, with two
// significant digits (1% resolution): small enough to keep one histogram
// per shard and phase.
const (
	histMin    = 1
	histMax    = int64(5 * time.Minute / time.Microsecond)
	histDigits = 2
	nShards    = 16
)

func newHist() *hdr.Histogram { return hdr.New(histMin, histMax, histDigits) }

func recordDur(h *hdr.Histogram, d time.Duration) {
	us := d.Microseconds()
	if us < histMin {
		us = histMin
	}
	if us > histMax {
		us = histMax
	}
	_ = h.RecordValue(us)
}

// phaseStats counts one phase (a step of the run) in one shard.
type phaseStats struct {
	sent, resent, acked, dupAcks, shed, skipped int64
	expected, delivered                         int64
	ack, deliv                                  *hdr.Histogram
	errors                                      map[string]int64
}

func newPhaseStats() *phaseStats {
	return &phaseStats{ack: newHist(), deliv: newHist(), errors: map[string]int64{}}
}

func (p *phaseStats) merge(o *phaseStats) {
	p.sent += o.sent
	p.resent += o.resent
	p.acked += o.acked
	p.dupAcks += o.dupAcks
	p.shed += o.shed
	p.skipped += o.skipped
	p.expected += o.expected
	p.delivered += o.delivered
	p.ack.Merge(o.ack)
	p.deliv.Merge(o.deliv)
	for k, v := range o.errors {
		p.errors[k] += v
	}
}

// shard is one lock's worth of statistics; client i counts into shard
// i%nShards, so readers of different clients rarely contend.
type shard struct {
	mu     sync.Mutex
	phases map[int]*phaseStats
	// The current second of the time series.
	secAck, secDeliv       *hdr.Histogram
	secAckN, secDelivN     int64
	errors                 map[string]int64
	closes                 map[string]int64
	reconnects, violations int64
}

func newShard() *shard {
	return &shard{phases: map[int]*phaseStats{}, secAck: newHist(), secDeliv: newHist(),
		errors: map[string]int64{}, closes: map[string]int64{}}
}

// phase returns the stats of phase p; the caller holds s.mu.
func (s *shard) phase(p int) *phaseStats {
	ps := s.phases[p]
	if ps == nil {
		ps = newPhaseStats()
		s.phases[p] = ps
	}
	return ps
}

// Stats are the statistics of a run, sharded.
type Stats struct {
	shards [nShards]*shard
	start  time.Time

	mu     sync.Mutex
	series []Second
}

func newStats(start time.Time) *Stats {
	s := &Stats{start: start}
	for i := range s.shards {
		s.shards[i] = newShard()
	}
	return s
}

func (s *Stats) shard(client int) *shard { return s.shards[client%nShards] }

// Second is one point of the time series.
type Second struct {
	T            float64 `json:"t"` // seconds since the run started
	Acks         int64   `json:"acks"`
	Deliveries   int64   `json:"deliveries"`
	AckP50Ms     float64 `json:"ack_p50_ms"`
	AckP99Ms     float64 `json:"ack_p99_ms"`
	DelivP50Ms   float64 `json:"deliv_p50_ms"`
	DelivP99Ms   float64 `json:"deliv_p99_ms"`
	Connected    int     `json:"connected"`
	Phase        string  `json:"phase,omitempty"`
	OfferedOpsPS float64 `json:"offered_ops_per_sec"`
}

// tick closes the current second of the series.
func (s *Stats) tick(now time.Time, connected int, phase string, offered float64) {
	ack, deliv := newHist(), newHist()
	var acks, delivs int64
	for _, sh := range s.shards {
		sh.mu.Lock()
		ack.Merge(sh.secAck)
		deliv.Merge(sh.secDeliv)
		acks += sh.secAckN
		delivs += sh.secDelivN
		sh.secAck.Reset()
		sh.secDeliv.Reset()
		sh.secAckN, sh.secDelivN = 0, 0
		sh.mu.Unlock()
	}
	pt := Second{
		T: now.Sub(s.start).Seconds(), Acks: acks, Deliveries: delivs,
		AckP50Ms: ms(ack.ValueAtQuantile(50)), AckP99Ms: ms(ack.ValueAtQuantile(99)),
		DelivP50Ms: ms(deliv.ValueAtQuantile(50)), DelivP99Ms: ms(deliv.ValueAtQuantile(99)),
		Connected: connected, Phase: phase, OfferedOpsPS: offered,
	}
	s.mu.Lock()
	s.series = append(s.series, pt)
	s.mu.Unlock()
}

// Series returns the time series so far.
func (s *Stats) Series() []Second {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Second(nil), s.series...)
}

// mergePhase merges phase p over the shards (p < 0: every phase).
func (s *Stats) mergePhase(p int) *phaseStats {
	out := newPhaseStats()
	for _, sh := range s.shards {
		sh.mu.Lock()
		for k, ps := range sh.phases {
			if p < 0 || k == p {
				out.merge(ps)
			}
		}
		sh.mu.Unlock()
	}
	return out
}

// Counters are the run-wide counts that belong to no phase.
type Counters struct {
	Errors     map[string]int64 `json:"errors"`
	Closes     map[string]int64 `json:"closes"`
	Reconnects int64            `json:"reconnects"`
	Violations int64            `json:"violations"`
}

func (s *Stats) counters() Counters {
	c := Counters{Errors: map[string]int64{}, Closes: map[string]int64{}}
	for _, sh := range s.shards {
		sh.mu.Lock()
		for k, v := range sh.errors {
			c.Errors[k] += v
		}
		for k, v := range sh.closes {
			c.Closes[k] += v
		}
		c.Reconnects += sh.reconnects
		c.Violations += sh.violations
		sh.mu.Unlock()
	}
	return c
}

// Latency is a latency distribution in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

func latencyOf(h *hdr.Histogram) Latency {
	return Latency{
		Count: h.TotalCount(),
		P50:   ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)),
		P99: ms(h.ValueAtQuantile(99)), P999: ms(h.ValueAtQuantile(99.9)),
		Max: ms(h.Max()), Mean: h.Mean() / 1000,
	}
}

func ms(us int64) float64 { return float64(us) / 1000 }

// PhaseResult is what one phase of a run measured.
type PhaseResult struct {
	Name     string  `json:"name"`
	Mode     string  `json:"mode"` // fixed, saturate
	Offered  float64 `json:"offered_ops_per_sec,omitempty"`
	Seconds  float64 `json:"seconds"`
	Sent     int64   `json:"sent"`
	Resent   int64   `json:"resent"`
	Acked    int64   `json:"acked"`
	DupAcks  int64   `json:"dup_acks"`
	Shed     int64   `json:"shed"`
	Skipped  int64   `json:"skipped"`
	Expected int64   `json:"expected_deliveries"`
	// Delivered counts ev frames of this phase's ops received by members.
	Delivered     int64            `json:"delivered"`
	AcksPerSec    float64          `json:"acks_per_sec"`
	DelivPerSec   float64          `json:"deliveries_per_sec"`
	AckRatio      float64          `json:"ack_ratio"`
	DeliveryRatio float64          `json:"delivery_ratio"`
	Ack           Latency          `json:"ack_latency"`
	Delivery      Latency          `json:"delivery_latency"`
	Errors        map[string]int64 `json:"errors,omitempty"`
	Pass          *bool            `json:"pass,omitempty"`
}

func (p *phaseStats) result(name, mode string, offered float64, d time.Duration) PhaseResult {
	r := PhaseResult{
		Name: name, Mode: mode, Offered: offered, Seconds: d.Seconds(),
		Sent: p.sent, Resent: p.resent, Acked: p.acked, DupAcks: p.dupAcks, Shed: p.shed, Skipped: p.skipped,
		Expected: p.expected, Delivered: p.delivered,
		Ack: latencyOf(p.ack), Delivery: latencyOf(p.deliv), Errors: maps.Clone(p.errors),
	}
	if secs := d.Seconds(); secs > 0 {
		r.AcksPerSec = float64(p.acked) / secs
		r.DelivPerSec = float64(p.delivered) / secs
	}
	if p.sent > 0 {
		r.AckRatio = float64(p.acked) / float64(p.sent)
	}
	if p.expected > 0 {
		r.DeliveryRatio = float64(p.delivered) / float64(p.expected)
	}
	return r
}

func closeKey(code int) string {
	if code < 0 {
		return "abnormal"
	}
	return strconv.Itoa(code)
}
