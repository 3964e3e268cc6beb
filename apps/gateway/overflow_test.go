package gateway_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tavernhq/tavern/apps/gateway"
	"github.com/tavernhq/tavern/apps/gateway/gatewaytest"
	"github.com/tavernhq/tavern/apps/gateway/wire"
	"github.com/tavernhq/tavern/internal/sysconfig"
	"github.com/tavernhq/tavern/internal/testutil"
)

// TestMailboxOverflowIsMended stalls a session while its board floods it,
// so that its mailbox overflows: the events it lost are mended, the acks
// it lost are redelivered before their evs, and the client keeps its
// connection and a gap-free stream.
func TestMailboxOverflowIsMended(t *testing.T) {
	n := start(t, func(c *sysconfig.Config) {
		c.Gateway.OpsPerSec = 1e6
		c.Gateway.OpsBurst = 1e6
	})
	b := newBoard()
	victim := joined(t, n, "victim", b)
	flood := joined(t, n, "flood", b)
	victim.Expect("presence")

	stall := make(chan struct{})
	stalled := make(chan struct{})
	var once sync.Once
	unstall := func() { once.Do(func() { close(stall) }) }
	defer unstall() // a failing test must not leave the session blocked
	gateway.SetInboundHook(func(r *wire.Request) {
		if r.Type == wire.TypePing && r.Ref == "stall" {
			close(stalled)
			<-stall
		}
	})
	defer gateway.SetInboundHook(nil)

	// The victim's own ops are in flight when it stalls.
	const mine, theirs = 20, 700
	for i := range mine {
		victim.Send(msg{"t": "op", "ref": fmt.Sprint("v", i), "board": b, "id": fmt.Sprint("v", i), "op": chat("mine")})
	}
	victim.Send(msg{"t": "ping", "ref": "stall"})
	<-stalled
	// The flood overflows its own mailbox too: while its session mends the
	// board, its ops wait for the rejoin (none is refused).
	send := func(i int) {
		flood.Send(msg{"t": "op", "ref": fmt.Sprint(i), "board": b, "id": fmt.Sprint("f", i), "op": chat(fmt.Sprint(i))})
	}
	for i := range theirs {
		send(i)
	}
	for acks := 0; acks < theirs; {
		m := flood.Next()
		switch m.T() {
		case "ack":
			acks++
		case "error":
			t.Fatalf("flood: %v", m)
		}
	}
	// Presence changes while the victim's mailbox is full.
	carol := joined(t, n, "carol", b)
	joined(t, n, "dave", b)
	carol.Close()
	testutil.Eventually(t, 5*time.Second, func() bool {
		l, _ := gateway.Clients(n.Probe())
		return len(l) == 3
	}, "carol gone")
	unstall()

	acked := map[string]bool{}
	present := map[string]bool{"victim": true, "flood": true}
	var last int64
	for last < mine+theirs {
		m := victim.Next()
		switch m.T() {
		case "presence":
			applyPresence(present, m)
		case "ack":
			acked[m.Str("id")] = true
		case "ev":
			if m.Int("seq") != last+1 {
				t.Fatalf("victim's stream: seq %d after %d", m.Int("seq"), last)
			}
			last = m.Int("seq")
			if m.Str("user") == "victim" && !acked[m.Str("id")] {
				t.Fatalf("ev of %s before its ack", m.Str("id"))
			}
		case "pong":
		default:
			t.Fatalf("victim got %v", m)
		}
	}
	if len(acked) != mine {
		t.Fatalf("victim got %d acks of %d", len(acked), mine)
	}
	// The presence the victim ends with is right, once what was lost is
	// made good (a whole presence after the mend).
	want := map[string]bool{"victim": true, "flood": true, "dave": true}
	testutil.Eventually(t, 10*time.Second, func() bool {
		for victim.Pending() > 0 {
			if m := victim.Next(); m.T() == "presence" {
				applyPresence(present, m)
			}
		}
		return jsonEqual(present, want)
	}, "victim's presence %v, want %v", present, want)
	alive(t, victim)
}

func applyPresence(present map[string]bool, m msg) {
	if m.Has("users") {
		clear(present)
		for _, u := range gatewaytest.Strings(m["users"]) {
			present[u] = true
		}
		return
	}
	for _, u := range gatewaytest.Strings(m["joins"]) {
		present[u] = true
	}
	for _, u := range gatewaytest.Strings(m["leaves"]) {
		delete(present, u)
	}
}

func TestOwnEvent(t *testing.T) {
	enc := func(user string) []byte {
		n := wire.Notice(user)
		return append(append([]byte(`,"user":`), n[len(`{"t":"notice","text":`):len(n)-1]...), `,"id":`...)
	}
	for _, tc := range []struct {
		name, user string
		frame      []byte
		board, id  string
		ok         bool
	}{
		{"mine", "alice", wire.Event("b1", 7, "alice", "op-1", []byte(`{"kind":"chat"}`), nil), "b1", "op-1", true},
		{"escaped id", "alice", wire.Event("b1", 7, "alice", `a"b\c`, nil, nil), "b1", `a"b\c`, true},
		{"escaped user", `al"ice`, wire.Event("b1", 7, `al"ice`, "x", nil, nil), "b1", "x", true},
		{"other user", "alice", wire.Event("b1", 7, "bob", "op-1", nil, nil), "", "", false},
		{"prefix user", "alice", wire.Event("b1", 7, "alice2", "op-1", nil, nil), "", "", false},
		{"user in op", "alice", wire.Event("b1", 7, "bob", "x", []byte(`{"user":"alice","id":"y"}`), nil), "", "", false},
		{"ack", "alice", wire.Ack(wire.Ref{}, "b1", "op-1", 7, false), "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, id, ok := gateway.OwnEvent(tc.frame, enc(tc.user))
			if ok != tc.ok || b != tc.board || id != tc.id {
				t.Fatalf("ownEvent(%s) = %q %q %v", tc.frame, b, id, ok)
			}
		})
	}
}
