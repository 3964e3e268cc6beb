package ergonode

import (
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/tavernhq/tavern/internal/testutil"
)

// stopper stops on every message; the first one waits for release, so
// that more messages are queued behind it when it returns.
type stopper struct {
	gen.Server
	release chan struct{}
}

func (s *stopper) HandleInfo(*gen.ServerProcess, etf.Term) gen.ServerStatus {
	<-s.release
	return gen.ServerStatusStop
}

// A process that returns ServerStatusStop with messages still queued
// exits. Unpatched Ergo 2.2.4 could run two more callbacks before it
// looked at the stop, and the third Stop hung the process for ever: a
// board actor that stopped that way answered no join again
// (third_party/ergo/TAVERN_PATCHES.md).
func TestStopWithQueuedMessagesExits(t *testing.T) {
	n := startNode(t, "cookie", 0, nil)
	release := make(chan struct{})
	var procs []gen.Process
	for range 100 {
		p, err := n.Spawn("", gen.ProcessOptions{}, &stopper{release: release})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			if err := p.Send(p.Self(), i); err != nil {
				t.Fatal(err)
			}
		}
		procs = append(procs, p)
	}
	close(release)
	alive := func() int {
		k := 0
		for _, p := range procs {
			if p.IsAlive() {
				k++
			}
		}
		return k
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return alive() == 0 }, "processes that returned Stop still alive")
}
