// Command loadgen drives Tavern nodes (or anything speaking PROTOCOL.md,
// like tools/wsbaseline) with N clients on boards of K members and
// reports deliveries per second, ack and op-to-delivery latency
// percentiles, errors by code and close codes; it writes the result as
// JSON and a PNG plot of throughput and latency over time.
//
//	loadgen -url ws://127.0.0.1:8080/ws -clients 1000 -board-size 8 -rate 2000 -duration 30s
//	loadgen -url ws://a/ws -url ws://b/ws -mode max -step 5s -plot max.png -json max.json
//	loadgen -url ws://127.0.0.1:8080/ws -mode saturate -duration 10s
//
// Modes: fixed (open loop at -rate ops/s in total), saturate (closed
// loop: every client keeps -window ops in flight) and max (rate steps
// from a saturation probe; the highest step whose delivery ratio and p99
// pass the rule). With -check-dsn it records every client's history and
// proves, against the database, that every acknowledged op was delivered
// exactly once, in order, to every member (exit 1 if not).
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/tavernhq/tavern/tools/load"
)

type urlList []string

func (u *urlList) String() string { return strings.Join(*u, ",") }
func (u *urlList) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*u = append(*u, p)
		}
	}
	return nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var urls urlList
	fs.Var(&urls, "url", "a node's WebSocket URL (repeat, or comma-separated); clients are spread over them")
	clients := fs.Int("clients", 1000, "number of clients")
	boardSize := fs.Int("board-size", 8, "members per board")
	mode := fs.String("mode", "fixed", "fixed, saturate or max")
	rate := fs.Float64("rate", 1000, "fixed mode: ops per second in total")
	duration := fs.Duration("duration", 30*time.Second, "fixed and saturate modes: how long to send")
	step := fs.Duration("step", 5*time.Second, "max mode: duration of each rate step")
	maxP99 := fs.Duration("max-p99", 250*time.Millisecond, "max mode: pass rule's highest p99 op-to-delivery latency")
	minRatio := fs.Float64("min-ratio", 0.99, "max mode: pass rule's least delivery ratio")
	kind := fs.String("kind", "chat", "ops to send: chat, put or mix")
	window := fs.Int("window", 64, "most ops in flight per client")
	stall := fs.Duration("stall", 10*time.Second, "reconnect when an answer takes longer than this")
	prefix := fs.String("prefix", "", "board and user name prefix (default: random)")
	jsonOut := fs.String("json", "", "write the result as JSON to this file (- for stdout)")
	plotOut := fs.String("plot", "", "write a PNG plot of throughput and latency over time to this file")
	checkDSN := fs.String("check-dsn", "", "postgres:// DSN of the nodes' database: record histories and check them against board_ops")
	caFile := fs.String("ca", "", "PEM CA bundle to trust for wss:// URLs")
	insecure := fs.Bool("insecure", false, "do not verify wss:// certificates")
	quiet := fs.Bool("quiet", false, "no progress bar")
	verbose := fs.Bool("v", false, "log reconnects and violations")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the load generator to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	if *prefix == "" {
		var b [3]byte
		_, _ = rand.Read(b[:])
		*prefix = "lg" + hex.EncodeToString(b[:])
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	cfg := load.Config{
		URLs: urls, Clients: *clients, BoardSize: *boardSize, Prefix: *prefix, Kind: *kind,
		Window: *window, StallTimeout: *stall, Record: *checkDSN != "",
		Log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	}
	if *caFile != "" || *insecure {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: *insecure}
		if *caFile != "" {
			pem, err := os.ReadFile(*caFile)
			if err != nil {
				fmt.Fprintln(stderr, "loadgen:", err)
				return 2
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				fmt.Fprintf(stderr, "loadgen: %s: no certificate\n", *caFile)
				return 2
			}
		}
		cfg.TLS = tc
	}
	var problems []error
	switch *mode {
	case "fixed", "saturate", "max":
	default:
		problems = append(problems, fmt.Errorf("-mode %q: want fixed, saturate or max", *mode))
	}
	if *mode == "fixed" && *rate <= 0 {
		problems = append(problems, errors.New("-rate must be positive"))
	}
	if err := cfg.Validate(); err != nil {
		problems = append(problems, err)
	}
	if err := errors.Join(problems...); err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 2
	}
	r, err := load.New(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	cctx, cancel := context.WithTimeout(ctx, time.Minute+time.Duration(*clients)*5*time.Millisecond)
	err = r.Connect(cctx)
	cancel()
	if err != nil {
		r.Close()
		fmt.Fprintln(stderr, "loadgen:", err)
		return 1
	}
	mc := load.MaxConfig{Step: *step, MaxP99: *maxP99, MinDeliveryRatio: *minRatio}
	planned := *duration
	if *mode == "max" {
		planned = time.Duration(7) * (*step + time.Second)
	}
	var prog *load.Progress
	if !*quiet {
		prog = load.StartProgress(stderr, r, planned)
	}
	var maxRes *load.MaxResult
	switch *mode {
	case "fixed":
		r.Fixed(ctx, fmt.Sprintf("fixed %.0f ops/s", *rate), *rate, *duration)
	case "saturate":
		r.Saturate(ctx, "saturate", *duration)
	case "max":
		m := r.FindMax(ctx, mc)
		maxRes = &m
	}
	settled := r.Settle(ctx, 10*time.Second)
	var recs load.Records
	if cfg.Record {
		recs = r.Records()
	}
	r.Close()
	if prog != nil {
		prog.Stop()
	}
	res := r.Result()
	res.Max = maxRes
	printResult(stdout, res, settled)
	code := 0
	if *checkDSN != "" {
		rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		rows, err := load.ReadBoardOps(rctx, *checkDSN, *prefix+"-")
		cancel()
		if err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 1
		}
		rep := load.Check(recs, rows)
		fmt.Fprintln(stdout, "check:", rep)
		if !rep.OK() {
			code = 1
		}
	}
	if *plotOut != "" {
		title := fmt.Sprintf("loadgen %s: %d clients, boards of %d, %d node(s)", *mode, *clients, *boardSize, len(urls))
		if err := load.PlotRun(*plotOut, title, res.Series, load.PhaseMarks(res.Series)); err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			code = 1
		}
	}
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		b = append(b, '\n')
		if *jsonOut == "-" {
			_, _ = stdout.Write(b)
		} else if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			code = 1
		}
	}
	return code
}

