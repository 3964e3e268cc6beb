package console_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"

	"github.com/tavernhq/tavern/apps/board"
	"github.com/tavernhq/tavern/apps/console"
	"github.com/tavernhq/tavern/apps/gateway/gatewaytest"
	"github.com/tavernhq/tavern/internal/erlterm/erltest"
	"github.com/tavernhq/tavern/internal/testutil"
)

// canonFun renders an Erlang term so that nothing depends on how erl
// prints: numbers, atoms and binaries as integers, lists as cons cells,
// map pairs sorted (as erltest does for file:consult). canon is the same
// for the terms a Go node receives.
const canonFun = "\n" + erltest.CanonFun + `P = fun(Tag, T) -> io:put_chars([Tag, " ", C(T), "\n"]) end,
`

func ints[T ~byte | ~rune](xs []T) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.Itoa(int(x))
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func canon(t etf.Term) string {
	switch v := t.(type) {
	case bool:
		return canon(etf.Atom(strconv.FormatBool(v)))
	case etf.Atom:
		return "a" + ints([]rune(string(v)))
	case etf.String:
		return "b" + ints([]byte(v))
	case []byte:
		return "b" + ints(v)
	case float64:
		return "f" + strconv.FormatUint(math.Float64bits(v), 10)
	case etf.Tuple:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = canon(e)
		}
		return "{" + strings.Join(parts, ",") + "}"
	case etf.List:
		var b strings.Builder
		for _, e := range v {
			b.WriteString("[" + canon(e) + "|")
		}
		b.WriteString("[]" + strings.Repeat("]", len(v)))
		return b.String()
	case etf.Map:
		pairs := make([]string, 0, len(v))
		for k, e := range v {
			pairs = append(pairs, canon(k)+"=>"+canon(e))
		}
		sort.Strings(pairs)
		return "#{" + strings.Join(pairs, ",") + "}"
	case int:
		return "i" + strconv.Itoa(v)
	case int64:
		return "i" + strconv.FormatInt(v, 10)
	}
	return fmt.Sprintf("?%T", t)
}

// runErl runs body in a real erl node attached to n (hidden, with cookie;
// N is n's name, Call(R) calls its tavern_console) and returns what body
// printed with P(Tag, Term), by tag.
func runErl(t *testing.T, n *tnode, cookie, body string) map[string]string {
	t.Helper()
	erl := erltest.Erl(t)
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	self := "dbg" + hex.EncodeToString(rnd[:]) + "@127.0.0.1"
	script := canonFun + fmt.Sprintf("N = '%s',\n", n.Name) +
		"Call = fun(R) -> gen_server:call({tavern_console, N}, R, 10000) end,\n" +
		body + "\nhalt().\n"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, erl, "-name", self, "-setcookie", cookie, "-hidden", "-noshell", "-eval", script)
	cmd.Env = append(os.Environ(), fmt.Sprintf("ERL_EPMD_PORT=%d", n.Cfg.Node.EPMDPort))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("erl: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	out := map[string]string{}
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		tag, rest, ok := strings.Cut(sc.Text(), " ")
		if ok {
			out[tag] = rest
		}
	}
	return out
}

// call is a raw gen_server call from the Go console.
func call(t *testing.T, c *console.Client, req etf.Term) etf.Term {
	t.Helper()
	v, err := c.Call(req)
	if err != nil {
		t.Fatalf("%v: %v", req, err)
	}
	return v
}

func okCanon() string { return canon(etf.Atom("ok")) }

