package console_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/tavernhq/tavern/apps/board"
	"github.com/tavernhq/tavern/apps/console"
	"github.com/tavernhq/tavern/apps/gateway/gatewaytest"
	"github.com/tavernhq/tavern/internal/sysconfig"
	"github.com/tavernhq/tavern/internal/testutil"
)

func probe(t *testing.T, n *tnode) gen.Process {
	t.Helper()
	p, err := n.Node.Spawn("", gen.ProcessOptions{}, &gen.Server{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

func replyErr(t *testing.T, err error) string {
	t.Helper()
	var re *console.ReplyError
	if !errors.As(err, &re) {
		t.Fatalf("want an {error, Reason} reply, got %v", err)
	}
	return re.Reason
}

// Every read-only command, through the Go console, answers what the
// node holds.
func TestQueriesFromGo(t *testing.T) {
	n := startNode(t, nodeOpts{})
	alice := client(t, n, "alice")
	alice.JoinFull("cave-1")
	bob := client(t, n, "bob")
	bob.JoinFull("cave-1")
	alice.Expect("presence")
	alice.Apply("cave-1", put("e1", 1))
	c := attach(t, n)
	if !strings.HasPrefix(c.Name(), "console-") || !strings.HasSuffix(c.Name(), "@127.0.0.1") {
		t.Fatalf("console node name %q", c.Name())
	}

	info := do(t, c, "info").(map[string]any)
	want := map[string]any{"node": n.Name, "version": "test", "boards": int64(1), "clients": int64(2),
		"nodes": []any{n.Name}, "dsn_kind": "sqlite", "log_level": "info", "draining": false,
		"ops_per_sec": 200.0, "ops_burst": int64(200)}
	for k, v := range want {
		if !reflect.DeepEqual(info[k], v) {
			t.Errorf("info %s = %#v, want %#v", k, info[k], v)
		}
	}
	if up, ok := info["uptime_s"].(int64); !ok || up < 0 {
		t.Errorf("info uptime_s = %#v", info["uptime_s"])
	}
	if s := fmt.Sprint(info); strings.Contains(s, n.Cfg.Node.Cookie.Reveal()) {
		t.Fatalf("info shows the cookie: %s", s)
	}

	nodes := do(t, c, "nodes").([]any)
	self := map[string]any{"node": n.Name, "self": true, "live": true, "connected": false}
	me := map[string]any{"node": c.Name(), "self": false, "live": false, "connected": true}
	if !slices.ContainsFunc(nodes, func(e any) bool { return reflect.DeepEqual(e, self) }) ||
		!slices.ContainsFunc(nodes, func(e any) bool { return reflect.DeepEqual(e, me) }) {
		t.Fatalf("nodes: %v", nodes)
	}

	wantBoard := map[string]any{"id": "cave-1", "seq": int64(1), "epoch": int64(1), "pending": int64(0),
		"members": int64(2), "users": []any{"alice", "bob"}, "entities": int64(1), "loaded": true}
	boards := do(t, c, "boards").([]any)
	if len(boards) != 1 {
		t.Fatalf("boards: %v", boards)
	}
	got := boards[0].(map[string]any)
	got["epoch"] = int64(1) // whatever epoch the store gave
	if !reflect.DeepEqual(got, wantBoard) {
		t.Fatalf("boards: %#v\nwant %#v", got, wantBoard)
	}
	one := do(t, c, "board", "cave-1").(map[string]any)
	one["epoch"] = int64(1)
	if !reflect.DeepEqual(one, wantBoard) {
		t.Fatalf("board: %#v", one)
	}
	_, err := c.Do("board", []string{"cave-9"})
	if r := replyErr(t, err); r != "not_active" {
		t.Fatalf("board not active: %q", r)
	}
	_, err = c.Do("board", []string{"no/such"})
	if r := replyErr(t, err); !strings.Contains(r, "bad board id") {
		t.Fatalf("bad board id: %q", r)
	}

	cl := do(t, c, "clients").([]any)
	var users []string
	for _, e := range cl {
		m := e.(map[string]any)
		users = append(users, m["user"].(string))
		if !reflect.DeepEqual(m["boards"], []any{"cave-1"}) || !strings.HasPrefix(m["remote"].(string), "127.0.0.1:") {
			t.Fatalf("client: %v", m)
		}
	}
	if !slices.Equal(users, []string{"alice", "bob"}) {
		t.Fatalf("clients: %v", cl)
	}

	// Unknown requests and known ones of the wrong shape.
	for _, req := range []etf.Term{etf.Atom("bogus"), etf.Tuple{etf.Atom("board")}, etf.Tuple{etf.Atom("set"), etf.Atom("log_level")}, "info", 42} {
		v, err := c.Call(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := console.Interpret(v); replyErr(t, err) != "unknown_request" {
			t.Fatalf("%v: %v", req, v)
		}
	}
}

// set changes the log level and the op rate at once, and refuses
// unknown keys and bad values with a reason.
func TestSet(t *testing.T) {
	n := startNode(t, nodeOpts{})
	c := attach(t, n)
	v := do(t, c, "set", "log_level", "debug").(map[string]any)
	if !reflect.DeepEqual(v, map[string]any{"key": "log_level", "old": "info", "new": "debug"}) {
		t.Fatalf("set log_level: %v", v)
	}
	if n.Level.Level() != slog.LevelDebug {
		t.Fatalf("level %v", n.Level.Level())
	}
	for _, bad := range [][2]string{
		{"log_level", "loud"}, {"ops_per_sec", "0"}, {"ops_per_sec", "-3"}, {"ops_per_sec", "abc"},
		{"ops_per_sec", "NaN"}, {"ops_per_sec", "1e9"}, {"ops_burst", "1.5"}, {"ops_burst", "0"}, {"nope", "1"},
	} {
		_, err := c.Do("set", bad[:])
		r := replyErr(t, err)
		if !strings.Contains(r, bad[0]) && !strings.Contains(r, "unknown setting") {
			t.Fatalf("set %v: %q", bad, r)
		}
	}
	if n.Level.Level() != slog.LevelDebug {
		t.Fatal("a refused set changed the level")
	}

	// A client connected before the change is limited at the new rate.
	n2 := startNode(t, nodeOpts{Tweak: func(c *sysconfig.Config) { c.Gateway.OpsPerSec = 0.001; c.Gateway.OpsBurst = 1 }})
	c2 := attach(t, n2)
	a := client(t, n2, "alice")
	a.JoinFull("rate")
	a.Apply("rate", chat("one"))
	_, ref := a.Op("rate", chat("two"))
	if m := a.Until("", func(m gatewaytest.Msg) bool { return m.Str("ref") == ref }); m.Str("code") != "rate_limited" {
		t.Fatalf("over the rate: %v", m)
	}
	do(t, c2, "set", "ops_per_sec", "1000")
	do(t, c2, "set", "ops_burst", "50")
	acked := 0
	deadline := time.Now().Add(5 * time.Second)
	for acked < 20 && time.Now().Before(deadline) {
		_, ref := a.Op("rate", chat("now allowed"))
		m := a.Until("", func(m gatewaytest.Msg) bool { return m.Str("ref") == ref })
		if m.T() == "ack" {
			acked++
		}
	}
	if acked < 20 {
		t.Fatalf("%d ops acked after raising the rate", acked)
	}
	b := gatewaytest.Dial(t, n2.WS)
	lim := b.Hello("bob")["limits"].(map[string]any)
	if lim["ops_per_sec"] != 1000.0 || lim["ops_burst"] != 50.0 {
		t.Fatalf("welcome limits after set: %v", lim)
	}
	info := do(t, c2, "info").(map[string]any)
	if info["ops_per_sec"] != 1000.0 || info["ops_burst"] != int64(50) {
		t.Fatalf("info after set: %v", info)
	}
}

// kill crashes a board's actor while clients send: the supervisor
// restarts it, the clients stay connected, every op is acked once and
// both clients see every seq in order.
func TestKillWhileClientsSend(t *testing.T) {
	n := startNode(t, nodeOpts{})
	a := client(t, n, "alice")
	a.JoinFull("k")
	b := client(t, n, "bob")
	b.JoinFull("k")
	a.Expect("presence")
	c := attach(t, n)
	p := probe(t, n)
	before, ok, err := board.Lookup(p, "k")
	if err != nil || !ok {
		t.Fatalf("lookup: %v %v", ok, err)
	}

	const total = 100
	send := func(i int) {
		id := fmt.Sprint("k", i)
		a.Send(gatewaytest.Msg{"t": "op", "ref": id, "board": "k", "id": id, "op": put(fmt.Sprint("e", i%7), i)})
	}
	acked := map[string]int64{}
	var evA []int64
	var failed []int
	// answer reads one answer to an op: an ack, or "unavailable" while
	// the board restarts (sent again, same id, once it is back).
	answer := func() {
		for {
			m := a.Next()
			switch m.T() {
			case "ack":
				if _, dup := acked[m.Str("id")]; dup {
					t.Fatalf("second ack: %v", m)
				}
				acked[m.Str("id")] = m.Int("seq")
				return
			case "error":
				if m.Str("code") != "unavailable" {
					t.Fatalf("op error: %v", m)
				}
				var i int
				fmt.Sscanf(m.Str("ref"), "k%d", &i)
				failed = append(failed, i)
				return
			case "ev":
				evA = append(evA, m.Int("seq"))
			}
		}
	}
	// 30 ops in flight; the kill comes after the first 10 acks, and 70
	// more ops follow it at once.
	for i := range 30 {
		send(i)
	}
	for range 10 {
		answer()
	}
	if v := do(t, c, "kill", "k"); v != nil {
		t.Fatalf("kill: %v", v)
	}
	for i := 30; i < total; i++ {
		send(i)
	}
	for range total - 10 {
		answer()
	}
	retried := 0
	for round := 0; len(failed) > 0; round++ {
		if round > 20 {
			t.Fatalf("ops still unacked after %d rounds: %v", round, failed)
		}
		testutil.Eventually(t, 10*time.Second, func() bool {
			in, err := board.Describe(p, "k")
			return err == nil && in.Loaded && in.Members == 2
		}, "board k back with both members")
		retry := failed
		retried += len(retry)
		failed = nil
		for _, i := range retry {
			send(i)
		}
		for range retry {
			answer()
		}
	}
	t.Logf("%d ops acked; %d answers were \"unavailable\" and sent again", len(acked), retried)
	seqs := make([]int64, 0, total)
	for _, s := range acked {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("acked seqs are not 1..%d: %v", total, seqs)
		}
	}
	for len(evA) < total {
		if m := a.Next(); m.T() == "ev" {
			evA = append(evA, m.Int("seq"))
		}
	}
	var evB []int64
	for len(evB) < total {
		if m := b.Next(); m.T() == "ev" {
			evB = append(evB, m.Int("seq"))
		}
	}
	if !slices.Equal(evA, seqs) || !slices.Equal(evB, seqs) {
		t.Fatalf("events with a gap or out of order:\nalice %v\nbob   %v", evA, evB)
	}
	after, ok, _ := board.Lookup(p, "k")
	if !ok || after == before {
		t.Fatalf("board not restarted: %v -> %v (%v)", before, after, ok)
	}
	in := do(t, c, "board", "k").(map[string]any)
	if in["members"] != int64(2) || in["seq"] != int64(total) {
		t.Fatalf("after kill: %v", in)
	}
	if _, err := c.Do("kill", []string{"idle"}); replyErr(t, err) != "not_active" {
		t.Fatalf("kill of an inactive board: %v", err)
	}
}

// notice reaches every client of the cluster, whichever node the console
// is attached to.
func TestNoticeReachesTheCluster(t *testing.T) {
	a, b := cluster2(t)
	ann := client(t, a, "ann")
	ben := client(t, b, "ben")
	anon := gatewaytest.Dial(t, b.WS) // no hello: not a client
	for _, n := range []*tnode{a, b} {
		c := attach(t, n)
		text := "doors close at midnight, says " + n.Name
		v := do(t, c, "notice", strings.Fields(text)...).(map[string]any)
		nodes := []any{a.Name, b.Name}
		slices.SortFunc(nodes, func(x, y any) int { return strings.Compare(x.(string), y.(string)) })
		if !reflect.DeepEqual(v["nodes"], nodes) {
			t.Fatalf("notice sent to %v", v)
		}
		for _, cl := range []*gatewaytest.Client{ann, ben} {
			if m := cl.Until("notice", nil); m.Str("text") != text {
				t.Fatalf("%s got %v", cl.Name, m)
			}
		}
	}
	if anon.Pending() != 0 {
		t.Fatal("a connection without hello got a notice")
	}
	c := attach(t, a)
	if _, err := c.Do("notice", []string{"  "}); !strings.Contains(replyErr(t, err), "empty") {
		t.Fatalf("empty notice: %v", err)
	}
}

// drain with clients connected and sending: they are closed with 1012,
// resume on the other node, every acked op is in the database exactly
// once, the other node's clients see no gap, and the drained node reports
// itself empty.
func TestDrainWithClientsSending(t *testing.T) {
	a, b := cluster2(t)
	live := []string{a.Name, b.Name}
	id := ownedBy(a.Name, live, "d")
	alice := client(t, a, "alice") // connected to the node that drains
	alice.JoinFull(id)
	bob := client(t, b, "bob")
	bob.JoinFull(id)
	alice.Expect("presence")

	const total = 60
	opOf := func(i int) gatewaytest.Msg {
		return gatewaytest.Msg{"t": "op", "ref": fmt.Sprint(i), "board": id, "id": fmt.Sprint("d", i), "op": chat(fmt.Sprint(i))}
	}
	acked := map[string]int64{}
	// 20 acked before the drain, 20 more in flight as it starts.
	for i := range 20 {
		alice.Send(opOf(i))
	}
	for len(acked) < 20 {
		if m := alice.Next(); m.T() == "ack" {
			acked[m.Str("id")] = m.Int("seq")
		}
	}
	for i := 20; i < 40; i++ {
		alice.Send(opOf(i))
	}
	c := attach(t, a)
	v := do(t, c, "drain").(map[string]any)
	if v["boards"] != int64(1) || v["clients"] != int64(1) {
		t.Fatalf("drain: %v", v)
	}
	if code := alice.WaitClose(); code != 1012 {
		t.Fatalf("alice closed with %d, want 1012", code)
	}
	for {
		m, err := alice.NextWithin(0)
		if err != nil {
			break
		}
		if m.T() == "ack" {
			acked[m.Str("id")] = m.Int("seq")
		}
	}
	beforeClose := len(acked)
	select {
	case <-a.Drained:
	case <-time.After(10 * time.Second):
		t.Fatal("the drained node did not report itself empty")
	}
	if _, resp, err := gatewaytest.TryDial(a.WS, nil); err == nil || resp == nil || resp.StatusCode != 503 {
		t.Fatalf("a new client of the draining node: %v %v", err, resp)
	}
	if ids := do(t, c, "boards").([]any); len(ids) != 0 {
		t.Fatalf("boards after drain: %v", ids)
	}

	// Alice resumes on b: the ops she has no ack for are sent again with
	// the same ids, then the rest.
	alice2 := client(t, b, "alice")
	alice2.JoinFull(id)
	for i := range total {
		if _, ok := acked[fmt.Sprint("d", i)]; ok {
			continue
		}
		alice2.Send(opOf(i))
	}
	for len(acked) < total {
		m := alice2.Next()
		if m.T() == "ack" {
			acked[m.Str("id")] = m.Int("seq")
		} else if m.T() == "error" {
			t.Fatalf("op after resume: %v", m)
		}
	}
	var evB []int64
	for len(evB) < total {
		if m := bob.Next(); m.T() == "ev" {
			evB = append(evB, m.Int("seq"))
		}
	}
	for i, s := range evB {
		if s != int64(i+1) {
			t.Fatalf("bob saw a gap: %v", evB)
		}
	}
	ctx := context.Background()
	ops, err := b.Store.LoadOps(ctx, id, 0, total+10)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int64{}
	for _, o := range ops {
		if _, dup := seen[o.OpID]; dup {
			t.Fatalf("op %s stored twice", o.OpID)
		}
		seen[o.OpID] = o.Seq
	}
	if len(ops) != total {
		t.Fatalf("%d ops stored, want %d", len(ops), total)
	}
	for opID, seq := range acked {
		if seen[opID] != seq {
			t.Fatalf("acked op %s at seq %d, stored at %d", opID, seq, seen[opID])
		}
	}
	t.Logf("%d ops acked before alice was closed, %d after she resumed on the other node", beforeClose, total-beforeClose)
}

// A node alone drains too: its clients are closed, its boards stop, and
// it reports itself empty.
func TestDrainAlone(t *testing.T) {
	n := startNode(t, nodeOpts{})
	a := client(t, n, "alice")
	a.JoinFull("solo")
	a.Apply("solo", chat("hi"))
	c := attach(t, n)
	v := do(t, c, "drain").(map[string]any)
	if v["boards"] != int64(1) || v["clients"] != int64(1) {
		t.Fatalf("drain: %v", v)
	}
	a.ExpectClose(1012)
	select {
	case <-n.Drained:
	case <-time.After(10 * time.Second):
		t.Fatal("not drained")
	}
	if info := do(t, c, "info").(map[string]any); info["draining"] != true || info["boards"] != int64(0) {
		t.Fatalf("info after drain: %v", info)
	}
	// A second drain is harmless.
	if v := do(t, c, "drain").(map[string]any); v["boards"] != int64(0) || v["clients"] != int64(0) {
		t.Fatalf("second drain: %v", v)
	}
}

// A wrong cookie and a node that is not there are told apart, quickly.
func TestAttachFailures(t *testing.T) {
	n := startNode(t, nodeOpts{})
	wrong := *n.Cfg
	wrong.Node.Cookie = "not-the-cookie"
	wrong.Path = "/etc/tavern/sys.config"
	start := time.Now()
	_, err := console.Dial(context.Background(), &wrong, console.DialOptions{})
	if !errors.Is(err, console.ErrRefused) || !strings.Contains(err.Error(), "cookie") || !strings.Contains(err.Error(), wrong.Path) {
		t.Fatalf("wrong cookie: %v", err)
	}
	if strings.Contains(err.Error(), "not-the-cookie") {
		t.Fatalf("the error shows the cookie: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("wrong cookie refused after %v", d)
	}

	// Not registered with a running EPMD.
	gone := *n.Cfg
	gone.Node.Name = "tavern-gone@127.0.0.1"
	start = time.Now()
	if _, err := console.Dial(context.Background(), &gone, console.DialOptions{}); !errors.Is(err, console.ErrUnreachable) || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("missing node: %v", err)
	}
	// No EPMD at all, no fixed port.
	noEPMD := *n.Cfg
	noEPMD.Node.EPMDPort = testutil.FreePort(t)
	if _, err := console.Dial(context.Background(), &noEPMD, console.DialOptions{}); !errors.Is(err, console.ErrUnreachable) {
		t.Fatalf("no EPMD: %v", err)
	}
	// A fixed dist port, nothing listening.
	fixed := *n.Cfg
	fixed.Node.EPMDPort = 0
	fixed.Node.DistListen = testutil.FreeAddr(t)
	if _, err := console.Dial(context.Background(), &fixed, console.DialOptions{}); !errors.Is(err, console.ErrUnreachable) {
		t.Fatalf("closed port: %v", err)
	}
	// Something that accepts and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	hung := fixed
	hung.Node.DistListen = ln.Addr().String()
	if _, err := console.Dial(context.Background(), &hung, console.DialOptions{Timeout: time.Second}); !errors.Is(err, console.ErrUnreachable) {
		t.Fatalf("silent peer: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("unreachable nodes reported after %v", d)
	}
}
