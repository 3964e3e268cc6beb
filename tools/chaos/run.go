package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tavernhq/tavern/tools/internal/procs"
	"github.com/tavernhq/tavern/tools/load"
)

// Options shape a chaos run. DefaultOptions has a comment on each value.
type Options struct {
	Nodes     int           // tavern-server processes
	Duration  time.Duration // the whole run under load, faults and quiet end included
	Clients   int           // clients, spread over the nodes
	BoardSize int           // members per board
	// Rate is the run's load in ops/s in total (0: 4 per client).
	Rate float64
	// Faults are the kinds injected, in turn (shuffled by Seed).
	Faults []string
	// Every is the pause between two faults.
	Every time.Duration
	// Warmup is the load before the first fault; Quiet the load after
	// the last, before the run settles and is checked.
	Warmup, Quiet time.Duration
	// RestartAfter is how long a killed node stays down; PauseFor how
	// long a paused one stays stopped (past DownAfterMs, so it is
	// declared down); DBDownFor how long the database is unreachable;
	// OverloadFor how long the load runs at twice the maximum.
	RestartAfter, PauseFor, DBDownFor, OverloadFor time.Duration
	// HeartbeatMs and DownAfterMs are the nodes' cluster settings.
	HeartbeatMs, DownAfterMs int
	// Stall is how long a client waits for an answer before it drops
	// the connection and reconnects to another node.
	Stall time.Duration
	// SettleWithin bounds the wait, after the load stops, for every op
	// to be acknowledged and every member to catch up.
	SettleWithin time.Duration
	// MaxRecovery fails the run if a fault's recovery takes longer (0:
	// reported only).
	MaxRecovery time.Duration
	// AdminDSN is the Postgres server a fresh database is made on (and
	// dropped after), unless DSN names one already made.
	AdminDSN, DSN string
	// ServerBin and ConsoleBin are the binaries ("" ConsoleBin: the
	// crash fault is skipped).
	ServerBin, ConsoleBin string
	// Dir holds the nodes' configs and logs; Out the report (chaos.json,
	// chaos.png); "" for none.
	Dir, Out string
	Seed     uint64
	Log      io.Writer // progress lines
	Progress bool      // a progress bar on Log
}

// DefaultOptions is a 10-minute run of 3 nodes, 48 clients on boards of 6.
func DefaultOptions() Options {
	return Options{
		Nodes: 3, Duration: 10 * time.Minute, Clients: 48, BoardSize: 6,
		Faults: allFaults, Every: 12 * time.Second, Warmup: 8 * time.Second, Quiet: 15 * time.Second,
		RestartAfter: 2 * time.Second, PauseFor: 5 * time.Second, DBDownFor: 4 * time.Second, OverloadFor: 8 * time.Second,
		HeartbeatMs: 500, DownAfterMs: 2500, Stall: 3 * time.Second, SettleWithin: 90 * time.Second,
		AdminDSN: "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		Log:      io.Discard,
	}
}

// Validate reports every problem at once.
func (o *Options) Validate() error {
	var errs []error
	if o.Nodes < 2 {
		errs = append(errs, errors.New("nodes: at least 2 (faults take one down)"))
	}
	if o.Clients < 1 || o.BoardSize < 1 {
		errs = append(errs, errors.New("clients and board size must be at least 1"))
	}
	if o.Duration < o.Warmup+o.Quiet {
		errs = append(errs, fmt.Errorf("duration %v shorter than warmup + quiet (%v)", o.Duration, o.Warmup+o.Quiet))
	}
	for _, f := range o.Faults {
		ok := false
		for _, k := range allFaults {
			ok = ok || f == k
		}
		if !ok {
			errs = append(errs, fmt.Errorf("fault %q: want one of %s", f, strings.Join(allFaults, ", ")))
		}
	}
	if o.ServerBin == "" {
		errs = append(errs, errors.New("no server binary"))
	}
	if o.AdminDSN == "" && o.DSN == "" {
		errs = append(errs, errors.New("no database"))
	}
	return errors.Join(errs...)
}

// Outcome is a chaos run's report.
type Outcome struct {
	Nodes      int              `json:"nodes"`
	Clients    int              `json:"clients"`
	BoardSize  int              `json:"board_size"`
	Seconds    float64          `json:"seconds"`
	MaxOps     float64          `json:"max_ops_per_sec"`
	Rate       float64          `json:"rate_ops_per_sec"`
	Faults     []FaultEvent     `json:"faults"`
	Settled    bool             `json:"settled"`
	Pending    int              `json:"pending_at_end"`
	Check      load.Report      `json:"check"`
	Load       load.Result      `json:"load"`
	Violations int64            `json:"live_protocol_violations"`
	Failures   []string         `json:"failures"`
	Recovery   map[string]Stats `json:"recovery_ms_by_kind"`
}

