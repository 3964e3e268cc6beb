package ergonode

import (
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
)

// sink counts the messages it handles, inline.
type sink struct {
	gen.Server
	handled atomic.Int64
}

func (*sink) InlineCallback(interface{}) bool { return true }

func (s *sink) HandleInfo(*gen.ServerProcess, etf.Term) gen.ServerStatus {
	s.handled.Add(1)
	return gen.ServerStatusOK
}

// A message between two local processes costs its mailbox envelope and
// the loop's wrapping of it, not the boxed arguments of trace logging
// that is off (third_party/ergo patch: lib.Tracing). Each run waits for
// the message to be handled, so the receiver's allocations count too.
func TestLocalSendAllocations(t *testing.T) {
	n := startNode(t, "cookie", 0, nil)
	s := &sink{}
	to, err := n.Spawn("", gen.ProcessOptions{}, s)
	if err != nil {
		t.Fatal(err)
	}
	from, err := n.Spawn("", gen.ProcessOptions{}, &sink{})
	if err != nil {
		t.Fatal(err)
	}
	var msg etf.Term = "hello"
	var dst interface{} = to.Self() // boxed once: the caller's cost, not Ergo's
	sent := int64(0)
	allocs := testing.AllocsPerRun(1000, func() {
		sent++
		if err := from.Send(dst, msg); err != nil {
			t.Fatal(err)
		}
		for s.handled.Load() < sent {
			runtime.Gosched()
		}
	})
	t.Logf("%.1f allocations per message", allocs)
	if allocs > 2 {
		t.Fatalf("%.1f allocations per local message, want at most 2 (the envelope and the loop's wrapper)", allocs)
	}
}
