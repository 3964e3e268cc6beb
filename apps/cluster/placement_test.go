package cluster

import (
	"fmt"
	"testing"
)

func TestOwnerIsDeterministicAndBalanced(t *testing.T) {
	nodes := []string{"a@h", "b@h", "c@h"}
	count := map[string]int{}
	for i := 0; i < 30000; i++ {
		b := fmt.Sprint("board-", i)
		o := Owner(b, nodes)
		if o != Owner(b, []string{"c@h", "a@h", "b@h"}) {
			t.Fatalf("owner of %s depends on the order of nodes", b)
		}
		count[o]++
	}
	for _, n := range nodes {
		if c := count[n]; c < 9000 || c > 11000 {
			t.Fatalf("unbalanced: %v", count)
		}
	}
}

func TestOwnerMovesOnlyWhatItMust(t *testing.T) {
	before := []string{"a@h", "b@h", "c@h"}
	after := append(before, "d@h")
	moved := 0
	for i := 0; i < 20000; i++ {
		b := fmt.Sprint("b", i)
		o1, o2 := Owner(b, before), Owner(b, after)
		if o1 != o2 {
			if o2 != "d@h" {
				t.Fatalf("%s moved from %s to %s, not to the new node", b, o1, o2)
			}
			moved++
		}
	}
	if moved < 4000 || moved > 6000 {
		t.Fatalf("a fourth node took %d of 20000 boards", moved)
	}
	// A node leaving moves only its own boards.
	for i := 0; i < 20000; i++ {
		b := fmt.Sprint("b", i)
		if o := Owner(b, before); o != "b@h" && Owner(b, []string{"a@h", "c@h"}) != o {
			t.Fatalf("%s moved though its owner stayed", b)
		}
	}
}

func TestPlacementView(t *testing.T) {
	p := NewPlacement("a@h")
	if p.Owner("x") != "a@h" {
		t.Fatal("alone, a node owns everything")
	}
	if !p.set([]string{"b@h", "a@h"}) || p.set([]string{"a@h", "b@h"}) {
		t.Fatal("set reports changes only")
	}
	for i := 0; i < 100; i++ {
		b := fmt.Sprint(i)
		if p.OwnerWithout(b, "b@h") != "a@h" {
			t.Fatal("without b, a owns all")
		}
	}
	if Owner("x", nil) != "" {
		t.Fatal("no nodes, no owner")
	}
}