func printResult(w io.Writer, res load.Result, settled bool) {
	fmt.Fprintf(w, "%d clients on boards of %d over %d node(s), ops %s\n", res.Clients, res.BoardSize, len(res.Nodes), res.Kind)
	fmt.Fprintf(w, "%-22s %10s %10s %12s %8s %8s %9s %9s %9s %9s\n",
		"phase", "offered/s", "acks/s", "deliveries/s", "ack%", "deliv%", "ack p50", "ack p99", "dlv p50", "dlv p99")
	for _, p := range res.Phases {
		pass := ""
		if p.Pass != nil {
			pass = map[bool]string{true: " pass", false: " FAIL"}[*p.Pass]
		}
		fmt.Fprintf(w, "%-22s %10.0f %10.0f %12.0f %7.2f%% %7.2f%% %7.1fms %7.1fms %7.1fms %7.1fms%s\n",
			p.Name, p.Offered, p.AcksPerSec, p.DelivPerSec, 100*p.AckRatio, 100*p.DeliveryRatio,
			p.Ack.P50, p.Ack.P99, p.Delivery.P50, p.Delivery.P99, pass)
	}
	if res.Max != nil {
		if res.Max.Best != nil {
			fmt.Fprintf(w, "maximum: %.0f deliveries/s at %.0f ops/s (%s)\n", res.Max.Best.DelivPerSec, res.Max.Best.Offered, res.Max.Rule)
		} else {
			fmt.Fprintf(w, "maximum: no step passed (%s)\n", res.Max.Rule)
		}
	}
	t := res.Total
	fmt.Fprintf(w, "total: sent %d, resent %d, acked %d (dup %d), shed %d, skipped %d, delivered %d of %d expected\n",
		t.Sent, t.Resent, t.Acked, t.DupAcks, t.Shed, t.Skipped, t.Delivered, t.Expected)
	fmt.Fprintf(w, "ack latency ms: p50 %.2f p90 %.2f p99 %.2f p99.9 %.2f max %.2f\n", t.Ack.P50, t.Ack.P90, t.Ack.P99, t.Ack.P999, t.Ack.Max)
	fmt.Fprintf(w, "op-to-delivery ms: p50 %.2f p90 %.2f p99 %.2f p99.9 %.2f max %.2f\n",
		t.Delivery.P50, t.Delivery.P90, t.Delivery.P99, t.Delivery.P999, t.Delivery.Max)
	fmt.Fprintf(w, "errors by code: %s\nclose codes: %s\nreconnects %d, protocol violations %d, settled %v\n",
		fmtCounts(res.Counters.Errors), fmtCounts(res.Counters.Closes), res.Counters.Reconnects, res.Counters.Violations, settled)
}

func fmtCounts(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}