// Stats summarise recovery times of one kind of fault.
type Stats struct {
	N   int     `json:"n"`
	Max float64 `json:"max_ms"`
	Avg float64 `json:"avg_ms"`
}

// OK reports whether the run passed.
func (o *Outcome) OK() bool { return len(o.Failures) == 0 }

// Run runs a chaos run: a cluster under load, faults, then the checker.
// An error means the run could not be made; a broken invariant is a
// failure in the Outcome.
func Run(ctx context.Context, o Options) (*Outcome, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(o.Log, "chaos: "+format+"\n", args...)
	}
	rnd := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	dsn := o.DSN
	if dsn == "" {
		var drop func()
		var err error
		if dsn, drop, err = procs.CreateDatabase(ctx, o.AdminDSN); err != nil {
			return nil, err
		}
		defer drop()
	}
	dir := o.Dir
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	} else {
		d, err := os.MkdirTemp("", "tavern-chaos-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	cl, err := newCluster(ctx, clusterOptions{Nodes: o.Nodes, DSN: dsn, ServerBin: o.ServerBin,
		ConsoleBin: o.ConsoleBin, Dir: dir, HeartbeatMs: o.HeartbeatMs, DownAfterMs: o.DownAfterMs})
	if err != nil {
		return nil, err
	}
	defer cl.stop()
	logf("%d nodes up (logs in %s)", o.Nodes, dir)

	prefix := "cx" + procs.RandomHex(3)
	r, err := load.New(load.Config{URLs: cl.URLs(), Clients: o.Clients, BoardSize: o.BoardSize,
		Prefix: prefix, Kind: "mix", Window: 32, StallTimeout: o.Stall, DialTimeout: 2 * time.Second,
		Record: true, Log: slog.New(slog.NewTextHandler(o.Log, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	err = r.Connect(cctx)
	cancel()
	if err != nil {
		r.Close()
		return nil, err
	}
	start := r.Started()
	var prog *load.Progress
	if o.Progress {
		prog = load.StartProgress(o.Log, r, o.Duration+5*time.Second)
	}
	probe := r.SaturateWindow(ctx, "probe", 3*time.Second, 8)
	rate := o.Rate
	if rate <= 0 {
		rate = float64(4 * o.Clients)
	}
	out := &Outcome{Nodes: o.Nodes, Clients: o.Clients, BoardSize: o.BoardSize, MaxOps: probe.AcksPerSec, Rate: rate}
	logf("probe: %.0f ops/s acknowledged closed-loop; load %.0f ops/s", probe.AcksPerSec, rate)

	in := &injector{cl: cl, r: r, rnd: rnd, boards: r.Boards(), o: o, start: start, maxRate: probe.AcksPerSec,
		rate: rate, logf: func(f string, a ...any) {
			if prog == nil {
				logf(f, a...)
			}
		}}
	kinds := append([]string(nil), o.Faults...)
	rnd.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	r.Begin("chaos", rate)
	faultsEnd := start.Add(o.Duration - o.Quiet)
	sleep(ctx, o.Warmup)
	for i := 0; len(kinds) > 0 && ctx.Err() == nil && time.Now().Before(faultsEnd); i++ {
		out.Faults = append(out.Faults, in.inject(ctx, kinds[i%len(kinds)]))
		next := time.Now().Add(o.Every)
		if next.After(faultsEnd) {
			break
		}
		sleep(ctx, time.Until(next))
	}
	if err := in.heal(ctx); err != nil {
		out.Failures = append(out.Failures, "heal: "+err.Error())
	}
	sleep(ctx, time.Until(start.Add(o.Duration)))
	r.Idle()
	out.Settled = r.Settle(ctx, o.SettleWithin)
	out.Pending = r.Pending()
	recs := r.Records()
	r.Close()
	if prog != nil {
		prog.Stop()
	}
	out.Seconds = time.Since(start).Seconds()
	out.Load = r.Result()
	out.Violations = out.Load.Counters.Violations

	rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	rows, err := load.ReadBoardOps(rctx, dsn, prefix+"-")
	cancel()
	if err != nil {
		return nil, err
	}
	out.Check = load.Check(recs, rows)
	recoveries(out.Faults, recs.Acks, r.Boards())
	out.summarize(o)
	if o.Out != "" {
		if err := out.write(o.Out, start); err != nil {
			return out, err
		}
	}
	return out, nil
}

func (out *Outcome) summarize(o Options) {
	if !out.Check.OK() {
		out.Failures = append(out.Failures, fmt.Sprintf("invariant broken: %s (%d violations)", out.Check.First(), len(out.Check.Violations)))
	}
	if !out.Settled {
		out.Failures = append(out.Failures, fmt.Sprintf("did not settle within %v: %d ops unacknowledged or members behind", o.SettleWithin, out.Pending))
	}
	if out.Violations > 0 {
		out.Failures = append(out.Failures, fmt.Sprintf("%d protocol violations seen by clients", out.Violations))
	}
	if out.Load.Total.Acked == 0 {
		out.Failures = append(out.Failures, "no op was acknowledged")
	}
	out.Recovery = map[string]Stats{}
	for _, f := range out.Faults {
		if f.Err != "" {
			out.Failures = append(out.Failures, fmt.Sprintf("fault %s at %.1fs: %s", f.Kind, f.T, f.Err))
		}
		if f.Skipped != "" {
			continue
		}
		if f.RecoveryMs < 0 {
			out.Failures = append(out.Failures, fmt.Sprintf("fault %s at %.1fs: board %s never acknowledged an op again", f.Kind, f.T, f.WorstBoard))
			continue
		}
		if o.MaxRecovery > 0 && f.RecoveryMs > float64(o.MaxRecovery.Milliseconds()) {
			out.Failures = append(out.Failures, fmt.Sprintf("fault %s at %.1fs: recovery %.0f ms > %v", f.Kind, f.T, f.RecoveryMs, o.MaxRecovery))
		}
		s := out.Recovery[f.Kind]
		s.Avg = (s.Avg*float64(s.N) + f.RecoveryMs) / float64(s.N+1)
		s.N++
		s.Max = max(s.Max, f.RecoveryMs)
		out.Recovery[f.Kind] = s
	}
}

func (out *Outcome) write(dir string, start time.Time) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "chaos.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	var marks []load.Mark
	for _, f := range out.Faults {
		if f.Skipped == "" {
			marks = append(marks, load.Mark{X: f.T, Label: f.Kind})
		}
	}
	title := fmt.Sprintf("chaos: %d nodes, %d clients on boards of %d", out.Nodes, out.Clients, out.BoardSize)
	return load.PlotRun(filepath.Join(dir, "chaos.png"), title, out.Load.Series, marks)
}

// Print writes the outcome for a person.
func (out *Outcome) Print(w io.Writer) {
	fmt.Fprintf(w, "chaos: %d nodes, %d clients on boards of %d, %.0f s, load %.0f ops/s (probe max %.0f)\n",
		out.Nodes, out.Clients, out.BoardSize, out.Seconds, out.Rate, out.MaxOps)
	t := out.Load.Total
	fmt.Fprintf(w, "ops: sent %d, resent %d, acked %d (dup acks %d), delivered %d; reconnects %d\n",
		t.Sent, t.Resent, t.Acked, t.DupAcks, t.Delivered, out.Load.Counters.Reconnects)
	fmt.Fprintf(w, "errors by code: %v; close codes: %v\n", out.Load.Counters.Errors, out.Load.Counters.Closes)
	fmt.Fprintf(w, "%-9s %7s %-40s %9s %12s  %s\n", "fault", "at s", "target", "held s", "recovery ms", "worst board")
	for _, f := range out.Faults {
		rec := fmt.Sprintf("%.0f", f.RecoveryMs)
		switch {
		case f.Skipped != "":
			rec = "skipped"
		case f.RecoveryMs < 0:
			rec = "NEVER"
		}
		fmt.Fprintf(w, "%-9s %7.1f %-40.40s %9.1f %12s  %s\n", f.Kind, f.T, f.Target, f.HeldMs/1000, rec, f.WorstBoard)
	}
	fmt.Fprintf(w, "check: %s\n", out.Check)
	if out.OK() {
		fmt.Fprintln(w, "PASS: zero lost, duplicated or reordered acknowledged ops")
	} else {
		fmt.Fprintln(w, "FAIL:")
		for _, f := range out.Failures {
			fmt.Fprintln(w, "  "+f)
		}
	}
}
