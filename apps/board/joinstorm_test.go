package board

import (
	"fmt"
	"testing"
	"time"

	"github.com/tavernhq/tavern/internal/testutil"
)

// Many clients on two nodes join at once while the cluster forms and the
// boards settle on their owners: every join is answered.
func TestJoinStormOnTwoNodes(t *testing.T) {
	dsn := testutil.NewPostgres(t)
	tweak := clusterTweak(testutil.FreePort(t))
	a := startNode(t, dsn, tweak)
	b := startNode(t, dsn, tweak)
	var clients []*client
	for i := 0; i < 200; i++ {
		n := a
		if i%2 == 1 {
			n = b
		}
		c := n.client(fmt.Sprint("u", i))
		c.join(fmt.Sprint("storm", i%25), -1, "j")
		clients = append(clients, c)
	}
	deadline := time.Now().Add(30 * time.Second)
	for i, c := range clients {
		for {
			if time.Now().After(deadline) {
				t.Fatalf("client %d: no joined within 30s", i)
			}
			select {
			case f := <-c.frames:
				if string(f[:13]) == `{"t":"joined"` {
					goto next
				}
				if string(f[:12]) == `{"t":"error"` {
					c.join(fmt.Sprint("storm", i%25), -1, "j") // refused while moving: again
				}
			case <-c.closed:
				t.Fatalf("client %d closed", i)
			case <-time.After(100 * time.Millisecond):
			}
		}
	next:
	}
}
