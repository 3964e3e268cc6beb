// Command server runs a Tavern board server node: it reads sys.config,
// starts an Ergo node with Tavern's settings and the store, board and
// gateway applications, and on SIGINT/SIGTERM stops taking clients,
// flushes the store and exits 0. A bad config exits 2 with every problem
// listed, nothing started.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/tavernhq/tavern/internal/sysconfig"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tavern-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "./sys.config", "path of the node's sys.config")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (go tool pprof) to this file until the node stops")
	allocProfile := fs.String("allocprofile", "", "write the allocations since start (go tool pprof -sample_index=alloc_space) to this file when the node stops")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	if *allocProfile != "" {
		defer func() {
			if err := writeAllocProfile(*allocProfile); err != nil {
				fmt.Fprintln(stderr, "allocprofile:", err)
			}
		}()
	}
	cfg, err := sysconfig.Load(*configPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	level := new(slog.LevelVar)
	level.Set(parseLevel(cfg.Node.LogLevel))
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})).With("node", cfg.Node.Name)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	srv, err := Start(ctx, cfg, log, level)
	if err != nil {
		log.Error("node failed to start", "err", err)
		return 1
	}
	fmt.Fprintf(stdout, "tavern node %s serving http://%s/\n", cfg.Node.Name, srv.HTTPAddr())
	select {
	case <-ctx.Done():
	case <-srv.Drained():
		log.Info("drained")
	}
	log.Info("stopping")
	if err := srv.Stop(); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("stop", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

func parseLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}

// writeAllocProfile writes the heap profile, whose alloc_space and
// alloc_objects samples count every allocation since the start.
func writeAllocProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
