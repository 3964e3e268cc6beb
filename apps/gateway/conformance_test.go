package gateway_test

// The conformance suite: every message, guarantee, error code and close
// code of PROTOCOL.md, against real nodes over real sockets. The core runs
// on SQLite and on Postgres; what needs a special configuration (JWT, short
// timeouts, small queues, low rates) runs on SQLite nodes of its own.

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tavernhq/tavern/apps/gateway"
	"github.com/tavernhq/tavern/apps/gateway/gatewaytest"
	"github.com/tavernhq/tavern/internal/sysconfig"
	"github.com/tavernhq/tavern/internal/testutil"
)

func TestConformance(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		n := gatewaytest.Start(t, gatewaytest.Options{DSN: dsn})
		for _, tc := range []struct {
			name string
			f    func(*testing.T, *gatewaytest.Node)
		}{
			{"Welcome", testWelcome},
			{"HelloDevRefused", testHelloDevRefused},
			{"UnauthorizedBeforeHello", testUnauthorizedBeforeHello},
			{"SecondHello", testSecondHello},
			{"PingPong", testPingPong},
			{"JoinSnapshot", testJoinSnapshot},
			{"JoinSinceReplay", testJoinSinceReplay},
			{"JoinSinceAhead", testJoinSinceAhead},
			{"JoinAfresh", testJoinAfresh},
			{"JoinAfterAck", testJoinAfterAck},
			{"LargeSnapshot", testLargeSnapshot},
			{"Presence", testPresence},
			{"AckBeforeEv", testAckBeforeEv},
			{"OpRightAfterJoin", testOpRightAfterJoin},
			{"TotalOrder", testTotalOrder},
			{"Dup", testDup},
			{"OpKinds", testOpKinds},
			{"OpErrors", testOpErrors},
			{"BadRequest", testBadRequest},
			{"ExtraFields", testExtraFields},
			{"Leave", testLeave},
			{"FrameLimit", testFrameLimit},
			{"Binary", testBinary},
			{"InvalidUTF8", testInvalidUTF8},
			{"BadInputBarrage", testBadInputBarrage},
			{"ReplayKeepsThousand", testReplayKeepsThousand},
		} {
			t.Run(tc.name, func(t *testing.T) { tc.f(t, n) })
		}
	})
}

// ---- session ----------------------------------------------------------------

func testWelcome(t *testing.T, n *gatewaytest.Node) {
	c := gatewaytest.Dial(t, n.WS)
	c.Send(`{"t":"hello","ref":"1","user":"alice"}`)
	w := c.Expect("welcome")
	if !sameSet(keys(w), "t", "ref", "user", "node", "limits") {
		t.Fatalf("welcome fields: %v", w)
	}
	if w.Str("ref") != "1" || w.Str("user") != "alice" || w.Str("node") != n.Name {
		t.Fatalf("welcome: %v (node %s)", w, n.Name)
	}
	lim, _ := w["limits"].(map[string]any)
	want := map[string]any{"max_frame": 65536.0, "ops_per_sec": 200.0, "ops_burst": 200.0}
	if !jsonEqual(lim, want) {
		t.Fatalf("limits %v, want %v", lim, want)
	}
	// A hello without ref is answered without ref.
	c2 := gatewaytest.Dial(t, n.WS)
	c2.Send(`{"t":"hello","user":"bob"}`)
	if w := c2.Expect("welcome"); w.Has("ref") {
		t.Fatalf("welcome to a hello without ref: %v", w)
	}
}

func testHelloDevRefused(t *testing.T, n *gatewaytest.Node) {
	for _, tc := range []struct{ name, hello, ref string }{
		{"no user", `{"t":"hello","ref":"h"}`, "h"},
		{"empty user", `{"t":"hello","ref":"h","user":""}`, "h"},
		{"user not a string", `{"t":"hello","ref":"h","user":7}`, "h"},
		{"user too long", `{"t":"hello","user":"` + strings.Repeat("u", 65) + `"}`, ""},
		{"user with control", `{"t":"hello","user":"a\u0000b"}`, ""},
		{"token only", `{"t":"hello","token":"a.b.c"}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := gatewaytest.Dial(t, n.WS)
			c.Send(tc.hello)
			c.ExpectError("unauthorized", tc.ref)
			c.ExpectClose(1008)
		})
	}
	// 64 bytes is fine.
	hello(t, n, strings.Repeat("é", 32))
}

func testUnauthorizedBeforeHello(t *testing.T, n *gatewaytest.Node) {
	b := newBoard()
	for _, tc := range []struct{ name, first, ref string }{
		{"join", `{"t":"join","ref":"1","board":"` + b + `"}`, "1"},
		{"op", `{"t":"op","ref":"2","board":"` + b + `","id":"x","op":{"kind":"chat","text":"hi"}}`, "2"},
		{"leave", `{"t":"leave","ref":"3","board":"` + b + `"}`, "3"},
		{"ping", `{"t":"ping","ref":"4"}`, "4"},
		{"ping without ref", `{"t":"ping"}`, ""},
		{"unknown type", `{"t":"shout","ref":"5"}`, "5"},
		{"bad join", `{"t":"join","ref":"6"}`, "6"},
		{"not JSON", `hello`, ""},
		{"JSON not an object", `["hello"]`, ""},
		{"empty object", `{}`, ""},
		{"bad ref", `{"t":"hello","ref":1,"user":"alice"}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := gatewaytest.Dial(t, n.WS)
			c.Send(tc.first)
			c.ExpectError("unauthorized", tc.ref)
			c.ExpectClose(1008)
		})
	}
	if s := n.BoardSeq(b); s != -1 {
		t.Fatalf("board %s exists (seq %d) after messages without hello", b, s)
	}
}

