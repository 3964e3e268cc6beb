package main

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/tavernhq/tavern/internal/testutil"
)

// TestChaos is the short chaos run of CI: three node processes on a fresh
// Postgres database under load, while nodes are killed and restarted,
// paused, board actors crashed, database connections cut and the cluster
// overloaded; it fails on any lost, duplicated or reordered acknowledged
// op. TAVERN_CHAOS_DURATION sets its length (default 2m, 45s with -short).
func TestChaos(t *testing.T) {
	d := 2 * time.Minute
	if testing.Short() {
		d = 45 * time.Second
	}
	if s := os.Getenv("TAVERN_CHAOS_DURATION"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			t.Fatalf("TAVERN_CHAOS_DURATION: %v", err)
		}
	}
	o := DefaultOptions()
	o.Duration = d
	// Every kind of fault (DefaultOptions), shuffled by the seed.
	o.DSN = testutil.NewPostgres(t)
	// TAVERN_CHAOS_SERVER_BIN and TAVERN_CHAOS_CONSOLE_BIN run prebuilt
	// binaries instead of building them.
	o.ServerBin = os.Getenv("TAVERN_CHAOS_SERVER_BIN")
	if o.ServerBin == "" {
		o.ServerBin = testutil.Binary(t, "./nodes/server")
	}
	o.ConsoleBin = os.Getenv("TAVERN_CHAOS_CONSOLE_BIN")
	if _, err := os.Stat("../../nodes/console"); err == nil && o.ConsoleBin == "" {
		o.ConsoleBin = testutil.Binary(t, "./nodes/console")
	}
	o.Dir = t.TempDir()
	o.Out = t.TempDir()
	o.Clients, o.BoardSize = 36, 6
	o.Every = 10 * time.Second
	o.Seed = uint64(time.Now().UnixNano())
	var log bytes.Buffer
	o.Log = &log
	ctx, cancel := context.WithTimeout(context.Background(), d+5*time.Minute)
	defer cancel()
	out, err := Run(ctx, o)
	if err != nil {
		t.Fatalf("chaos run: %v\n%s", err, log.String())
	}
	var report bytes.Buffer
	out.Print(&report)
	t.Logf("seed %d\n%s\n%s", o.Seed, log.String(), report.String())
	if !out.OK() {
		for i := range o.Nodes {
			if b, err := os.ReadFile(o.Dir + "/node" + string(rune('1'+i)) + ".log"); err == nil && len(b) > 0 {
				t.Logf("node%d log (tail):\n%s", i+1, tail(b, 4000))
			}
		}
		t.Fatalf("chaos run failed: %v", out.Failures)
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
