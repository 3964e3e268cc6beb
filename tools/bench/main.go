// Command bench runs, in one command, every benchmark Tavern's issues
// name, each against its baseline in the same run, alternating baseline
// and Tavern (A B A B A B) and reporting the median of the per-pair
// ratios; it writes docs/BENCHMARKS.md, the plots and a JSON file of
// every figure. It is what `make bench` runs.
//
//   - plain coder/websocket broadcast (tools/wsbaseline) vs Tavern on one
//     node: 1,000 clients on boards of 8, deliveries/s at the highest
//     rate that passes (delivery ratio, p99), and p99 at half the
//     baseline's maximum;
//   - Tavern on two nodes (clients split evenly) vs the same baseline,
//     and distribution messages per op where the nodes count them;
//   - Tavern with TLS on the gateway vs plain;
//   - idle memory per client (and per board actor) up to 10,000 clients
//     and 10,000 boards, vs the baseline's per client, with a plot;
//   - the board + group-commit path vs gorm CreateInBatches(100).
//
// It needs PostgreSQL (-admin-dsn) and builds tavern-server and
// wsbaseline from the module it runs in.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Options shape a bench run.
type Options struct {
	Rounds    int           // A B pairs of every comparison
	Clients   int           // throughput clients
	BoardSize int           // members per board
	Step      time.Duration // each rate step of the maximum search
	MaxSteps  int           // rate steps of the search
	HalfFor   time.Duration // the half-load run
	MaxP99    time.Duration // pass rule of the search
	// Memory: idle clients up to MemClients in steps of MemStep, then
	// MemBoards boards; servers run with GOGC=MemGOGC so that the heap in
	// use is close to the live heap; each reading waits MemSettle.
	MemClients, MemStep, MemBoards, MemGOGC int
	MemSettle                               time.Duration
	AdminDSN                                string
	// Only runs these parts (throughput, cluster, tls, memory, storage);
	// empty: all.
	Only     map[string]bool
	Out      string // the Markdown report
	Dir      string // plots and results.json
	Log      io.Writer
	Progress bool
	Command  string // the command line, for the report
}

type bench struct {
	o           Options
	serverBin   string
	baselineBin string
	logDir      string
	start       time.Time
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.o.Log, "bench %5.0fs: %s\n", time.Since(b.start).Seconds(), fmt.Sprintf(format, args...))
}