func testSecondHello(t *testing.T, n *gatewaytest.Node) {
	c := hello(t, n, "alice")
	c.Send(`{"t":"hello","ref":"again","user":"mallory"}`)
	c.ExpectError("bad_request", "again")
	pingNext(t, c)
	b := newBoard()
	j, users := c.JoinFull(b)
	if j.Int("seq") != 0 || !slices.Equal(users, []string{"alice"}) {
		t.Fatalf("after a second hello the user changed: %v %v", j, users)
	}
}

func testPingPong(t *testing.T, n *gatewaytest.Node) {
	c := hello(t, n, "alice")
	c.Send(`{"t":"ping","ref":"5"}`)
	if m := c.Expect("pong"); !sameSet(keys(m), "t", "ref") || m.Str("ref") != "5" {
		t.Fatalf("pong: %v", m)
	}
	c.Send(`{"t":"ping"}`)
	if m := c.Expect("pong"); !sameSet(keys(m), "t") {
		t.Fatalf("pong without ref: %v", m)
	}
	c.Send(`{"t":"ping","ref":""}`)
	if m := c.Expect("pong"); !m.Has("ref") || m.Str("ref") != "" {
		t.Fatalf("pong with empty ref: %v", m)
	}
}

// ---- join -------------------------------------------------------------------

func testJoinSnapshot(t *testing.T, n *gatewaytest.Node) {
	b := newBoard()
	c := hello(t, n, "alice")
	c.Send(msg{"t": "join", "ref": "2", "board": b})
	j := c.Expect("joined")
	if !sameSet(keys(j), "t", "ref", "board", "seq", "snapshot") || j.Int("seq") != 0 || j.Str("ref") != "2" {
		t.Fatalf("joined a new board: %v", j)
	}
	if !jsonEqual(j["snapshot"], map[string]any{"entities": []any{}}) {
		t.Fatalf("new board snapshot: %v", j["snapshot"])
	}
	if p := c.Expect("presence"); !jsonEqual(p, msg{"t": "presence", "board": b, "users": []any{"alice"}}) {
		t.Fatalf("presence: %v", p)
	}
	if s := n.BoardSeq(b); s != 0 {
		t.Fatalf("board created at seq %d", s)
	}
	c.Apply(b, put("e2", 1, 2, 3))
	c.Apply(b, map[string]any{"kind": "put", "entities": []any{
		map[string]any{"id": "e1", "asset": "chest", "pos": []any{0.5, 0, -7}, "rot": 90, "props": map[string]any{"gold": 10}},
	}})
	d := hello(t, n, "bob")
	j = d.Join(b, -1)
	if j.Int("seq") != 2 {
		t.Fatalf("joined: %v", j)
	}
	want := map[string]any{"entities": []any{
		map[string]any{"id": "e1", "asset": "chest", "pos": []any{0.5, 0, -7}, "rot": 90, "props": map[string]any{"gold": 10}},
		map[string]any{"id": "e2", "asset": "orc", "pos": []any{1, 2, 3}, "rot": 0, "props": map[string]any{}},
	}}
	if !jsonEqual(j["snapshot"], want) {
		t.Fatalf("snapshot %v, want %v", j["snapshot"], want)
	}
	if p := d.Expect("presence"); !sameSet(gatewaytest.Strings(p["users"]), "alice", "bob") {
		t.Fatalf("presence: %v", p)
	}
}

func testJoinSinceReplay(t *testing.T, n *gatewaytest.Node) {
	b := newBoard()
	a := joined(t, n, "alice", b)
	var ids []string
	for i := range 5 {
		ack := a.Apply(b, chat(fmt.Sprint("m", i)))
		ids = append(ids, ack.Str("id"))
	}
	c := hello(t, n, "bob")
	c.Send(msg{"t": "join", "ref": "2", "board": b, "since": 2})
	j := c.Expect("joined")
	if !sameSet(keys(j), "t", "ref", "board", "seq") || j.Int("seq") != 5 {
		t.Fatalf("joined since 2: %v", j)
	}
	for s := int64(3); s <= 5; s++ {
		ev := c.Expect("ev")
		if ev.Int("seq") != s || ev.Str("id") != ids[s-1] || ev.Str("user") != "alice" || ev.Str("board") != b {
			t.Fatalf("replayed ev %d: %v", s, ev)
		}
	}
	if p := c.Expect("presence"); !sameSet(gatewaytest.Strings(p["users"]), "alice", "bob") {
		t.Fatalf("presence: %v", p)
	}
	// since == seq: nothing to replay.
	d := hello(t, n, "carol")
	j = d.Join(b, 5)
	if j.Has("snapshot") || j.Int("seq") != 5 {
		t.Fatalf("joined since seq: %v", j)
	}
	d.Expect("presence")
	// since 0: everything.
	e := hello(t, n, "dave")
	if j := e.Join(b, 0); j.Has("snapshot") || j.Int("seq") != 5 {
		t.Fatalf("joined since 0: %v", j)
	}
	for s := int64(1); s <= 5; s++ {
		if ev := e.Expect("ev"); ev.Int("seq") != s {
			t.Fatalf("replayed %v, want seq %d", ev, s)
		}
	}
}

func testJoinSinceAhead(t *testing.T, n *gatewaytest.Node) {
	b := newBoard()
	a := joined(t, n, "alice", b)
	a.Apply(b, put("e1", 1, 1, 1))
	c := hello(t, n, "bob")
	j := c.Join(b, 99)
	if j.Int("seq") != 1 || !j.Has("snapshot") {
		t.Fatalf("since ahead of the board: %v", j)
	}
	if ents, _ := j["snapshot"].(map[string]any)["entities"].([]any); len(ents) != 1 {
		t.Fatalf("snapshot: %v", j)
	}
	if m := c.Next(); m.T() != "presence" {
		t.Fatalf("after a snapshot join: %v", m)
	}
}

