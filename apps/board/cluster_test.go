package board

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tavernhq/tavern/apps/cluster"
	"github.com/tavernhq/tavern/internal/sysconfig"
	"github.com/tavernhq/tavern/internal/testutil"
)

// twoNodes starts two nodes sharing a Postgres database and an EPMD,
// finding each other through the nodes table.
func twoNodes(t *testing.T) (*testNode, *testNode) {
	dsn := testutil.NewPostgres(t)
	tweak := clusterTweak(testutil.FreePort(t))
	a := startNode(t, dsn, tweak)
	b := startNode(t, dsn, tweak)
	for _, n := range []*testNode{a, b} {
		testutil.Eventually(t, 10*time.Second, func() bool {
			return len(n.deps.Placement.(*cluster.Placement).Live()) == 2
		}, "%s sees both nodes", n.name)
	}
	return a, b
}

// clusterTweak configures nodes that share the EPMD at epmd and find
// each other through the nodes table, with a fast heartbeat.
func clusterTweak(epmd int) func(*sysconfig.Config) {
	return func(c *sysconfig.Config) {
		c.Node.EPMDPort = epmd
		c.Cluster.Discovery = "postgres"
		c.Cluster.HeartbeatMs = 100
		c.Cluster.DownAfterMs = 1000
	}
}

// boardOwnedBy finds a board id that placement gives to owner.
func boardOwnedBy(owner *testNode, live []string) string {
	for i := 0; ; i++ {
		id := fmt.Sprint("x", i)
		if cluster.Owner(id, live) == owner.name {
			return id
		}
	}
}

func TestClusterJoinOpPresenceAcrossNodes(t *testing.T) {
	a, b := twoNodes(t)
	live := []string{a.name, b.name}
	board := boardOwnedBy(a, live)
	onA, onB := a.client("alice"), b.client("bob")
	onA.join(board, -1, "")
	onA.expect("joined")
	onA.expect("presence")
	onB.join(board, -1, "jb")
	if j := onB.expect("joined"); j["ref"] != "jb" {
		t.Fatalf("joined on b: %v", j)
	}
	if p := onB.expect("presence"); fmt.Sprint(p["users"]) != "[alice bob]" {
		t.Fatalf("presence on b: %v", p)
	}
	if p := onA.expect("presence"); fmt.Sprint(p["joins"]) != "[bob]" {
		t.Fatalf("presence on a: %v", p)
	}
	// The board runs on its owner only.
	if _, ok, _ := Lookup(b.probe(), board); ok {
		t.Fatal("board active on the non-owner")
	}
	for i := 1; i <= 300; i++ {
		c := onA
		if i%2 == 0 {
			c = onB
		}
		c.op(board, fmt.Sprint("op", i), put("e", i), "")
	}
	var seqA, seqB []int64
	for len(seqA) < 300 || len(seqB) < 300 {
		for _, c := range []*client{onA, onB} {
			select {
			case <-time.After(10 * time.Second):
				t.Fatalf("stalled at a=%d b=%d", len(seqA), len(seqB))
			default:
			}
			if len(seqA) == 300 && c == onA || len(seqB) == 300 && c == onB {
				continue
			}
			m := c.next()
			if m["t"] == "ev" {
				if c == onA {
					seqA = append(seqA, seqOf(m))
				} else {
					seqB = append(seqB, seqOf(m))
				}
			}
		}
	}
	want := make([]int64, 300)
	for i := range want {
		want[i] = int64(i + 1)
	}
	if !slices.Equal(seqA, want) || !slices.Equal(seqB, want) {
		t.Fatalf("order differs: a=%v b=%v", seqA[:10], seqB[:10])
	}
	// Bob's node goes away: Alice sees him leave.
	b.stop()
	if p := onA.until("presence", nil); fmt.Sprint(p["leaves"]) != "[bob]" {
		t.Fatalf("leave after node down: %v", p)
	}
}

func TestClusterOwnerDownBoardMovesWithoutGap(t *testing.T) {
	a, b := twoNodes(t)
	board := boardOwnedBy(a, []string{a.name, b.name})
	c := b.client("carol")
	c.join(board, -1, "")
	c.expect("joined")
	c.expect("presence")
	for i := 1; i <= 20; i++ {
		c.op(board, fmt.Sprint(i), put("e", i), "")
		c.expect("ack")
		c.expect("ev")
	}
	start := time.Now()
	a.stop()
	// Carol stays connected; her next ops land on the new owner (b),
	// retried with the same id while the board moves.
	for i := 21; i <= 30; i++ {
		if m := c.opUntilAck(board, fmt.Sprint(i), put("e", i)); seqOf(m) != int64(i) {
			t.Fatalf("after failover: %v", m)
		}
		if e := c.expect("ev"); seqOf(e) != int64(i) {
			t.Fatalf("ev after failover: %v", e)
		}
	}
	t.Logf("board accepted ops again %v after its owner stopped", time.Since(start))
	if _, ok, _ := Lookup(b.probe(), board); !ok {
		t.Fatal("board is not on the survivor")
	}
}

func TestDrainHandsBoardsToTheOtherNode(t *testing.T) {
	a, b := twoNodes(t)
	board := boardOwnedBy(a, []string{a.name, b.name})
	c := b.client("dora")
	c.join(board, -1, "")
	c.expect("joined")
	c.expect("presence")
	c.opUntilAck(board, "1", put("e", 1))
	c.expect("ev")
	n, err := Drain(a.probe())
	if err != nil || n != 1 {
		t.Fatalf("drain: %d %v", n, err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		ids, _ := Boards(a.probe())
		return len(ids) == 0
	}, "drained node has no boards")
	if m := c.opUntilAck(board, "2", put("e", 2)); seqOf(m) != 2 {
		t.Fatalf("after drain: %v", m)
	}
	if e := c.expect("ev"); seqOf(e) != 2 {
		t.Fatalf("ev after drain: %v", e)
	}
	if _, ok, _ := Lookup(b.probe(), board); !ok {
		t.Fatal("board did not move to the other node")
	}
}
