package main

import (
	"strings"
	"testing"
)

func TestParseStorage(t *testing.T) {
	out := `goos: linux
BenchmarkAckedOpsVsCreateInBatches/postgres-2         	       1	12345 ns/op	     84949 baseline_rows/s	         0.5012 ratio	     45275 tavern_ops/s
BenchmarkAckedOpsVsCreateInBatches/sqlite-2           	       1	12345 ns/op	     42510 baseline_rows/s	         0.38 ratio	     14921 tavern_ops/s
PASS`
	res := parseStorage(out, "cmd")
	if len(res) != 2 || res[0].Backend != "postgres" || res[0].Ratio != 0.5012 || res[0].Tavern != 45275 || res[0].Baseline != 84949 ||
		res[1].Backend != "sqlite" || res[1].Ratio != 0.38 {
		t.Fatalf("parsed %+v", res)
	}
}

func TestTargetsMedianOfPairs(t *testing.T) {
	row := func(base, t1, t2 float64, p99b, p99t float64) []runResult {
		return []runResult{
			{System: "baseline", MaxDeliv: base, HalfP99Ms: p99b},
			{System: "tavern-1", MaxDeliv: t1, HalfP99Ms: p99t},
			{System: "tavern-2", MaxDeliv: t2},
			{System: "tavern-tls", Err: "no TLS"},
		}
	}
	res := &Results{Throughput: [][]runResult{
		row(100, 80, 0, 10, 30), row(100, 60, 0, 10, 10), row(200, 300, 0, 10, 15),
	}}
	tg := targets(res)
	byIssue := map[string]Target{}
	for _, x := range tg {
		byIssue[x.Name] = x
	}
	d := tg[0]
	if d.Ratio != 0.8 || d.Met == nil || !*d.Met {
		t.Fatalf("1 node: %+v", d)
	}
	p := tg[1]
	if p.Ratio != 1.5 || p.Met == nil || !*p.Met {
		t.Fatalf("p99: %+v", p)
	}
	two := tg[3]
	if two.Met == nil || *two.Met || two.Ratio != 0 || len(two.Pairs) != 3 {
		t.Fatalf("2 nodes that passed no step must count as 0: %+v", two)
	}
	var tls Target
	for _, x := range tg {
		if x.Issue == 7 {
			tls = x
		}
	}
	if tls.Met != nil || !strings.Contains(tls.NotMeasd, "no TLS") {
		t.Fatalf("tls: %+v", tls)
	}
}
