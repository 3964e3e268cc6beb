package main

import (
	"strings"
	"testing"
	"time"

	"github.com/tavernhq/tavern/tools/load"
)

func TestRecoveries(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	acks := []load.AckRecord{
		{Board: "a", FirstSent: at(-100), At: at(3000)}, // in flight at the fault: ignored
		{Board: "a", FirstSent: at(10), At: at(2500)},
		{Board: "a", FirstSent: at(500), At: at(2400)}, // the first op after the fault acked
		{Board: "a", FirstSent: at(3000), At: at(3010)},
		{Board: "b", FirstSent: at(5), At: at(20)},
	}
	faults := []FaultEvent{{Kind: faultKill, At: t0}, {Kind: faultPause, At: at(2000)}, {Kind: faultPGKill, At: at(3500)}}
	recoveries(faults, acks, []string{"a", "b"})
	if faults[0].RecoveryMs != 2400 || faults[0].WorstBoard != "a" {
		t.Fatalf("kill: %+v", faults[0])
	}
	if faults[1].RecoveryMs != -1 || faults[1].WorstBoard != "b" {
		t.Fatalf("board b never acked after 2s: %+v", faults[1])
	}
	if faults[2].RecoveryMs != -1 {
		t.Fatalf("nothing acked after the last fault: %+v", faults[2])
	}
}

func TestOptionsValidate(t *testing.T) {
	o := DefaultOptions()
	o.Nodes, o.Faults, o.Duration = 1, []string{"kill", "meteor"}, time.Second
	err := o.Validate()
	if err == nil {
		t.Fatal("bad options accepted")
	}
	for _, want := range []string{"nodes", "meteor", "duration", "server binary"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}
