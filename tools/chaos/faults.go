package main

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"syscall"
	"time"

	"github.com/tavernhq/tavern/tools/load"
)

// The faults a chaos run injects.
const (
	faultKill     = "kill"     // SIGKILL a node, restart it a moment later
	faultPause    = "pause"    // SIGSTOP a node past down_after, then SIGCONT
	faultCrash    = "crash"    // crash a board actor through tavern-console
	faultPGKill   = "pgkill"   // pg_terminate_backend every connection of the database
	faultPGDown   = "pgdown"   // the database unreachable for a while (proxy cut)
	faultOverload = "overload" // twice the measured maximum rate for a while
)

var allFaults = []string{faultKill, faultPause, faultCrash, faultPGKill, faultPGDown, faultOverload}

// FaultEvent is one injected fault and how long the boards took to take
// ops again.
type FaultEvent struct {
	Kind   string    `json:"kind"`
	Target string    `json:"target,omitempty"`
	At     time.Time `json:"at"`
	// T is At in seconds since the run started.
	T float64 `json:"t"`
	// Held is how long the fault lasted (until the restart, the SIGCONT,
	// the database back).
	HeldMs  float64 `json:"held_ms"`
	Skipped string  `json:"skipped,omitempty"`
	Err     string  `json:"error,omitempty"`
	// RecoveryMs is the time from the fault to every board having
	// acknowledged an op first sent after it (-1: some board never did).
	RecoveryMs float64 `json:"recovery_ms"`
	WorstBoard string  `json:"worst_board,omitempty"`
}

// injector injects faults into a cluster under load.
type injector struct {
	cl      *cluster
	r       *load.Runner
	rnd     *rand.Rand
	boards  []string
	o       Options
	start   time.Time
	maxRate float64 // measured maximum, ops/s
	rate    float64 // the run's rate, ops/s
	logf    func(string, ...any)
	n       int
}

// inject runs one fault of kind to its end and returns what happened.
func (in *injector) inject(ctx context.Context, kind string) FaultEvent {
	in.n++
	ev := FaultEvent{Kind: kind, At: time.Now()}
	ev.T = ev.At.Sub(in.start).Seconds()
	target := in.cl.nodes[in.n%len(in.cl.nodes)]
	switch kind {
	case faultKill:
		ev.Target = target.Name
		target.Kill()
		sleep(ctx, in.o.RestartAfter)
		if err := target.Start(ctx, 60*time.Second); err != nil {
			ev.Err = err.Error()
		}
	case faultPause:
		ev.Target = target.Name
		if err := target.Signal(syscall.SIGSTOP); err != nil {
			ev.Err = err.Error()
			break
		}
		sleep(ctx, in.o.PauseFor)
		if err := target.Signal(syscall.SIGCONT); err != nil {
			ev.Err = err.Error()
		}
	case faultCrash:
		b := in.boards[in.rnd.IntN(len(in.boards))]
		ev.Target = b
		node, err := in.cl.consoleKill(ctx, b)
		switch {
		case err == errNoConsole:
			ev.Skipped = "no tavern-console binary"
		case err != nil:
			ev.Err = err.Error()
		default:
			ev.Target = b + " on " + node
		}
	case faultPGKill:
		ev.Target = "database"
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		n, err := in.cl.terminateBackends(tctx)
		cancel()
		if err != nil {
			ev.Err = err.Error()
		} else {
			ev.Target = fmt.Sprintf("database (%d connections)", n)
		}
	case faultPGDown:
		ev.Target = "database"
		in.cl.proxy.SetDown(true)
		sleep(ctx, in.o.DBDownFor)
		in.cl.proxy.SetDown(false)
	case faultOverload:
		rate := 2 * in.maxRate
		ev.Target = fmt.Sprintf("%.0f ops/s", rate)
		in.r.Begin("overload", rate)
		sleep(ctx, in.o.OverloadFor)
		in.r.Begin("chaos", in.rate)
	}
	ev.HeldMs = float64(time.Since(ev.At).Microseconds()) / 1000
	if ev.Err != "" {
		in.logf("fault %s %s: %s", kind, ev.Target, ev.Err)
	} else if ev.Skipped != "" {
		in.logf("fault %s skipped: %s", kind, ev.Skipped)
	} else {
		in.logf("fault %s %s held %.1fs", kind, ev.Target, ev.HeldMs/1000)
	}
	return ev
}

// heal undoes whatever fault could still be in force: every node runs and
// is not paused, the database is reachable.
func (in *injector) heal(ctx context.Context) error {
	in.cl.proxy.SetDown(false)
	for _, n := range in.cl.nodes {
		if !n.Running() {
			if err := n.Start(ctx, 60*time.Second); err != nil {
				return err
			}
			continue
		}
		if n.Paused() {
			_ = n.Signal(syscall.SIGCONT)
		}
	}
	return nil
}

// recoveries computes, for every fault, the time until every board had
// acknowledged an op first sent at or after the fault.
func recoveries(faults []FaultEvent, acks []load.AckRecord, boards []string) {
	type sent struct{ first, at time.Time }
	per := map[string][]sent{}
	for _, a := range acks {
		if a.FirstSent.IsZero() {
			continue
		}
		per[a.Board] = append(per[a.Board], sent{a.FirstSent, a.At})
	}
	for b := range per {
		slices.SortFunc(per[b], func(x, y sent) int { return x.first.Compare(y.first) })
	}
	for i := range faults {
		f := &faults[i]
		if f.Skipped != "" {
			continue
		}
		worst, worstBoard := time.Duration(0), ""
		for _, b := range boards {
			list := per[b]
			j, _ := slices.BinarySearchFunc(list, f.At, func(s sent, t time.Time) int { return cmp.Compare(s.first.UnixNano(), t.UnixNano()) })
			var first time.Time
			for _, s := range list[j:] {
				if first.IsZero() || s.at.Before(first) {
					first = s.at
				}
				if !first.IsZero() && s.first.After(first) {
					break // later ops cannot be acked earlier than first
				}
			}
			if first.IsZero() {
				worst, worstBoard = -1, b
				break
			}
			if d := first.Sub(f.At); d > worst {
				worst, worstBoard = d, b
			}
		}
		if worst < 0 {
			f.RecoveryMs = -1
		} else {
			f.RecoveryMs = float64(worst.Microseconds()) / 1000
		}
		f.WorstBoard = worstBoard
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
