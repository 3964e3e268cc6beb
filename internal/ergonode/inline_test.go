package ergonode

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
)

// inliner runs its callbacks on its loop goroutine (gen.InlineCallbacks):
// it records the order of its messages, answers Direct requests, stops on
// "stop", and tries a Call on "call".
type inliner struct {
	gen.Server
	got   chan any
	calls chan error
	echo  etf.Pid
}

// echo answers every Call with its message.
type echo struct{ gen.Server }

func (echo) HandleCall(sp *gen.ServerProcess, from gen.ServerFrom, m etf.Term) (etf.Term, gen.ServerStatus) {
	return m, gen.ServerStatusOK
}

// InlineCallback: all but "deep", which runs on a goroutine of its own.
func (*inliner) InlineCallback(m interface{}) bool { return m != "deep" }

func (s *inliner) HandleInfo(sp *gen.ServerProcess, m etf.Term) gen.ServerStatus {
	switch m {
	case "stop":
		return gen.ServerStatusStop
	case "call":
		_, err := sp.CallWithTimeout(s.echo, "hello", 30)
		s.calls <- err
		return gen.ServerStatusOK
	case "deep": // not inline: its Call works
		v, err := sp.CallWithTimeout(s.echo, "deep", 30)
		if err == nil && v != "deep" {
			err = fmt.Errorf("echo answered %v", v)
		}
		s.calls <- err
		return gen.ServerStatusOK
	}
	s.got <- m
	return gen.ServerStatusOK
}

func (s *inliner) HandleDirect(sp *gen.ServerProcess, ref etf.Ref, m interface{}) (interface{}, gen.DirectStatus) {
	return m, gen.DirectStatusOK
}

// A server with inline callbacks gets its messages in order, answers
// Direct, stops on Stop; a Call from an inline callback fails at once with
// gen.ErrInlineCall instead of waiting for a reply that its own busy loop
// could never read, and one from a callback it does not inline works.
func TestInlineCallbacks(t *testing.T) {
	n := startNode(t, "cookie", 0, nil)
	e, err := n.Spawn("", gen.ProcessOptions{}, &echo{})
	if err != nil {
		t.Fatal(err)
	}
	s := &inliner{got: make(chan any, 1000), calls: make(chan error, 1), echo: e.Self()}
	p, err := n.Spawn("", gen.ProcessOptions{MailboxSize: 2048}, s)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		if err := p.Send(p.Self(), i); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 1000 {
		select {
		case m := <-s.got:
			if m != i {
				t.Fatalf("message %d arrived as %v", i, m)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("message %d never handled", i)
		}
	}
	if v, err := p.Direct("ping"); v != "ping" || err != nil {
		t.Fatalf("direct: %v %v", v, err)
	}
	_ = p.Send(p.Self(), "call")
	select {
	case err := <-s.calls:
		if !errors.Is(err, gen.ErrInlineCall) {
			t.Fatalf("call from an inline callback: %v", err)
		}
	case <-time.After(10 * time.Second): // its own timeout is 30 s
		t.Fatal("the call waited for a reply")
	}
	_ = p.Send(p.Self(), "deep")
	select {
	case err := <-s.calls:
		if err != nil {
			t.Fatalf("call from a callback not inline: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the call from a callback not inline never returned")
	}
	_ = p.Send(p.Self(), "stop")
	select {
	case <-p.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not stop")
	}
}
