package load

import (
	"context"
	"fmt"
	"math"
	"time"
)

// MaxConfig shapes the find-the-maximum mode.
type MaxConfig struct {
	// Step is how long each rate step sends. Default 5s.
	Step time.Duration
	// Start is the first rate (ops/s in total); 0 probes it: a closed-loop
	// step (ProbeWindow ops in flight per client) whose acknowledged rate
	// times StartFraction is the first step.
	Start float64
	// ProbeWindow is the ops in flight per client of the probe. Default 2.
	ProbeWindow int
	// StartFraction of the probe's rate is the first step. Default 0.4.
	StartFraction float64
	// Up multiplies the rate after a passing step, Down after a failing
	// one before any passed. Defaults 1.3 and 0.6.
	Up, Down float64
	// MaxSteps bounds the number of rate steps. Default 6.
	MaxSteps int
	// MinDeliveryRatio is the pass rule's least delivered/expected
	// deliveries (and acked/sent ops). Default 0.99.
	MinDeliveryRatio float64
	// MaxP99 is the pass rule's highest p99 op-to-delivery latency.
	// Default 250ms.
	MaxP99 time.Duration
	// NoRetry: a step that fails on latency alone (a pause of a shared
	// machine can spoil a few seconds' p99) is run once more, and the
	// second run counts, unless NoRetry.
	NoRetry bool
}

func (m *MaxConfig) setDefaults() {
	if m.Step <= 0 {
		m.Step = 5 * time.Second
	}
	if m.ProbeWindow <= 0 {
		m.ProbeWindow = 2
	}
	if m.StartFraction <= 0 {
		m.StartFraction = 0.4
	}
	if m.Up <= 1 {
		m.Up = 1.3
	}
	if m.Down <= 0 || m.Down >= 1 {
		m.Down = 0.6
	}
	if m.MaxSteps <= 0 {
		m.MaxSteps = 6
	}
	if m.MinDeliveryRatio <= 0 {
		m.MinDeliveryRatio = 0.99
	}
	if m.MaxP99 <= 0 {
		m.MaxP99 = 250 * time.Millisecond
	}
}

// MaxResult is the outcome of FindMax.
type MaxResult struct {
	// Probe is the probe's acknowledged ops/s (0 if Start was given).
	Probe float64 `json:"probe_ops_per_sec"`
	// Best is the highest passing step (nil if none passed).
	Best  *PhaseResult  `json:"best,omitempty"`
	Steps []PhaseResult `json:"steps"`
	Rule  string        `json:"rule"`
}

// MaxDeliveries is the best step's deliveries per second (0 if none).
func (m MaxResult) MaxDeliveries() float64 {
	if m.Best == nil {
		return 0
	}
	return m.Best.DelivPerSec
}

// MaxOps is the best step's offered ops per second (0 if none).
func (m MaxResult) MaxOps() float64 {
	if m.Best == nil {
		return 0
	}
	return m.Best.Offered
}

// Passes applies the pass rule to a phase.
func (m MaxConfig) Passes(p PhaseResult) bool {
	m.setDefaults()
	tried := p.Sent + p.Shed
	return p.Sent > 0 &&
		p.AckRatio >= m.MinDeliveryRatio &&
		float64(p.Shed) <= (1-m.MinDeliveryRatio)*float64(tried) &&
		p.DeliveryRatio >= m.MinDeliveryRatio &&
		p.Delivery.P99 <= float64(m.MaxP99)/float64(time.Millisecond)
}

// latencyOnly reports whether p failed the rule on its p99 alone.
func latencyOnly(mc MaxConfig, p PhaseResult) bool {
	mc.MaxP99 = time.Duration(math.MaxInt64)
	return mc.Passes(p)
}

// FindMax searches the highest rate that passes the rule (delivery ratio
// and p99): from the first rate it multiplies by Up while steps pass and
// by Down while none has passed; after the first failure above a pass it
// tries once halfway between the two, and stops.
func (r *Runner) FindMax(ctx context.Context, mc MaxConfig) MaxResult {
	mc.setDefaults()
	res := MaxResult{Rule: fmt.Sprintf("acked/sent and delivered/expected >= %.3f, shed <= %.1f%%, p99 delivery <= %v",
		mc.MinDeliveryRatio, 100*(1-mc.MinDeliveryRatio), mc.MaxP99)}
	rate := mc.Start
	if rate <= 0 {
		probe := r.SaturateWindow(ctx, "probe", mc.Step, mc.ProbeWindow)
		res.Steps = append(res.Steps, probe)
		res.Probe = probe.AcksPerSec
		rate = probe.AcksPerSec * mc.StartFraction
	}
	try := func(rate float64) bool {
		name := fmt.Sprintf("step %.0f ops/s", rate)
		p := r.Fixed(ctx, name, rate, mc.Step)
		pass := mc.Passes(p)
		if !pass && !mc.NoRetry && latencyOnly(mc, p) && ctx.Err() == nil {
			no := false
			p.Pass = &no
			res.Steps = append(res.Steps, p)
			p = r.Fixed(ctx, name+" again", rate, mc.Step)
			pass = mc.Passes(p)
		}
		p.Pass = &pass
		res.Steps = append(res.Steps, p)
		if pass && (res.Best == nil || p.DelivPerSec > res.Best.DelivPerSec) {
			best := p
			res.Best = &best
		}
		return pass
	}
	lastPass := 0.0
	for n := 0; n < mc.MaxSteps && rate >= 1 && ctx.Err() == nil; n++ {
		rate = math.Round(rate)
		if try(rate) {
			lastPass = rate
			rate *= mc.Up
			continue
		}
		if lastPass > 0 {
			if n+1 < mc.MaxSteps && ctx.Err() == nil {
				try(math.Round((lastPass + rate) / 2))
			}
			break
		}
		rate *= mc.Down
	}
	return res
}

func floatBits(f float64) uint64 { return math.Float64bits(f) }
func floatFrom(b uint64) float64 { return math.Float64frombits(b) }