func testJoinAfresh(t *testing.T, n *gatewaytest.Node) {
	b := newBoard()
	c := joined(t, n, "alice", b)
	c.Apply(b, put("e1", 1, 1, 1))
	c.Expect("ev")
	c.Apply(b, chat("x"))
	c.Expect("ev")
	j := c.Join(b, -1)
	if j.Int("seq") != 2 || !j.Has("snapshot") {
		t.Fatalf("join again: %v", j)
	}
	if p := c.Expect("presence"); !slices.Equal(gatewaytest.Strings(p["users"]), []string{"alice"}) {
		t.Fatalf("presence: %v", p)
	}
	j = c.Join(b, 1)
	if j.Int("seq") != 2 || j.Has("snapshot") {
		t.Fatalf("join again since 1: %v", j)
	}
	if ev := c.Expect("ev"); ev.Int("seq") != 2 {
		t.Fatalf("replay: %v", ev)
	}
	c.Expect("presence")
	// Still a member, once: the next op arrives once.
	ack := c.Apply(b, chat("y"))
	if ev := c.Expect("ev"); ev.Int("seq") != 3 || ack.Int("seq") != 3 {
		t.Fatalf("after joining afresh: %v %v", ack, ev)
	}
	pingNext(t, c)
}

func testJoinAfterAck(t *testing.T, n *gatewaytest.Node) {
	b := newBoard()
	a := joined(t, n, "alice", b)
	for i := range 10 {
		ack := a.Apply(b, chat(fmt.Sprint(i)))
		c := hello(t, n, fmt.Sprint("late", i))
		if j := c.Join(b, -1); j.Int("seq") < ack.Int("seq") {
			t.Fatalf("join after ack %d returned seq %d", ack.Int("seq"), j.Int("seq"))
		}
		c.Close()
	}
}

func testLargeSnapshot(t *testing.T, n *gatewaytest.Node) {
	b := newBoard()
	a := joined(t, n, "alice", b)
	big := strings.Repeat("x", 60000)
	for i := range 5 {
		a.Apply(b, map[string]any{"kind": "put", "entities": []any{
			map[string]any{"id": fmt.Sprint("e", i), "asset": "a", "pos": []any{0, 0, 0}, "props": map[string]any{"lore": big}},
		}})
	}
	c := hello(t, n, "bob")
	j := c.Join(b, -1)
	ents, _ := j["snapshot"].(map[string]any)["entities"].([]any)
	if len(ents) != 5 {
		t.Fatalf("large snapshot has %d entities", len(ents))
	}
}

// ---- presence -----------------------------------------------------------------

func testPresence(t *testing.T, n *gatewaytest.Node) {
	b := newBoard()
	alice := joined(t, n, "alice", b)
	bob := hello(t, n, "bob")
	bob.Join(b, -1)
	if p := bob.Expect("presence"); !jsonEqual(p, msg{"t": "presence", "board": b, "users": []any{"alice", "bob"}}) {
		t.Fatalf("bob's presence: %v", p)
	}
	if p := alice.Expect("presence"); !jsonEqual(p, msg{"t": "presence", "board": b, "joins": []any{"bob"}, "leaves": []any{}}) {
		t.Fatalf("alice sees bob join: %v", p)
	}

	// alice connects a second time: she counts once.
	alice2 := hello(t, n, "alice")
	_, users := alice2.JoinFull(b)
	if !slices.Equal(users, []string{"alice", "bob"}) {
		t.Fatalf("alice2's presence: %v", users)
	}
	// A barrier: everything the board sent bob before this op's ev.
	ack := alice2.Apply(b, chat("barrier 1"))
	if m := bob.Next(); m.T() != "ev" || m.Int("seq") != ack.Int("seq") {
		t.Fatalf("bob got %v before the barrier: a second connection of alice counted", m)
	}
	alice.Expect("ev")

	// alice's first connection leaves: she is still there.
	alice.Send(msg{"t": "leave", "ref": "l", "board": b})
	alice.Expect("left")
	ack = alice2.Apply(b, chat("barrier 2"))
	if m := bob.Next(); m.T() != "ev" || m.Int("seq") != ack.Int("seq") {
		t.Fatalf("bob got %v: alice left while connected twice", m)
	}

	// Her last connection goes: she leaves.
	alice2.Close()
	if p := bob.Expect("presence"); !jsonEqual(p, msg{"t": "presence", "board": b, "joins": []any{}, "leaves": []any{"alice"}}) {
		t.Fatalf("alice's last connection closed: %v", p)
	}
	carol := hello(t, n, "carol")
	if _, users := carol.JoinFull(b); !slices.Equal(users, []string{"bob", "carol"}) {
		t.Fatalf("carol's presence: %v", users)
	}
	if p := bob.Expect("presence"); !jsonEqual(p["joins"], []any{"carol"}) {
		t.Fatalf("bob sees carol: %v", p)
	}
}

// ---- op -----------------------------------------------------------------------

func testAckBeforeEv(t *testing.T, n *gatewaytest.Node) {
	b := newBoard()
	a := joined(t, n, "alice", b)
	o := hello(t, n, "bob")
	o.JoinFull(b)
	a.Expect("presence")
	op := map[string]any{"kind": "move", "entity": "nobody", "pos": []any{1, 2}} // bad_op first
	id, ref := a.Op(b, op)
	if e := a.ExpectError("bad_op", ref); !strings.Contains(e.Str("msg"), "pos") {
		t.Fatalf("bad pos on a missing entity: %v", e)
	}
	_ = id
	a.Apply(b, put("e9", 0, 0, 0))
	a.Expect("ev")
	o.Expect("ev")
	mv := map[string]any{"kind": "move", "entity": "e9", "pos": []any{3, 0, 7}}
	id, ref = a.Op(b, mv)
	ack := a.Next()
	if !jsonEqual(ack, msg{"t": "ack", "ref": ref, "board": b, "id": id, "seq": 2}) {
		t.Fatalf("ack: %v", ack)
	}
	want := msg{"t": "ev", "board": b, "seq": 2, "user": "alice", "id": id, "op": mv}
	if ev := a.Next(); !jsonEqual(ev, want) {
		t.Fatalf("sender's ev %v, want %v", ev, want)
	}
	if ev := o.Next(); !jsonEqual(ev, want) {
		t.Fatalf("other member's ev %v, want %v", ev, want)
	}
	if s := n.BoardSeq(b); s != 2 {
		t.Fatalf("durable seq %d", s)
	}
}

