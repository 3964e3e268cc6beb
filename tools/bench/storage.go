package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// storageResult is the board + group-commit path against gorm
// CreateInBatches(100) of the same rows, from the board app's own
// benchmark (which alternates them A B A B A B and reports the median
// of the per-pair ratios).
type storageResult struct {
	Backend  string  `json:"backend"`
	Err      string  `json:"error,omitempty"`
	Tavern   float64 `json:"tavern_ops_per_sec"`
	Baseline float64 `json:"baseline_rows_per_sec"`
	Ratio    float64 `json:"ratio"`
	Command  string  `json:"command"`
}

const storageBench = "BenchmarkAckedOpsVsCreateInBatches"

func (b *bench) storage(ctx context.Context) []storageResult {
	args := []string{"test", "-run", "^$", "-bench", "^" + storageBench + "$", "-benchtime", "1x", "-count", "1", "./apps/board"}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	b.logf("storage: go %s", strings.Join(args, " "))
	err := cmd.Run()
	command := "go " + strings.Join(args, " ")
	res := parseStorage(out.String(), command)
	if err != nil && len(res) == 0 {
		msg := out.String()
		if len(msg) > 2000 {
			msg = msg[len(msg)-2000:]
		}
		return []storageResult{{Err: fmt.Sprintf("%v: %s", err, msg), Command: command}}
	}
	for _, r := range res {
		b.logf("storage %s: tavern %.0f ops/s, CreateInBatches %.0f rows/s, ratio %.2f", r.Backend, r.Tavern, r.Baseline, r.Ratio)
	}
	return res
}

// parseStorage reads lines such as
// BenchmarkAckedOpsVsCreateInBatches/postgres-2  1  123 ns/op  0.62 ratio  9000 tavern_ops/s  14000 baseline_rows/s
func parseStorage(out, command string) []storageResult {
	var res []storageResult
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || !strings.HasPrefix(f[0], storageBench+"/") {
			continue
		}
		name := strings.TrimPrefix(f[0], storageBench+"/")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i]
		}
		r := storageResult{Backend: name, Command: command}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ratio":
				r.Ratio = v
			case "tavern_ops/s":
				r.Tavern = v
			case "baseline_rows/s":
				r.Baseline = v
			}
		}
		res = append(res, r)
	}
	return res
}