func (b *bench) procLog(name string) io.Writer {
	f, err := os.OpenFile(filepath.Join(b.logDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return io.Discard
	}
	return f
}

func (b *bench) want(part string) bool { return len(b.o.Only) == 0 || b.o.Only[part] }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	o := Options{Log: stderr}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.Rounds, "rounds", 3, "A B pairs of every comparison")
	fs.IntVar(&o.Clients, "clients", 1000, "throughput clients")
	fs.IntVar(&o.BoardSize, "board-size", 8, "members per board")
	fs.DurationVar(&o.Step, "step", 4*time.Second, "duration of each rate step")
	fs.IntVar(&o.MaxSteps, "max-steps", 5, "rate steps of the maximum search")
	fs.DurationVar(&o.HalfFor, "half-for", 8*time.Second, "duration of the half-load run (after a lead-in of half as long)")
	fs.DurationVar(&o.MaxP99, "max-p99", 250*time.Millisecond, "pass rule: highest p99 op-to-delivery latency")
	fs.IntVar(&o.MemClients, "mem-clients", 10000, "idle clients of the memory benchmark")
	fs.IntVar(&o.MemStep, "mem-step", 2000, "clients added between two memory readings")
	fs.IntVar(&o.MemBoards, "mem-boards", 10000, "boards activated by the memory benchmark")
	fs.IntVar(&o.MemGOGC, "mem-gogc", 10, "GOGC of the servers during the memory benchmark")
	fs.DurationVar(&o.MemSettle, "mem-settle", 2*time.Second, "wait before each memory reading")
	fs.StringVar(&o.AdminDSN, "admin-dsn", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "PostgreSQL server for Tavern's databases")
	only := fs.String("only", "", "comma-separated parts to run: throughput,cluster,tls,memory,storage (default all)")
	fs.StringVar(&o.Out, "out", "docs/BENCHMARKS.md", "the Markdown report")
	fs.StringVar(&o.Dir, "dir", "docs/bench", "directory for the plots and results.json")
	serverBin := fs.String("server-bin", "", "tavern-server binary (default: built from ./nodes/server)")
	quiet := fs.Bool("quiet", false, "no progress bars")
	quick := fs.Bool("quick", false, "a small, fast run to try the tool (not for the report)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o.Progress = !*quiet
	o.Command = "go run ./tools/bench " + strings.Join(args, " ")
	if len(args) == 0 {
		o.Command = "make bench  (go run ./tools/bench)"
	}
	if *only != "" {
		o.Only = map[string]bool{}
		for _, p := range strings.Split(*only, ",") {
			o.Only[strings.TrimSpace(p)] = true
		}
	}
	if *quick {
		o.Rounds, o.Clients, o.Step, o.MaxSteps, o.HalfFor = 1, 200, 2*time.Second, 3, 2*time.Second
		o.MemClients, o.MemStep, o.MemBoards = 1000, 500, 500
	}
	b := &bench{o: o, start: time.Now()}
	dir, err := os.MkdirTemp("", "tavern-bench-bin-")
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	b.logDir = filepath.Join(dir, "logs")
	_ = os.MkdirAll(b.logDir, 0o755)
	for _, p := range []struct {
		pkg string
		dst *string
	}{{"./nodes/server", &b.serverBin}, {"./tools/wsbaseline", &b.baselineBin}} {
		if p.pkg == "./nodes/server" && *serverBin != "" {
			b.serverBin = *serverBin
			continue
		}
		*p.dst = filepath.Join(dir, filepath.Base(p.pkg))
		cmd := exec.Command("go", "build", "-o", *p.dst, p.pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(stderr, "bench: go build %s: %v\n%s", p.pkg, err, out)
			return 1
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res := b.run(ctx)
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	var errs []error
	errs = append(errs, b.plots(res))
	js, _ := json.MarshalIndent(res, "", "  ")
	errs = append(errs, os.WriteFile(filepath.Join(o.Dir, "results.json"), append(js, '\n'), 0o644))
	md := b.report(res)
	errs = append(errs, os.WriteFile(o.Out, []byte(md), 0o644))
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	fmt.Fprint(stdout, summary(res))
	fmt.Fprintf(stdout, "wrote %s, %s/results.json and plots in %s (process logs were in %s)\n", o.Out, o.Dir, o.Dir, b.logDir)
	return 0
}

// Results is every figure of a bench run.
type Results struct {
	Machine    Machine         `json:"machine"`
	Command    string          `json:"command"`
	Options    map[string]any  `json:"options"`
	Started    time.Time       `json:"started"`
	Seconds    float64         `json:"seconds"`
	Throughput [][]runResult   `json:"throughput"` // per round: baseline, tavern-1, tavern-2, tavern-tls
	Memory     [][]memResult   `json:"memory"`     // per round: baseline, tavern
	Storage    []storageResult `json:"storage"`
	Targets    []Target        `json:"targets"`
}

func (b *bench) run(ctx context.Context) *Results {
	o := b.o
	res := &Results{Machine: machine(), Command: o.Command, Started: b.start, Options: map[string]any{
		"rounds": o.Rounds, "clients": o.Clients, "board_size": o.BoardSize, "step": o.Step.String(),
		"max_steps": o.MaxSteps, "half_for": o.HalfFor.String(), "max_p99": o.MaxP99.String(),
		"mem_clients": o.MemClients, "mem_step": o.MemStep, "mem_boards": o.MemBoards, "mem_gogc": o.MemGOGC,
	}}
	if b.want("throughput") || b.want("cluster") || b.want("tls") {
		for round := 1; round <= o.Rounds && ctx.Err() == nil; round++ {
			base := b.throughput(ctx, b.baseline(), round, 0)
			row := []runResult{base}
			half := -1.0
			if base.MaxOps > 0 {
				half = base.MaxOps / 2
			}
			if b.want("throughput") || b.want("tls") {
				row = append(row, b.throughput(ctx, b.tavern("tavern-1", 1, false), round, half))
			}
			if b.want("cluster") {
				row = append(row, b.throughput(ctx, b.tavern("tavern-2", 2, false), round, -1))
			}
			if b.want("tls") {
				row = append(row, b.throughput(ctx, b.tavern("tavern-tls", 1, true), round, -1))
			}
			res.Throughput = append(res.Throughput, row)
		}
	}
	if b.want("memory") {
		for round := 1; round <= o.Rounds && ctx.Err() == nil; round++ {
			res.Memory = append(res.Memory, []memResult{
				b.memory(ctx, b.baseline(), round),
				b.memory(ctx, b.tavern("tavern-1", 1, false), round),
			})
		}
	}
	if b.want("storage") && ctx.Err() == nil {
		res.Storage = b.storage(ctx)
	}
	res.Seconds = time.Since(b.start).Seconds()
	res.Machine.LoadAvgEnd = loadavg()
	res.Targets = targets(res)
	return res
}