// testOpRightAfterJoin: ops sent right behind a join, before its answer,
// wait for it instead of being refused.
func testOpRightAfterJoin(t *testing.T, n *gatewaytest.Node) {
	b := newBoard()
	c := hello(t, n, "alice")
	c.Send(msg{"t": "join", "ref": "j", "board": b})
	for i := range 5 {
		c.Send(msg{"t": "op", "ref": fmt.Sprint(i), "board": b, "id": fmt.Sprint("early", i), "op": chat("early")})
	}
	if m := c.Next(); m.T() != "joined" {
		t.Fatalf("first answer: %v", m)
	}
	acks := 0
	for acks < 5 {
		switch m := c.Next(); m.T() {
		case "ack":
			acks++
		case "error":
			t.Fatalf("an op right after join: %v", m)
		}
	}
	evsUntil(t, c, b, 5)
}

func testTotalOrder(t *testing.T, n *gatewaytest.Node) {
	b := newBoard()
	const clients, each = 8, 40
	cs := make([]*gatewaytest.Client, clients)
	for i := range cs {
		cs[i] = hello(t, n, fmt.Sprint("u", i))
		cs[i].Join(b, -1)
	}
	type result struct {
		evs  []msg
		acks map[string]int // op id -> index in the stream
		err  error
	}
	res := make([]result, clients)
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &res[i]
			r.acks = map[string]int{}
			mine := map[string]bool{}
			for k := range each {
				id := fmt.Sprintf("u%d-%d", i, k)
				mine[id] = true
				b := fmt.Appendf(nil, `{"t":"op","ref":"%s","board":"%s","id":"%s","op":{"kind":"chat","text":"%d"}}`, id, b, id, k)
				if err := c.TrySend(websocket.MessageText, b); err != nil {
					r.err = err
					return
				}
			}
			pos := 0
			for len(r.evs) < clients*each {
				m, err := c.NextWithin(gatewaytest.Wait)
				if err != nil {
					r.err = fmt.Errorf("after %d evs: %w", len(r.evs), err)
					return
				}
				pos++
				switch m.T() {
				case "ack":
					r.acks[m.Str("id")] = pos
				case "ev":
					if mine[m.Str("id")] {
						if _, ok := r.acks[m.Str("id")]; !ok {
							r.err = fmt.Errorf("ev of %s before its ack", m.Str("id"))
							return
						}
					}
					r.evs = append(r.evs, m)
				case "error":
					r.err = fmt.Errorf("error %v", m)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i, r := range res {
		if r.err != nil {
			t.Fatalf("client %d: %v", i, r.err)
		}
		if len(r.acks) != each {
			t.Fatalf("client %d: %d acks", i, len(r.acks))
		}
		for k, ev := range r.evs {
			if ev.Int("seq") != int64(k+1) {
				t.Fatalf("client %d: ev %d has seq %d", i, k, ev.Int("seq"))
			}
			if ev.Str("id") != res[0].evs[k].Str("id") {
				t.Fatalf("client %d sees %s at seq %d, client 0 %s", i, ev.Str("id"), k+1, res[0].evs[k].Str("id"))
			}
		}
	}
	if s := n.BoardSeq(b); s != clients*each {
		t.Fatalf("durable seq %d, want %d", s, clients*each)
	}
}

func testDup(t *testing.T, n *gatewaytest.Node) {
	b := newBoard()
	a := joined(t, n, "alice", b)
	a.Send(msg{"t": "op", "ref": "1", "board": b, "id": "alice-0017", "op": put("e1", 1, 1, 1)})
	ack := a.Expect("ack")
	if ack.Int("seq") != 1 || ack.Has("dup") {
		t.Fatalf("first ack: %v", ack)
	}
	a.Expect("ev")
	// The same id, another body: the original ack, dup, no ev.
	a.Send(msg{"t": "op", "ref": "2", "board": b, "id": "alice-0017", "op": chat("something else")})
	if dup := a.Expect("ack"); !jsonEqual(dup, msg{"t": "ack", "ref": "2", "board": b, "id": "alice-0017", "seq": 1, "dup": true}) {
		t.Fatalf("dup ack: %v", dup)
	}
	// A retry after a lost connection: the same user, another connection.
	a.Close()
	a2 := joined(t, n, "alice", b)
	a2.Send(msg{"t": "op", "ref": "3", "board": b, "id": "alice-0017", "op": put("e1", 5, 5, 5)})
	if dup := a2.Expect("ack"); dup.Int("seq") != 1 || dup["dup"] != true {
		t.Fatalf("dup ack after reconnecting: %v", dup)
	}
	// Another user may use the same id.
	bob := joined(t, n, "bob", b)
	a2.Expect("presence")
	bob.Send(msg{"t": "op", "ref": "4", "board": b, "id": "alice-0017", "op": chat("mine")})
	if ack := bob.Expect("ack"); ack.Int("seq") != 2 || ack.Has("dup") {
		t.Fatalf("bob's op with alice's id: %v", ack)
	}
	// No ev was made for the dups: the next ev alice2 sees is seq 2.
	if ev := a2.Expect("ev"); ev.Int("seq") != 2 || ev.Str("user") != "bob" {
		t.Fatalf("after dups: %v", ev)
	}
	if s := n.BoardSeq(b); s != 2 {
		t.Fatalf("durable seq %d", s)
	}
	j := joined(t, n, "carol", b).Join(b, -1)
	if ents := j["snapshot"].(map[string]any)["entities"].([]any); !jsonEqual(ents[0].(map[string]any)["pos"], []any{1, 1, 1}) {
		t.Fatalf("a dup changed the board: %v", ents)
	}
}

func testOpKinds(t *testing.T, n *gatewaytest.Node) {
	b := newBoard()
	a := joined(t, n, "alice", b)
	apply := func(op map[string]any) msg {
		t.Helper()
		ack := a.Apply(b, op)
		ev := a.Expect("ev")
		if ev.Int("seq") != ack.Int("seq") || !jsonEqual(ev["op"], op) {
			t.Fatalf("ev %v for op %v", ev, op)
		}
		return ev
	}
	apply(map[string]any{"kind": "put", "entities": []any{
		map[string]any{"id": "e1", "asset": "orc", "pos": []any{1, 2, 3}},
		map[string]any{"id": "e2", "asset": "elf", "pos": []any{4, 5, 6}, "rot": 1.5, "props": map[string]any{"hp": 7, "name": "Ael"}},
		map[string]any{"id": "e1", "asset": "goblin", "pos": []any{0, 0, 0}}, // repeated: last wins
	}})
	apply(map[string]any{"kind": "put", "entities": []any{}})
	apply(map[string]any{"kind": "move", "entity": "e1", "pos": []any{9, 8, 7}})
	apply(map[string]any{"kind": "move", "entity": "e1", "pos": []any{9, 8, 6}, "rot": 45})
	apply(map[string]any{"kind": "patch", "entity": "e2", "props": map[string]any{"hp": nil, "mana": 3}})
	apply(map[string]any{"kind": "put", "entities": []any{map[string]any{"id": "e3", "asset": "x", "pos": []any{0, 0, 0}}}})
	apply(map[string]any{"kind": "del", "entities": []any{"e3", "never-was"}})
	apply(map[string]any{"kind": "del", "entities": []any{}})
	apply(map[string]any{"kind": "chat", "text": "héllo 🎲"})
	apply(map[string]any{"kind": "chat", "text": strings.Repeat("🎲", 2000)})
	for _, dice := range []string{"d20", "2d6+1", "3d4-2", "100d1000+1000"} {
		ev := apply(map[string]any{"kind": "roll", "dice": dice})
		res, _ := ev["result"].(map[string]any)
		rolls, _ := res["rolls"].([]any)
		total, _ := res["total"].(float64)
		var nDice, sides, mod int
		switch dice {
		case "d20":
			nDice, sides = 1, 20
		case "2d6+1":
			nDice, sides, mod = 2, 6, 1
		case "3d4-2":
			nDice, sides, mod = 3, 4, -2
		default:
			nDice, sides, mod = 100, 1000, 1000
		}
		if len(rolls) != nDice {
			t.Fatalf("%s rolled %v", dice, res)
		}
		sum := 0.0
		for _, r := range rolls {
			v, _ := r.(float64)
			if v < 1 || v > float64(sides) || v != math.Trunc(v) {
				t.Fatalf("%s rolled %v", dice, res)
			}
			sum += v
		}
		if total != sum+float64(mod) {
			t.Fatalf("%s: total %v of %v", dice, total, res)
		}
	}
	j := hello(t, n, "bob").Join(b, -1)
	want := map[string]any{"entities": []any{
		map[string]any{"id": "e1", "asset": "goblin", "pos": []any{9, 8, 6}, "rot": 45, "props": map[string]any{}},
		map[string]any{"id": "e2", "asset": "elf", "pos": []any{4, 5, 6}, "rot": 1.5, "props": map[string]any{"mana": 3, "name": "Ael"}},
	}}
	if !jsonEqual(j["snapshot"], want) {
		t.Fatalf("state after every kind: %v\nwant %v", j["snapshot"], want)
	}
}

func testOpErrors(t *testing.T, n *gatewaytest.Node) {
	b := newBoard()
	a := joined(t, n, "alice", b)
	a.Apply(b, put("e1", 0, 0, 0))
	a.Expect("ev")
	seq := n.BoardSeq(b)
	bad := func(code string, op any) {
		t.Helper()
		_, ref := a.Op(b, op)
		a.ExpectError(code, ref)
	}
	bad("bad_op", map[string]any{"kind": "teleport", "entity": "e1"})
	bad("bad_op", map[string]any{"entity": "e1"})
	bad("bad_op", map[string]any{"kind": 7})
	bad("bad_op", map[string]any{"kind": "move", "entity": "ghost", "pos": []any{1, 2}})
	bad("bad_op", map[string]any{"kind": "move", "entity": "e1", "pos": []any{1, 2, "3"}})
	bad("bad_op", map[string]any{"kind": "move", "entity": "e1", "pos": []any{1, 2, 3}, "rot": "90"})
	bad("bad_op", map[string]any{"kind": "move", "entity": "bad id!", "pos": []any{1, 2, 3}})
	bad("bad_op", map[string]any{"kind": "put", "entities": []any{map[string]any{"id": "e2", "pos": []any{1, 2, 3}}}})
	bad("bad_op", map[string]any{"kind": "put", "entities": []any{map[string]any{"id": "", "asset": "a", "pos": []any{1, 2, 3}}}})
	bad("bad_op", map[string]any{"kind": "put", "entities": "e2"})
	bad("bad_op", map[string]any{"kind": "put", "entities": []any{map[string]any{"id": "e2", "asset": "a", "pos": []any{1, 2, 3}, "props": []any{}}}})
	many := make([]any, 1001)
	for i := range many {
		many[i] = map[string]any{"id": fmt.Sprint("m", i), "asset": "a", "pos": []any{0, 0, 0}}
	}
	bad("bad_op", map[string]any{"kind": "put", "entities": many})
	// 64 KiB of props: reached by a patch (a put that big exceeds the frame).
	a.Apply(b, map[string]any{"kind": "put", "entities": []any{map[string]any{"id": "big", "asset": "a", "pos": []any{0, 0, 0},
		"props": map[string]any{"x": strings.Repeat("y", 40000)}}}})
	a.Expect("ev")
	seq++
	bad("bad_op", map[string]any{"kind": "patch", "entity": "big", "props": map[string]any{"z": strings.Repeat("y", 40000)}})
	bad("bad_op", map[string]any{"kind": "patch", "entity": "e1"})
	bad("bad_op", map[string]any{"kind": "del", "entities": []any{1}})
	bad("bad_op", map[string]any{"kind": "chat", "text": ""})
	bad("bad_op", map[string]any{"kind": "chat", "text": strings.Repeat("a", 2001)})
	for _, dice := range []string{"", "d1", "0d6", "101d6", "d1001", "2d6+1001", "d", "2x6", "-1d6"} {
		bad("bad_op", map[string]any{"kind": "roll", "dice": dice})
	}
	bad("not_found", map[string]any{"kind": "move", "entity": "ghost", "pos": []any{1, 2, 3}})
	bad("not_found", map[string]any{"kind": "patch", "entity": "ghost", "props": map[string]any{"a": 1}})

	other := newBoard()
	_, ref := a.Op(other, chat("hi"))
	a.ExpectError("not_joined", ref)
	pingNext(t, a)
	if s := n.BoardSeq(b); s != seq {
		t.Fatalf("rejected ops changed the board: seq %d, was %d", s, seq)
	}
	if s := n.BoardSeq(other); s > 0 {
		t.Fatalf("an op for a board not joined made seq %d", s)
	}
	// The next good op gets the next seq.
	if ack := a.Apply(b, chat("ok")); ack.Int("seq") != seq+1 {
		t.Fatalf("after errors: %v", ack)
	}
}

func testBadRequest(t *testing.T, n *gatewaytest.Node) {
	b := newBoard()
	c := joined(t, n, "alice", b)
	for _, tc := range []struct{ in, ref string }{
		{`{"t":"ping","ref":5}`, ""},
		{`{"t":"ping","ref":null}`, ""},
		{`{"t":"ping","ref":["a"]}`, ""},
		{`{"t":"ping","ref":"` + strings.Repeat("r", 65) + `"}`, ""},
		{`{"t":"join","ref":true,"board":"` + b + `"}`, ""},
		{`not json`, ""},
		{`{"t":"ping"`, ""},
		{`[1,2]`, ""},
		{`"ping"`, ""},
		{`null`, ""},
		{`{}`, ""},
		{`{"ref":"1"}`, "1"},
		{`{"t":7,"ref":"1"}`, "1"},
		{`{"t":"shout","ref":"1"}`, "1"},
		{`{"t":"PING","ref":"1"}`, "1"},
		{`{"t":"join","ref":"1"}`, "1"},
		{`{"t":"join","ref":"1","board":7}`, "1"},
		{`{"t":"join","ref":"1","board":""}`, "1"},
		{`{"t":"join","ref":"1","board":"` + strings.Repeat("b", 65) + `"}`, "1"},
		{`{"t":"join","ref":"1","board":"cave 1"}`, "1"},
		{`{"t":"join","ref":"1","board":"cave/1"}`, "1"},
		{`{"t":"join","ref":"1","board":"` + b + `","since":-1}`, "1"},
		{`{"t":"join","ref":"1","board":"` + b + `","since":1.5}`, "1"},
		{`{"t":"join","ref":"1","board":"` + b + `","since":"3"}`, "1"},
		{`{"t":"join","ref":"1","board":"` + b + `","since":null}`, "1"},
		{`{"t":"join","ref":"1","board":"` + b + `","since":1e2}`, "1"},
		{`{"t":"leave","ref":"1"}`, "1"},
		{`{"t":"leave","ref":"1","board":"é"}`, "1"},
		{`{"t":"op","ref":"1","board":"` + b + `","op":{"kind":"chat","text":"x"}}`, "1"},
		{`{"t":"op","ref":"1","board":"` + b + `","id":"","op":{"kind":"chat","text":"x"}}`, "1"},
		{`{"t":"op","ref":"1","board":"` + b + `","id":"` + strings.Repeat("i", 65) + `","op":{"kind":"chat","text":"x"}}`, "1"},
		{`{"t":"op","ref":"1","board":"` + b + `","id":5,"op":{"kind":"chat","text":"x"}}`, "1"},
		{`{"t":"op","ref":"1","board":"` + b + `","id":"x"}`, "1"},
		{`{"t":"op","ref":"1","board":"` + b + `","id":"x","op":"chat"}`, "1"},
		{`{"t":"op","ref":"1","board":"` + b + `","id":"x","op":[1]}`, "1"},
		{`{"t":"op","ref":"1","id":"x","op":{"kind":"chat","text":"x"}}`, "1"},
	} {
		c.Send(tc.in)
		c.ExpectError("bad_request", tc.ref)
	}
	pingNext(t, c)
	if s := n.BoardSeq(b); s != 0 {
		t.Fatalf("bad requests changed the board: seq %d", s)
	}
}

func testExtraFields(t *testing.T, n *gatewaytest.Node) {
	b := newBoard()
	c := gatewaytest.Dial(t, n.WS)
	c.Send(`{"t":"hello","ref":"1","user":"alice","colour":"red","v":[1,{"x":null}]}`)
	c.Expect("welcome")
	c.Send(`{"t":"ping","ref":"p","board":7,"extra":{"t":"join"}}`)
	if m := c.Expect("pong"); m.Str("ref") != "p" {
		t.Fatalf("pong: %v", m)
	}
	c.Send(`{"t":"join","ref":"j","board":"` + b + `","snapshot":false,"x":1}`)
	c.Expect("joined")
	c.Expect("presence")
	c.Send(`{"t":"op","ref":"o","board":"` + b + `","id":"x1","op":{"kind":"chat","text":"hi","mood":"happy"},"prio":9}`)
	c.Expect("ack")
	if ev := c.Expect("ev"); !jsonEqual(ev["op"], map[string]any{"kind": "chat", "text": "hi", "mood": "happy"}) {
		t.Fatalf("ev of an op with extra fields: %v", ev)
	}
	c.Send(`{"t":"leave","ref":"l","board":"` + b + `","since":"x"}`)
	c.Expect("left")
}

func testLeave(t *testing.T, n *gatewaytest.Node) {
	b := newBoard()
	a := joined(t, n, "alice", b)
	o := joined(t, n, "bob", b)
	a.Expect("presence")
	a.Send(msg{"t": "leave", "ref": "4", "board": b})
	if m := a.Expect("left"); !jsonEqual(m, msg{"t": "left", "ref": "4", "board": b}) {
		t.Fatalf("left: %v", m)
	}
	if p := o.Expect("presence"); !jsonEqual(p["leaves"], []any{"alice"}) {
		t.Fatalf("bob sees alice leave: %v", p)
	}
	ack := o.Apply(b, chat("after alice left"))
	o.Expect("ev")
	pingNext(t, a) // nothing of the board reached alice
	_, ref := a.Op(b, chat("x"))
	a.ExpectError("not_joined", ref)
	// Leaving a board not joined (or never seen): left all the same.
	a.Send(msg{"t": "leave", "ref": "5", "board": b})
	a.Expect("left")
	a.Send(msg{"t": "leave", "board": newBoard()})
	if m := a.Expect("left"); m.Has("ref") {
		t.Fatalf("left without ref: %v", m)
	}
	// Rejoin with since: what was missed is replayed.
	j := a.Join(b, ack.Int("seq")-1)
	if j.Int("seq") != ack.Int("seq") {
		t.Fatalf("rejoin: %v", j)
	}
	if ev := a.Expect("ev"); ev.Int("seq") != ack.Int("seq") {
		t.Fatalf("replay: %v", ev)
	}
}

// ---- frames -------------------------------------------------------------------

func testFrameLimit(t *testing.T, n *gatewaytest.Node) {
	b := newBoard()
	c := joined(t, n, "alice", b)
	ack := c.Apply(b, chat("before"))
	pad := func(size int) string {
		s := `{"t":"ping","ref":"big","pad":"`
		return s + strings.Repeat("x", size-len(s)-2) + `"}`
	}
	for _, size := range []int{65535, 65536} {
		m := pad(size)
		if len(m) != size {
			t.Fatalf("padding: %d", len(m))
		}
		c.Send(m)
		c.Until("pong", nil)
	}
	c.Send(pad(65537))
	c.ExpectClose(1009)
	if s := n.BoardSeq(b); s != ack.Int("seq") {
		t.Fatalf("seq %d after 1009, acked %d", s, ack.Int("seq"))
	}
	// Fragmented: the whole message counts.
	d := hello(t, n, "bob")
	w, err := d.WS.Writer(t.Context(), websocket.MessageText)
	if err != nil {
		t.Fatal(err)
	}
	big := pad(65537)
	for i := 0; i < len(big); i += 10000 {
		if _, err := w.Write([]byte(big[i:min(i+10000, len(big))])); err != nil {
			break
		}
	}
	_ = w.Close()
	d.ExpectClose(1009)
}

func testBinary(t *testing.T, n *gatewaytest.Node) {
	c := hello(t, n, "alice")
	if err := c.TrySend(websocket.MessageBinary, []byte(`{"t":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	c.ExpectClose(1003)
	d := gatewaytest.Dial(t, n.WS) // before hello too
	if err := d.TrySend(websocket.MessageBinary, []byte{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	d.ExpectClose(1003)
}

func testInvalidUTF8(t *testing.T, n *gatewaytest.Node) {
	c := hello(t, n, "alice")
	c.Send([]byte("{\"t\":\"ping\",\"ref\":\"\xff\xfe\"}"))
	c.ExpectClose(1007)
	d := gatewaytest.Dial(t, n.WS)
	d.Send([]byte("\xc3\x28"))
	d.ExpectClose(1007)
}

// testBadInputBarrage throws every kind of bad input at a joined board and
// checks that the board, the node and another client are unaffected.
func testBadInputBarrage(t *testing.T, n *gatewaytest.Node) {
	b := newBoard()
	watcher := joined(t, n, "watcher", b)
	ack := watcher.Apply(b, put("e1", 1, 1, 1))
	watcher.Expect("ev")
	seq := ack.Int("seq")

	inputs := []string{
		``, ` `, `{`, `}`, `{"t":"op"}`, `{"t":"op","board":"` + b + `","id":"x","op":{}}`,
		`{"t":"op","board":"` + b + `","id":"x","op":{"kind":"move","entity":"e1","pos":[1e999,0,0]}}`,
		`{"t":"op","board":"` + b + `","id":"y","op":{"kind":"move","entity":"e1","pos":[NaN,0,0]}}`,
		`{"t":"op","board":"` + b + `","id":"z","op":{"kind":"put","entities":[{"id":"a","asset":"a","pos":[0,0,0],"props":{"a":1,"a":2}}]}}`,
		`{"t":"op","board":"` + b + `","id":"w","op":{"kind":"patch","entity":"e1","props":"x"}}`,
		`{"t":"op","board":"` + b + `","id":"v","op":{"kind":"roll","dice":"99999999999999999999d6"}}`,
		`{"t":"join","board":"` + b + `","since":99999999999999999999}`,
		`{"t":"join","board":"` + b + `","since":9223372036854775807}`,
		`{"t":"op","board":"` + b + `","id":"u","op":{"kind":"chat","text":"\ud800"}}`,
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
		`{"t":"op","board":"` + b + `","id":"deep","op":{"kind":"move","entity":"e1","pos":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}}`,
		`{"t":"ping","x":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`,
		"{\"t\":\"ping\",\"\u0000\":1}",
		`{"t":"hello","user":"evil"}`,
	}
	for round := range 3 {
		c := hello(t, n, fmt.Sprint("fuzzer", round))
		c.Join(b, -1)
		for _, in := range inputs {
			c.Send(in)
		}
		alive(t, c)
		c.Close()
	}
	if s := n.BoardSeq(b); s != seq {
		t.Fatalf("bad input changed the board: seq %d, was %d", s, seq)
	}
	alive(t, watcher)
	next := watcher.Apply(b, chat("still here"))
	if next.Int("seq") != n.BoardSeq(b) {
		t.Fatalf("ack %v, durable seq %d", next, n.BoardSeq(b))
	}
	evs := evsUntil(t, watcher, b, next.Int("seq"))
	if evs[0].Int("seq") != seq+1 {
		t.Fatalf("watcher's stream after the barrage starts at %v", evs[0])
	}
	hello(t, n, "newcomer").Join(b, -1)
}

// testReplayKeepsThousand: a board replays at least its last 1,000 ops.
func testReplayKeepsThousand(t *testing.T, n *gatewaytest.Node) {
	if err := n.Gateway.SetOpsRate(1e6, 1e6); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = n.Gateway.SetOpsRate(200, 200) }()
	b := newBoard()
	a := joined(t, n, "alice", b)
	const total = 1010
	for i := 0; i < total; i += 101 {
		for k := i; k < i+101; k++ {
			a.Send(msg{"t": "op", "board": b, "id": fmt.Sprint("k", k), "op": chat(fmt.Sprint(k))})
		}
		evsUntil(t, a, b, int64(i+101))
	}
	c := hello(t, n, "bob")
	j := c.Join(b, total-1000)
	if j.Int("seq") != total || j.Has("snapshot") {
		t.Fatalf("join since seq-1000: %v", j)
	}
	evs := evsUntil(t, c, b, total)
	if len(evs) != 1000 || evs[0].Int("seq") != total-999 {
		t.Fatalf("replayed %d evs from %v", len(evs), evs[0])
	}
}

// ---- configurations of their own ----------------------------------------------

func TestSinceTooOldGetsSnapshot(t *testing.T) {
	n := start(t, func(c *sysconfig.Config) {
		c.Board.ReplayKeep = 5
		c.Board.DedupKeep = 10
	})
	b := newBoard()
	a := joined(t, n, "alice", b)
	var firstID string
	for i := range 30 {
		ack := a.Apply(b, chat(fmt.Sprint(i)))
		if i == 0 {
			firstID = ack.Str("id")
		}
	}
	c := hello(t, n, "bob")
	j := c.Join(b, 1)
	if j.Int("seq") != 30 || !j.Has("snapshot") {
		t.Fatalf("since too old: %v", j)
	}
	if m := c.Next(); m.T() != "presence" {
		t.Fatalf("after the snapshot: %v", m)
	}
	// Dup detection reaches past what the board keeps in memory.
	a.Send(msg{"t": "op", "ref": "old", "board": b, "id": firstID, "op": chat("x")})
	if ack := a.Until("ack", func(m msg) bool { return m.Str("ref") == "old" }); ack.Int("seq") != 1 || ack["dup"] != true {
		t.Fatalf("retry of op 1 after 30 ops: %v", ack)
	}
}

func TestHelloTimeout(t *testing.T) {
	n := start(t, func(c *sysconfig.Config) { c.Gateway.HelloTimeoutMs = 200 })
	c := gatewaytest.Dial(t, n.WS)
	c.ExpectError("unauthorized", "")
	c.ExpectClose(1008)
	// A client that says hello in time stays.
	d := hello(t, n, "alice")
	testutil.Eventually(t, 5*time.Second, func() bool { return c.Pending() == 0 }, "")
	alive(t, d)
}

func TestRateLimit(t *testing.T) {
	n := start(t, func(c *sysconfig.Config) {
		c.Gateway.OpsPerSec = 0.001
		c.Gateway.OpsBurst = 3
	})
	b := newBoard()
	a := hello(t, n, "alice")
	a.JoinFull(b)
	for range 3 {
		a.Apply(b, chat("ok"))
	}
	// The last ev follows its ack; it must not be taken for an answer
	// to the pings below.
	a.Until("ev", func(m msg) bool { return m.Int("seq") == 3 })
	_, ref := a.Op(b, chat("too many"))
	for {
		m := a.Next()
		if m.Str("ref") == ref {
			if m.T() != "error" || m.Str("code") != "rate_limited" {
				t.Fatalf("4th op: %v", m)
			}
			break
		}
	}
	// Errors of ops not joined count too: the limit is on ops.
	_, ref = a.Op(newBoard(), chat("x"))
	a.ExpectError("rate_limited", ref)
	// Other messages are not limited.
	for range 10 {
		pingNext(t, a)
	}
	if s := n.BoardSeq(b); s != 3 {
		t.Fatalf("a rate-limited op was applied: seq %d", s)
	}
	// Each connection has its own bucket.
	c := joined(t, n, "alice", b)
	c.Apply(b, chat("other connection"))

	// The console raises the rate at runtime: existing and new sessions.
	if err := gateway.SetOpsRate(1000, 50); err != nil {
		t.Fatal(err)
	}
	// (at the old rate the bucket would take hours to refill)
	acked := 0
	deadline := time.Now().Add(5 * time.Second)
	for acked < 20 && time.Now().Before(deadline) {
		_, ref := a.Op(b, chat("now allowed"))
		m := a.Until("", func(m msg) bool { return m.Str("ref") == ref })
		if m.T() == "ack" {
			acked++
		} else if m.Str("code") != "rate_limited" {
			t.Fatalf("op after raising the rate: %v", m)
		}
	}
	if acked < 20 {
		t.Fatalf("only %d ops acked after raising the rate", acked)
	}
	d := gatewaytest.Dial(t, n.WS)
	d.Send(`{"t":"hello","user":"dave"}`)
	if lim := d.Expect("welcome")["limits"]; !jsonEqual(lim, map[string]any{"max_frame": 65536, "ops_per_sec": 1000, "ops_burst": 50}) {
		t.Fatalf("welcome after SetOpsRate: %v", lim)
	}
	if err := gateway.SetOpsRate(0, 1); !errors.Is(err, gateway.ErrBadSetting) {
		t.Fatal("SetOpsRate(0) accepted")
	}
}
