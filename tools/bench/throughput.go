package main

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/tavernhq/tavern/tools/internal/procs"
	"github.com/tavernhq/tavern/tools/load"
)

// runResult is one system's throughput run in one round.
type runResult struct {
	System string `json:"system"`
	Round  int    `json:"round"`
	Err    string `json:"error,omitempty"`
	// MaxDeliv is the highest passing step's deliveries/s, MaxOps its
	// ops/s; ProbeDeliv the closed-loop probe's deliveries/s.
	MaxDeliv   float64 `json:"max_deliveries_per_sec"`
	MaxOps     float64 `json:"max_ops_per_sec"`
	ProbeDeliv float64 `json:"probe_deliveries_per_sec"`
	// HalfRate is the rate of the half-load run (half the baseline's
	// maximum of the round) and HalfP99Ms its p99 op-to-delivery latency.
	HalfRate  float64            `json:"half_rate_ops_per_sec,omitempty"`
	HalfP99Ms float64            `json:"half_p99_ms,omitempty"`
	Half      *load.PhaseResult  `json:"half,omitempty"`
	Steps     []load.PhaseResult `json:"steps"`
	// Dist are the deltas per acknowledged op of the nodes' counters of
	// distribution (or bus) messages, by metric name.
	Dist   map[string]float64 `json:"dist_per_op,omitempty"`
	Series []load.Second      `json:"-"`
}

// throughput runs one system: find the maximum, and a run at halfRate
// ops/s (0: half its own maximum, after the search; -1: none).
func (b *bench) throughput(ctx context.Context, sys system, round int, halfRate float64) runResult {
	res := runResult{System: sys.name, Round: round}
	b.logf("round %d: %s: starting", round, sys.name)
	rn, err := sys.start(ctx, nil)
	if err != nil {
		res.Err = err.Error()
		b.logf("round %d: %s: %v", round, sys.name, err)
		return res
	}
	defer rn.stop()
	before := scrapeDist(rn.metrics)
	r, err := load.New(load.Config{URLs: rn.urls, Clients: b.o.Clients, BoardSize: b.o.BoardSize,
		Prefix: fmt.Sprintf("t%d%s", round, procs.RandomHex(2)), Window: 64, StallTimeout: 20 * time.Second, TLS: rn.tls})
	if err != nil {
		res.Err = err.Error()
		return res
	}
	// Connecting 1,000 clients takes seconds; a system that has not
	// joined them all within a minute is failing.
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = r.Connect(cctx)
	cancel()
	if err != nil {
		r.Close()
		res.Err = err.Error()
		b.logf("round %d: %s: %v", round, sys.name, err)
		return res
	}
	var prog *load.Progress
	if b.o.Progress {
		prog = load.StartProgress(b.o.Log, r, 7*(b.o.Step+time.Second))
	}
	m := r.FindMax(ctx, load.MaxConfig{Step: b.o.Step, MaxP99: b.o.MaxP99, MaxSteps: b.o.MaxSteps})
	res.Steps = m.Steps
	res.MaxDeliv, res.MaxOps = m.MaxDeliveries(), m.MaxOps()
	if len(m.Steps) > 0 && m.Steps[0].Name == "probe" {
		res.ProbeDeliv = m.Steps[0].DelivPerSec
	}
	if halfRate == 0 {
		halfRate = res.MaxOps / 2
	}
	// Every system runs at half load after its search, with the same
	// history behind it (a system measured right after its clients
	// connected would pay its warm-up, one measured after the search
	// would not), and after a lead-in at that rate, not recorded, that
	// lets the queues of the search's last, overloaded step drain.
	if halfRate > 0 {
		r.Fixed(ctx, "half lead-in", halfRate, b.o.HalfFor/2)
		p := r.Fixed(ctx, fmt.Sprintf("half %.0f ops/s", halfRate), halfRate, b.o.HalfFor)
		res.HalfRate, res.HalfP99Ms, res.Half = halfRate, p.Delivery.P99, &p
	}
	r.Close()
	if prog != nil {
		prog.Stop()
	}
	out := r.Result()
	res.Series = out.Series
	if acked := out.Total.Acked; acked > 0 {
		after := scrapeDist(rn.metrics)
		for k, v := range after {
			if res.Dist == nil {
				res.Dist = map[string]float64{}
			}
			res.Dist[k] = (v - before[k]) / float64(acked)
		}
	}
	b.logf("round %d: %s: max %.0f deliveries/s at %.0f ops/s (probe %.0f); half-load p99 %.1f ms at %.0f ops/s",
		round, sys.name, res.MaxDeliv, res.MaxOps, res.ProbeDeliv, res.HalfP99Ms, res.HalfRate)
	return res
}

// scrapeDist sums, over the nodes, every counter that counts distribution
// or bus messages between nodes (tavern_*dist*_total, tavern_bus_*_total).
func scrapeDist(addrs []string) map[string]float64 {
	out := map[string]float64{}
	for _, a := range addrs {
		m, err := procs.Metrics(a)
		if err != nil {
			continue
		}
		for k, v := range m {
			if strings.HasPrefix(k, "tavern_") && strings.HasSuffix(k, "_total") &&
				(strings.Contains(k, "dist") || strings.HasPrefix(k, "tavern_bus_")) {
				out[k] += v
			}
		}
	}
	return maps.Clone(out)
}
