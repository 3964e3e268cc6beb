package main

import (
	"fmt"
	"image/color"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"

	"gonum.org/v1/plot/plotter"

	"github.com/tavernhq/tavern/tools/load"
)

// Machine is where the bench ran.
type Machine struct {
	NumCPU       int    `json:"nproc"`
	CPU          string `json:"cpu"`
	MemTotal     string `json:"mem_total"`
	Kernel       string `json:"kernel"`
	GoVersion    string `json:"go_version"`
	GoToolchain  string `json:"go_toolchain"`
	LoadAvgStart string `json:"loadavg_start"`
	LoadAvgEnd   string `json:"loadavg_end"`
}

func machine() Machine {
	m := Machine{NumCPU: runtime.NumCPU(), GoVersion: runtime.Version(), LoadAvgStart: loadavg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if l, _, ok := strings.Cut(string(b), "\n"); ok {
			m.MemTotal = strings.Join(strings.Fields(strings.TrimPrefix(l, "MemTotal:")), " ")
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("go", "version").Output(); err == nil {
		m.GoToolchain = strings.TrimSpace(string(out))
	}
	return m
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// Target is one figure an issue sets a target for.
type Target struct {
	Issue     int       `json:"issue"`
	Name      string    `json:"name"`
	Unit      string    `json:"unit"`
	Baseline  float64   `json:"baseline"` // median over rounds
	Tavern    float64   `json:"tavern"`   // median over rounds
	Ratio     float64   `json:"ratio"`    // median of the per-pair ratios
	Pairs     []float64 `json:"pairs"`
	Goal      string    `json:"goal"`
	Met       *bool     `json:"met,omitempty"`
	NotMeasd  string    `json:"not_measured,omitempty"`
	FigureFmt string    `json:"-"`
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// pairs collects, over rounds, the ratio tavern/baseline of a figure,
// skipping rounds where either is missing.
func pairs(n int, get func(round int) (base, tav float64, ok bool)) (bs, ts, rs []float64) {
	for i := range n {
		b, t, ok := get(i)
		if !ok || b <= 0 || t < 0 {
			continue
		}
		bs, ts, rs = append(bs, b), append(ts, t), append(rs, t/b)
	}
	return
}

func find(row []runResult, system string) (runResult, bool) {
	for _, r := range row {
		if r.System == system {
			return r, r.Err == ""
		}
	}
	return runResult{}, false
}

func errOf(res *Results, system string) string {
	for _, row := range res.Throughput {
		for _, r := range row {
			if r.System == system && r.Err != "" {
				return r.Err
			}
		}
	}
	for _, row := range res.Memory {
		for _, r := range row {
			if r.System == system && r.Err != "" {
				return r.Err
			}
		}
	}
	return "not run"
}

func targets(res *Results) []Target {
	var out []Target
	add := func(t Target, bs, ts, rs []float64, atLeast bool, goal float64, missing string) {
		t.Pairs = rs
		if len(rs) == 0 {
			t.NotMeasd = missing
			out = append(out, t)
			return
		}
		t.Baseline, t.Tavern, t.Ratio = median(bs), median(ts), median(rs)
		if goal == 0 {
			out = append(out, t) // a figure without a target
			return
		}
		met := t.Ratio >= goal
		if !atLeast {
			met = t.Ratio <= goal
		}
		t.Met = &met
		out = append(out, t)
	}
	tp := res.Throughput
	// A Tavern run that ran but passed no step has a maximum of 0: that
	// counts (a ratio of 0), where a p99 of 0 means not run.
	through := func(system string, fig func(r runResult) float64, against string) func(int) (float64, float64, bool) {
		return func(i int) (float64, float64, bool) {
			b, ok1 := find(tp[i], against)
			t, ok2 := find(tp[i], system)
			zeroOK := fig(runResult{MaxDeliv: 1}) == 1
			return fig(b), fig(t), ok1 && ok2 && fig(b) > 0 && (fig(t) > 0 || zeroOK)
		}
	}
	maxDeliv := func(r runResult) float64 { return r.MaxDeliv }
	halfP99 := func(r runResult) float64 { return r.HalfP99Ms }

	bs, ts, rs := pairs(len(tp), through("tavern-1", maxDeliv, "baseline"))
	add(Target{Issue: 3, Name: "deliveries/s, 1 node vs plain broadcast (1,000 clients, boards of 8)", Unit: "deliveries/s", Goal: ">= 0.7x"},
		bs, ts, rs, true, 0.7, errOf(res, "tavern-1"))
	bs, ts, rs = pairs(len(tp), through("tavern-1", halfP99, "baseline"))
	add(Target{Issue: 3, Name: "p99 op-to-delivery at half the baseline's maximum", Unit: "ms", Goal: "<= 2x"},
		bs, ts, rs, false, 2, errOf(res, "tavern-1"))
	mem := res.Memory
	bs, ts, rs = pairs(len(mem), func(i int) (float64, float64, bool) {
		if len(mem[i]) < 2 || mem[i][0].Err != "" || mem[i][1].Err != "" {
			return 0, 0, false
		}
		return mem[i][0].PerClientGo / 1024, mem[i][1].PerClientGo / 1024, true
	})
	add(Target{Issue: 3, Name: "idle memory per client, heap + stacks (10,000 clients)", Unit: "KB", Goal: "<= 1.5x"},
		bs, ts, rs, false, 1.5, errOf(res, "tavern-1"))
	bs, ts, rs = pairs(len(tp), through("tavern-2", maxDeliv, "baseline"))
	add(Target{Issue: 4, Name: "deliveries/s, 2 nodes (clients split evenly) vs plain single process", Unit: "deliveries/s", Goal: ">= 0.45x"},
		bs, ts, rs, true, 0.45, errOf(res, "tavern-2"))
	// Distribution messages per op: no baseline; the "ratio" is the
	// count per op per remote node (one remote node).
	var dist []float64
	var distNames []string
	for _, row := range tp {
		if r, ok := find(row, "tavern-2"); ok && len(r.Dist) > 0 {
			sum := 0.0
			for k, v := range r.Dist {
				sum += v
				if !slices.Contains(distNames, k) {
					distNames = append(distNames, k)
				}
			}
			dist = append(dist, sum)
		}
	}
	ones := make([]float64, len(dist))
	for i := range ones {
		ones[i] = 1
	}
	distName := "distribution messages per op, 2 nodes"
	if len(distNames) > 0 {
		distName += " (" + strings.Join(distNames, " + ") + ")"
	}
	add(Target{Issue: 4, Name: distName, Unit: "messages/op", Goal: "<= 1 per remote node"},
		ones, dist, dist, false, 1, "the nodes expose no distribution message counter in /metrics (tavern_*dist*_total or tavern_bus_*_total)")
	bs, ts, rs = pairs(len(tp), through("tavern-tls", maxDeliv, "tavern-1"))
	add(Target{Issue: 7, Name: "deliveries/s, TLS gateway vs plain gateway", Unit: "deliveries/s", Goal: ">= 0.8x"},
		bs, ts, rs, true, 0.8, errOf(res, "tavern-tls"))
	for _, s := range res.Storage {
		var bs, ts, rs []float64
		if s.Err == "" && s.Ratio > 0 {
			bs, ts, rs = []float64{s.Baseline}, []float64{s.Tavern}, []float64{s.Ratio}
		}
		name := "acknowledged ops/s, board + group commit vs gorm CreateInBatches(100)"
		if s.Backend != "" {
			name += " on " + s.Backend
		}
		goal, g := ">= 0.5x", 0.5
		if s.Backend == "sqlite" {
			goal, g = "none (Postgres is the target)", 0
		}
		add(Target{Issue: 2, Name: name, Unit: "ops/s", Goal: goal}, bs, ts, rs, true, g, s.Err)
	}
	return out
}

func fmtNum(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func summary(res *Results) string {
	var b strings.Builder
	for _, t := range res.Targets {
		status := "not measured: " + t.NotMeasd
		if t.NotMeasd == "" && t.Met == nil {
			status = fmt.Sprintf("baseline %s, tavern %s %s, ratio %.2f (no target)", fmtNum(t.Baseline), fmtNum(t.Tavern), t.Unit, t.Ratio)
		}
		if t.Met != nil {
			status = fmt.Sprintf("baseline %s, tavern %s %s, ratio %.2f (pairs %s), target %s: %s",
				fmtNum(t.Baseline), fmtNum(t.Tavern), t.Unit, t.Ratio, fmtPairs(t.Pairs), t.Goal, map[bool]string{true: "met", false: "NOT MET"}[*t.Met])
		}
		fmt.Fprintf(&b, "issue %d: %s: %s\n", t.Issue, t.Name, status)
	}
	return b.String()
}

func fmtPairs(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(s, " ")
}

func (b *bench) report(res *Results) string {
	var w strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&w, format, a...) }
	m := res.Machine
	p("# Benchmarks\n\n")
	p("Written by `make bench` (tools/bench); do not edit by hand, run it again. ")
	p("Every comparison runs its baseline and Tavern alternately in the same run (A B A B A B) and reports the median of the per-pair ratios.\n\n")
	p("- Command: `%s`\n", res.Command)
	p("- Run: %s, %.0f s\n", res.Started.UTC().Format("2006-01-02 15:04 MST"), res.Seconds)
	p("- Machine: `nproc` = %d, %s, %s memory, Linux %s\n", m.NumCPU, m.CPU, m.MemTotal, m.Kernel)
	p("- Go: %s (built with %s)\n", m.GoToolchain, m.GoVersion)
	p("- Load average at start / end: %s / %s. The load generator, the servers and PostgreSQL share these %d cores, and other processes of the machine may run too: figures are for comparison within a run, not absolute capacity.\n\n", m.LoadAvgStart, m.LoadAvgEnd, m.NumCPU)

	p("## Against the targets\n\n")
	p("| issue | figure | baseline | Tavern | ratio (median of pairs) | pairs | target | met |\n|---|---|---|---|---|---|---|---|\n")
	for _, t := range res.Targets {
		if t.NotMeasd != "" {
			p("| %d | %s | | | | | %s | not measured: %s |\n", t.Issue, t.Name, t.Goal, mdEscape(t.NotMeasd))
			continue
		}
		if t.Met == nil {
			p("| %d | %s | %s %s | %s %s | %.2f | %s | %s | n/a |\n", t.Issue, t.Name, fmtNum(t.Baseline), t.Unit,
				fmtNum(t.Tavern), t.Unit, t.Ratio, fmtPairs(t.Pairs), t.Goal)
			continue
		}
		met := "**no**"
		if *t.Met {
			met = "yes"
		}
		p("| %d | %s | %s %s | %s %s | %.2f | %s | %s | %s |\n", t.Issue, t.Name, fmtNum(t.Baseline), t.Unit,
			fmtNum(t.Tavern), t.Unit, t.Ratio, fmtPairs(t.Pairs), t.Goal, met)
	}
	o := res.Options
	p("\n## Method\n\n")
	p("- **Load**: tools/loadgen's engine (tools/load) in the bench process: %v clients on boards of %v, spread evenly over the nodes (client i on node i mod N), each sending `chat` ops whose text carries the send time; every member, the sender included, counts the `ev` and its op-to-delivery latency (HDR histograms).\n", o["clients"], o["board_size"])
	p("- **Maximum**: a closed-loop probe (2 ops in flight per client) gives a reference rate; open-loop rate steps of %v then start at 0.4x of it, go up x1.3 while a step passes, down x0.6 while none has, with one bisection after the first failure (at most %v steps). A step passes when acked/sent and delivered/expected deliveries are >= 99%% and p99 op-to-delivery <= %v. *deliveries/s* is the best passing step's.\n", o["step"], o["max_steps"], o["max_p99"])
	p("- **p99 at half load**: in each round, after its maximum search, the baseline runs at half its own maximum and Tavern at half the baseline's maximum of that round: a lead-in of half of %v (not counted, for the queues of the last, overloaded step to drain), then %v measured. Both are measured with the same history behind them.\n", o["half_for"], o["half_for"])
	p("- **Baseline**: tools/wsbaseline, a plain coder/websocket server: the same frames, each op acked at once and broadcast to the board's members under a per-board lock, a bounded outbound queue per connection (1013 when full), no actors, no storage.\n")
	p("- **Tavern**: tavern-server processes on a fresh PostgreSQL database per run (durable acks: group commit), per-IP caps and the per-client op rate lifted for the single-address load; two nodes use discovery postgres.\n")
	p("- **Memory**: servers run with GOGC=%v so the heap in use stays close to the live heap; idle clients (hello, one board of %v joined, nothing sent) are added %v at a time up to %v, and after each step (and %v of rest) the server's `go_memstats_heap_inuse_bytes + go_memstats_stack_inuse_bytes` are read from its /metrics, and its RSS from /proc. Per client is the slope from 0 to the last step. Then %v boards are joined and left by 16 connections, so each is an active board with no member: the growth per board is the cost of a board actor (and in the baseline, of its map entry).\n",
		o["mem_gogc"], o["board_size"], o["mem_step"], o["mem_clients"], b.o.MemSettle, o["mem_boards"])
	p("- **Storage**: apps/board's `BenchmarkAckedOpsVsCreateInBatches` (64 boards, 16 ops in flight each, 25,600 ops per round through board actors and the group-commit writer, against gorm `CreateInBatches(100)` of the same rows, alternated three times, median ratio).\n\n")

	if len(res.Throughput) > 0 {
		p("## Throughput, per round\n\n")
		p("| round | system | max deliveries/s | at ops/s | probe deliveries/s | half-load ops/s | p99 at half (ms) | error |\n|---|---|---|---|---|---|---|---|\n")
		for _, row := range res.Throughput {
			for _, r := range row {
				p("| %d | %s | %.0f | %.0f | %.0f | %.0f | %.1f | %s |\n", r.Round, r.System, r.MaxDeliv, r.MaxOps, r.ProbeDeliv, r.HalfRate, r.HalfP99Ms, mdEscape(short(r.Err)))
			}
		}
		p("\nRate steps of the last round (ops/s offered, deliveries/s, delivery ratio, p99 ms, pass):\n\n")
		last := res.Throughput[len(res.Throughput)-1]
		for _, r := range last {
			var steps []string
			for _, s := range r.Steps {
				pass := ""
				if s.Pass != nil {
					pass = map[bool]string{true: " ok", false: " fail"}[*s.Pass]
				}
				steps = append(steps, fmt.Sprintf("%s: %.0f/s %.1f%% p99 %.0f%s", s.Name, s.DelivPerSec, 100*s.DeliveryRatio, s.Delivery.P99, pass))
			}
			p("- %s: %s\n", r.System, strings.Join(steps, "; "))
		}
		p("\n")
		for _, r := range last {
			if r.Err == "" {
				p("![%s](bench/throughput-%s.png)\n", r.System, r.System)
			}
		}
		p("\n")
	}
	if len(res.Memory) > 0 {
		p("## Idle memory\n\n")
		p("| round | system | per client, heap+stacks | per client, RSS | per board, heap+stacks | per board, RSS | goroutines at the end | error |\n|---|---|---|---|---|---|---|---|\n")
		for _, row := range res.Memory {
			for _, r := range row {
				g := 0.0
				if len(r.Points) > 0 {
					g = r.Points[len(r.Points)-1].Mem.Goroutines
				}
				p("| %d | %s | %.1f KB | %.1f KB | %.2f KB | %.2f KB | %.0f | %s |\n", r.Round, r.System, r.PerClientGo/1024, r.PerClientRSS/1024,
					r.PerBoardGo/1024, r.PerBoardRSS/1024, g, mdEscape(short(r.Err)))
			}
		}
		p("\n![memory](bench/memory.png)\n\n")
	}
	if len(res.Storage) > 0 {
		p("## Storage\n\n| backend | board + group commit ops/s | CreateInBatches(100) rows/s | ratio | error |\n|---|---|---|---|---|\n")
		for _, s := range res.Storage {
			p("| %s | %.0f | %.0f | %.2f | %s |\n", s.Backend, s.Tavern, s.Baseline, s.Ratio, mdEscape(short(s.Err)))
		}
		if len(res.Storage) > 0 {
			p("\nCommand: `%s`\n\n", res.Storage[0].Command)
		}
	}
	var missed []string
	for _, t := range res.Targets {
		if t.Met != nil && !*t.Met {
			missed = append(missed, fmt.Sprintf("- issue %d, %s: ratio %.2f, target %s.", t.Issue, t.Name, t.Ratio, t.Goal))
		} else if t.NotMeasd != "" {
			missed = append(missed, fmt.Sprintf("- issue %d, %s: not measured (%s).", t.Issue, t.Name, short(t.NotMeasd)))
		}
	}
	if len(missed) > 0 {
		p("## Not met in this run\n\n%s\n\nSee the notes below the figures in the issue threads for the analysis of each.\n", strings.Join(missed, "\n"))
	}
	p("\n## Running the tools yourself\n\n")
	p("- `make bench` (this page; `BENCH_FLAGS=\"-only memory -rounds 1\"` for a part, `-quick` to try it).\n")
	p("- `go run ./tools/loadgen -url ws://127.0.0.1:8080/ws -clients 1000 -board-size 8 -mode max -plot max.png -json max.json`: the load generator alone, against any node(s) (repeat `-url`) or `go run ./tools/wsbaseline`; `-mode fixed -rate N`, `-mode saturate`, `-check-dsn postgres://...` to prove the run against the database.\n")
	p("- `make chaos` (`DURATION=10m`): three nodes under load and faults (kill -9 and restart, SIGSTOP/SIGCONT, board crash through tavern-console, pg_terminate_backend, the database cut off, 2x overload), then the invariant check and the recovery time of each fault; report and plot in docs/chaos/. CI runs a 2-minute one (tools/chaos TestChaos).\n")
	p("\nAll figures: [bench/results.json](bench/results.json).\n")
	return w.String()
}

func short(s string) string {
	if len(s) > 160 {
		return s[:160] + "..."
	}
	return s
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s)
}

// plots writes the throughput series of the last round and the memory
// growth.
func (b *bench) plots(res *Results) error {
	var errs []string
	if n := len(res.Throughput); n > 0 {
		for _, r := range res.Throughput[n-1] {
			if r.Err != "" || len(r.Series) == 0 {
				continue
			}
			title := fmt.Sprintf("%s, round %d: %d clients on boards of %d", r.System, r.Round, b.o.Clients, b.o.BoardSize)
			if err := load.PlotRun(filepath.Join(b.o.Dir, "throughput-"+r.System+".png"), title, r.Series, load.PhaseMarks(r.Series)); err != nil {
				errs = append(errs, err.Error())
			}
		}
	}
	if len(res.Memory) > 0 {
		var lines []load.Line
		colors := map[string][2]int{"baseline": {0, 1}, "tavern-1": {2, 3}}
		palette := []load.Line{{Color: rgb(31, 119, 180)}, {Color: rgb(31, 119, 180), Dashed: true},
			{Color: rgb(214, 39, 40)}, {Color: rgb(214, 39, 40), Dashed: true}}
		for _, sys := range []string{"baseline", "tavern-1"} {
			// The median over rounds at each step.
			byClients := map[int][][2]float64{}
			for _, row := range res.Memory {
				for _, r := range row {
					if r.System != sys || r.Err != "" {
						continue
					}
					for _, pt := range r.Points {
						if pt.Boards == 0 {
							byClients[pt.Clients] = append(byClients[pt.Clients], [2]float64{pt.Mem.GoMem(), pt.Mem.RSS})
						}
					}
				}
			}
			var keys []int
			for k := range byClients {
				keys = append(keys, k)
			}
			sort.Ints(keys)
			var goXY, rssXY plotter.XYs
			for _, k := range keys {
				var g, r []float64
				for _, v := range byClients[k] {
					g, r = append(g, v[0]), append(r, v[1])
				}
				goXY = append(goXY, plotter.XY{X: float64(k), Y: median(g) / (1 << 20)})
				rssXY = append(rssXY, plotter.XY{X: float64(k), Y: median(r) / (1 << 20)})
			}
			c := colors[sys]
			l1, l2 := palette[c[0]], palette[c[1]]
			l1.Name, l1.XY = sys+" heap+stacks", goXY
			l2.Name, l2.XY = sys+" RSS", rssXY
			lines = append(lines, l1, l2)
		}
		if err := load.WritePNG(filepath.Join(b.o.Dir, "memory.png"), "idle memory as clients grow (median of rounds)",
			[]load.Panel{{Title: fmt.Sprintf("boards of %d, GOGC=%d", b.o.BoardSize, b.o.MemGOGC), X: "idle clients", Y: "MiB", Lines: lines}}); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("plots: %s", strings.Join(errs, "; "))
	}
	return nil
}

func rgb(r, g, b uint8) color.Color { return color.RGBA{R: r, G: g, B: b, A: 255} }