// A plain Erlang shell attaches as the README shows (erl -name ...
// -setcookie ... -hidden): net_adm:ping answers pong, and every request
// gets the same answer as from the Go console; changes take effect.
func TestErlangShell(t *testing.T) {
	erltest.Erl(t)
	n := startNode(t, nodeOpts{})
	alice := client(t, n, "alice")
	alice.JoinFull("cave-1")
	bob := client(t, n, "bob")
	bob.JoinFull("cave-1")
	alice.Expect("presence")
	alice.Apply("cave-1", put("e1", 1))
	c := attach(t, n)
	p := probe(t, n)
	before, _, _ := board.Lookup(p, "cave-1")

	goBoards := call(t, c, etf.Atom("boards"))
	goBoard := call(t, c, etf.Tuple{etf.Atom("board"), etf.String("cave-1")})
	goBadID := call(t, c, etf.Tuple{etf.Atom("board"), etf.String("no/such")})
	goHelp := call(t, c, etf.Atom("help"))
	goInfo := call(t, c, etf.Atom("info")).(etf.Tuple)[1].(etf.Map)

	out := runErl(t, n, n.Cfg.Node.Cookie.Reveal(), `
P("ping", net_adm:ping(N)),
P("hidden", lists:member(N, nodes(hidden))),
P("boards", Call(boards)),
P("board_str", Call({board, "cave-1"})),
P("board_bin", Call({board, <<"cave-1">>})),
P("board_atom", Call({board, 'cave-1'})),
P("board_missing", Call({board, "cave-9"})),
P("bad_id", Call({board, "no/such"})),
P("help", Call(help)),
P("bogus", Call(bogus)),
P("bad_shape", Call({kill})),
{ok, Info} = Call(info),
P("info_keys", lists:sort(maps:keys(Info))),
P("info_node", maps:get(node, Info)),
P("info_nodes", maps:get(nodes, Info)),
P("info_counts", {maps:get(boards, Info), maps:get(clients, Info)}),
{ok, Nodes} = Call(nodes),
P("nodes_me", lists:member(#{node => node(), self => false, live => false, connected => true}, Nodes)),
P("nodes_self", lists:member(#{node => N, self => true, live => true, connected => false}, Nodes)),
{ok, Cl} = Call(clients),
P("clients", lists:sort([maps:get(user, X) || X <- Cl])),
P("notice", Call({notice, [104,233,108,108,111,32,9731]})),
P("notice_bin", Call({notice, <<"plain">>})),
P("set_level", Call({set, log_level, debug})),
P("set_level_bad", element(1, Call({set, log_level, loud}))),
P("set_rate", Call({set, ops_per_sec, 500})),
P("set_rate_float", Call({set, ops_per_sec, 2.5})),
P("set_burst_str", Call({set, ops_burst, "12"})),
P("set_unknown", element(1, Call({set, nope, 1}))),
P("kill", Call({kill, "cave-1"})),`)

	want := map[string]string{
		"ping":          canon(etf.Atom("pong")),
		"hidden":        canon(true),
		"boards":        canon(goBoards),
		"board_str":     canon(goBoard),
		"board_bin":     canon(goBoard),
		"board_atom":    canon(goBoard),
		"board_missing": canon(etf.Tuple{etf.Atom("error"), etf.Atom("not_active")}),
		"bad_id":        canon(goBadID),
		"help":          canon(goHelp),
		"bogus":         canon(etf.Tuple{etf.Atom("error"), etf.Atom("unknown_request")}),
		"bad_shape":     canon(etf.Tuple{etf.Atom("error"), etf.Atom("unknown_request")}),
		"info_node":     canon(etf.Atom(n.Name)),
		"info_nodes":    canon(etf.List{etf.Atom(n.Name)}),
		"info_counts":   canon(etf.Tuple{1, 2}),
		"nodes_me":      canon(true),
		"nodes_self":    canon(true),
		"clients":       canon(etf.List{etf.String("alice"), etf.String("bob")}),
		"set_level_bad": canon(etf.Atom("error")),
		"set_unknown":   canon(etf.Atom("error")),
		"kill":          okCanon(),
	}
	var keys etf.List
	var names []string
	for k := range goInfo {
		names = append(names, string(k.(etf.Atom)))
	}
	sort.Strings(names)
	for _, k := range names {
		keys = append(keys, etf.Atom(k))
	}
	want["info_keys"] = canon(keys)
	for tag, w := range want {
		if out[tag] != w {
			t.Errorf("%s: erl got %s\n want %s", tag, out[tag], w)
		}
	}
	for _, tag := range []string{"notice", "notice_bin", "set_level", "set_rate", "set_rate_float", "set_burst_str"} {
		if !strings.HasPrefix(out[tag], "{"+okCanon()+",") {
			t.Errorf("%s: erl got %s", tag, out[tag])
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	// The changes took effect.
	for _, text := range []string{"héllo ☃", "plain"} {
		for _, cl := range []*gatewaytest.Client{alice, bob} {
			if m := cl.Until("notice", nil); m.Str("text") != text {
				t.Fatalf("%s got notice %v, want %q", cl.Name, m, text)
			}
		}
	}
	if n.Level.Level() != slog.LevelDebug {
		t.Fatalf("log level %v after set from erl", n.Level.Level())
	}
	info := do(t, c, "info").(map[string]any)
	if info["ops_per_sec"] != 2.5 || info["ops_burst"] != int64(12) {
		t.Fatalf("rate after set from erl: %v", info)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		pid, ok, _ := board.Lookup(p, "cave-1")
		in, err := board.Describe(p, "cave-1")
		return ok && pid != before && err == nil && in.Loaded && in.Members == 2
	}, "cave-1 restarted after kill from erl, with both members")

	// A wrong cookie: pang.
	out = runErl(t, n, "not-the-cookie", `P("ping", net_adm:ping(N)),`)
	if out["ping"] != canon(etf.Atom("pang")) {
		t.Fatalf("ping with a wrong cookie: %v", out)
	}
}

// drain from an Erlang shell: the client is closed with 1012 and the node
// reports itself empty.
func TestErlangDrain(t *testing.T) {
	erltest.Erl(t)
	n := startNode(t, nodeOpts{})
	alice := client(t, n, "alice")
	alice.JoinFull("gone")
	alice.Apply("gone", chat("bye"))
	out := runErl(t, n, n.Cfg.Node.Cookie.Reveal(), `P("drain", Call(drain)),`)
	want := canon(etf.Tuple{etf.Atom("ok"), etf.Map{etf.Atom("boards"): 1, etf.Atom("clients"): 1}})
	if out["drain"] != want {
		t.Fatalf("drain from erl: %s, want %s", out["drain"], want)
	}
	alice.ExpectClose(1012)
	select {
	case <-n.Drained:
	case <-time.After(10 * time.Second):
		t.Fatal("not drained")
	}
}

// A notice from an Erlang shell attached to one node reaches the clients
// of every node.
func TestErlangNoticeReachesTheCluster(t *testing.T) {
	erltest.Erl(t)
	a, b := cluster2(t)
	ann := client(t, a, "ann")
	ben := client(t, b, "ben")
	out := runErl(t, a, a.Cfg.Node.Cookie.Reveal(), `P("notice", Call({notice, <<"from erl">>})),`)
	if !strings.HasPrefix(out["notice"], "{"+okCanon()+",") {
		t.Fatalf("notice from erl: %v", out)
	}
	for _, c := range []*gatewaytest.Client{ann, ben} {
		if m := c.Until("notice", nil); m.Str("text") != "from erl" {
			t.Fatalf("%s: %v", c.Name, m)
		}
	}
}
