// Command chaos proves Tavern's guarantees under faults: it starts N
// tavern-server processes on a fresh PostgreSQL database (discovery
// postgres, short heartbeats), drives them with clients that record every
// board's history, and meanwhile kills (-9) and restarts nodes, pauses
// one (SIGSTOP/SIGCONT), crashes board actors through tavern-console,
// terminates or cuts the database connections and overloads the cluster
// to twice its measured maximum. Then it checks that every acknowledged
// op appears exactly once, at the same seq, for every member joined
// across it and in the database, with no gap, and reports the time to
// recover from each fault. Exit status 1 on any broken invariant, printed
// with the first offending board and seq.
//
//	chaos -duration 10m                  # what `make chaos` runs
//	chaos -duration 2m -faults kill,pause
package main

import (
	"context"
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

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	o := DefaultOptions()
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.Nodes, "nodes", o.Nodes, "tavern-server processes")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "length of the run under load")
	fs.IntVar(&o.Clients, "clients", o.Clients, "clients, spread over the nodes")
	fs.IntVar(&o.BoardSize, "board-size", o.BoardSize, "members per board")
	fs.Float64Var(&o.Rate, "rate", 0, "load in ops/s in total (default 4 per client)")
	faults := fs.String("faults", strings.Join(o.Faults, ","), "faults to inject in turn: "+strings.Join(allFaults, ","))
	fs.DurationVar(&o.Every, "every", o.Every, "pause between two faults")
	fs.DurationVar(&o.Quiet, "quiet", o.Quiet, "load without faults at the end, before the check")
	fs.DurationVar(&o.MaxRecovery, "max-recovery", 0, "fail if a fault takes longer to recover from (0: report only)")
	fs.StringVar(&o.AdminDSN, "admin-dsn", o.AdminDSN, "PostgreSQL server to make the run's database on")
	fs.StringVar(&o.ServerBin, "server-bin", "", "tavern-server binary (default: built from ./nodes/server)")
	fs.StringVar(&o.ConsoleBin, "console-bin", "", "tavern-console binary (default: built from ./nodes/console if present)")
	fs.StringVar(&o.Out, "out", "docs/chaos", "directory for chaos.json and chaos.png (\"\": none)")
	keep := fs.String("dir", "", "keep the nodes' configs and logs in this directory")
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "random seed (fault order, boards crashed)")
	quiet := fs.Bool("quiet-progress", false, "no progress bar")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o.Faults = nil
	for _, f := range strings.Split(*faults, ",") {
		if f = strings.TrimSpace(f); f != "" {
			o.Faults = append(o.Faults, f)
		}
	}
	o.Seed, o.Dir, o.Log, o.Progress = *seed, *keep, stderr, !*quiet
	if o.ServerBin == "" || o.ConsoleBin == "" {
		dir, err := os.MkdirTemp("", "tavern-chaos-bin-")
		if err != nil {
			fmt.Fprintln(stderr, "chaos:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		if o.ServerBin == "" {
			if o.ServerBin, err = build(dir, "./nodes/server"); err != nil {
				fmt.Fprintln(stderr, "chaos:", err)
				return 1
			}
		}
		if o.ConsoleBin == "" {
			if _, err := os.Stat("nodes/console"); err == nil {
				if o.ConsoleBin, err = build(dir, "./nodes/console"); err != nil {
					fmt.Fprintln(stderr, "chaos: console:", err, "(crash faults skipped)")
					o.ConsoleBin = ""
				}
			}
		}
	}
	fmt.Fprintf(stderr, "chaos: seed %d\n", o.Seed)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	out, err := Run(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, "chaos:", err)
		return 1
	}
	out.Print(stdout)
	if o.Out != "" {
		fmt.Fprintf(stdout, "report: %s, plot: %s\n", filepath.Join(o.Out, "chaos.json"), filepath.Join(o.Out, "chaos.png"))
	}
	if !out.OK() {
		return 1
	}
	return 0
}

// build compiles pkg (from the module root, the working directory) into dir.
func build(dir, pkg string) (string, error) {
	bin := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}
