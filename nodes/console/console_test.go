package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tavernhq/tavern/apps/console"
	"github.com/tavernhq/tavern/apps/gateway/gatewaytest"
	"github.com/tavernhq/tavern/apps/store"
	"github.com/tavernhq/tavern/internal/sysconfig"
	"github.com/tavernhq/tavern/internal/testutil"
)

func uniq(prefix string) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// noCookie fails the test if the console printed the cookie.
func noCookie(t *testing.T, r result, cookie string) {
	t.Helper()
	if strings.Contains(r.stdout+r.stderr, cookie) {
		t.Fatalf("the console printed the cookie:\n%s%s", r.stdout, r.stderr)
	}
}

// Every command, one at a time, through the tavern-console binary against
// a server process: text and JSON output, exit codes, and no cookie.
func TestOneShotCommands(t *testing.T) {
	s := startServer(t, testConfig(t, uniq("oneshot")))
	cookie := s.Cfg.Node.Cookie.Reveal()
	name := s.Cfg.Node.Name
	alice := gatewaytest.Dial(t, "ws://"+s.Cfg.Gateway.Listen+"/ws")
	alice.Hello("alice")
	alice.JoinFull("cave-1")
	alice.Apply("cave-1", map[string]any{"kind": "chat", "text": "hi"})

	cases := []struct {
		args   []string
		code   int
		stdout []string // lines or parts of lines it must print
		stderr string
	}{
		{[]string{"info"}, 0, []string{"node ", name, "dsn_kind", "sqlite", "boards       1", "clients      1"}, ""},
		{[]string{"nodes"}, 0, []string{"NODE", name, "console-"}, ""},
		{[]string{"boards"}, 0, []string{"ID", "SEQ", "cave-1  1 "}, ""},
		{[]string{"board", "cave-1"}, 0, []string{"id ", "cave-1", "users", "alice"}, ""},
		{[]string{"board", "cave-9"}, 1, nil, "board cave-9 is not active on " + name},
		{[]string{"board", "no/such"}, 1, nil, "bad board id"},
		{[]string{"clients"}, 0, []string{"SESSION", "alice", "cave-1"}, ""},
		{[]string{"notice", "server", "restarts", "soon"}, 0, []string{"ok: sent to " + name}, ""},
		{[]string{"set", "log_level", "debug"}, 0, []string{"ok: log_level info -> debug"}, ""},
		{[]string{"set", "log_level", "loud"}, 1, nil, "log_level must be debug, info, warn or error"},
		{[]string{"set", "ops_per_sec", "0"}, 1, nil, "ops_per_sec must be a number > 0"},
		{[]string{"set", "ops_per_sec", "50"}, 0, []string{"ok: ops_per_sec 200 -> 50"}, ""},
		{[]string{"set", "ops_burst", "5"}, 0, []string{"ok: ops_burst 200 -> 5"}, ""},
		{[]string{"set", "colour", "blue"}, 1, nil, "unknown setting colour"},
		{[]string{"kill", "cave-9"}, 1, nil, "not active"},
		{[]string{"kill", "cave-1"}, 0, []string{"ok: board cave-1 killed"}, ""},
		{[]string{"bogus"}, 2, nil, `unknown command "bogus"`},
		{[]string{"board"}, 2, nil, "usage: board ID"},
		{[]string{"set", "log_level"}, 2, nil, "usage: set KEY VALUE"},
	}
	for _, c := range cases {
		r := runConsole(t, "", append([]string{"-config", s.Path}, c.args...)...)
		noCookie(t, r, cookie)
		if r.code != c.code {
			t.Fatalf("%v: exit %d, want %d\nstdout: %s\nstderr: %s", c.args, r.code, c.code, r.stdout, r.stderr)
		}
		for _, want := range c.stdout {
			if !strings.Contains(r.stdout, want) {
				t.Fatalf("%v: stdout lacks %q:\n%s", c.args, want, r.stdout)
			}
		}
		if c.stderr != "" && !strings.Contains(r.stderr, c.stderr) {
			t.Fatalf("%v: stderr lacks %q:\n%s", c.args, c.stderr, r.stderr)
		}
		if c.code == 0 && r.stderr != "" {
			t.Fatalf("%v: stderr on success: %s", c.args, r.stderr)
		}
	}
	if m := alice.Until("notice", nil); m.Str("text") != "server restarts soon" {
		t.Fatalf("notice: %v", m)
	}
	// The log level changed in the running process: a new client is
	// logged at debug level now.
	before := strings.Count(s.logs.String(), "level=DEBUG")
	late := gatewaytest.Dial(t, "ws://"+s.Cfg.Gateway.Listen+"/ws")
	w := late.Hello("late")
	testutil.Eventually(t, 5*time.Second, func() bool {
		return strings.Count(s.logs.String(), "level=DEBUG") > before
	}, "debug lines in the server's log after set log_level debug")
	// And the op rate set above is the new client's.
	if lim, _ := w["limits"].(map[string]any); lim["ops_per_sec"] != 50.0 || lim["ops_burst"] != 5.0 {
		t.Fatalf("welcome after set: %v", w)
	}

	// JSON, for scripts.
	var info map[string]any
	r := runConsole(t, "", "-config", s.Path, "-json", "info")
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil || r.code != 0 {
		t.Fatalf("info -json: %v %d\n%s", err, r.code, r.stdout)
	}
	if info["node"] != name || info["log_level"] != "debug" || info["ops_per_sec"] != 50.0 || info["ops_burst"] != 5.0 {
		t.Fatalf("info -json: %v", info)
	}
	var boards []map[string]any
	r = runConsole(t, "", "-config", s.Path, "-json", "boards")
	if err := json.Unmarshal([]byte(r.stdout), &boards); err != nil || len(boards) != 1 || boards[0]["id"] != "cave-1" {
		t.Fatalf("boards -json: %v\n%s", err, r.stdout)
	}
	var failed map[string]any
	r = runConsole(t, "", "-config", s.Path, "-json", "board", "cave-9")
	if err := json.Unmarshal([]byte(r.stdout), &failed); err != nil || r.code != 1 || !strings.Contains(fmt.Sprint(failed["error"]), "not active") {
		t.Fatalf("failed -json: %v %d\n%s", err, r.code, r.stdout)
	}

	// help needs no node; a config that does not load is exit 2.
	if r := runConsole(t, "", "help"); r.code != 0 || !strings.Contains(r.stdout, "set KEY VALUE") {
		t.Fatalf("help: %+v", r)
	}
	if r := runConsole(t, "", "-config", filepath.Join(t.TempDir(), "none.config"), "info"); r.code != 2 {
		t.Fatalf("missing config: %+v", r)
	}
}

// A wrong cookie, a node that is not running and an EPMD that is not
// there each fail at once with a message that says so, and exit 1.
func TestAttachFailures(t *testing.T) {
	s := startServer(t, testConfig(t, uniq("refuse")))
	wrong := s.Cfg
	wrong.Node.Cookie = "this-is-not-the-cookie"
	wrongPath := filepath.Join(t.TempDir(), "wrong.config")
	if err := os.WriteFile(wrongPath, []byte(sysconfig.Render(&wrong)), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runConsole(t, "", "-config", wrongPath, "info")
	noCookie(t, r, s.Cfg.Node.Cookie.Reveal())
	noCookie(t, r, wrong.Node.Cookie.Reveal())
	if r.code != 1 || !strings.Contains(r.stderr, "refused the handshake") || !strings.Contains(r.stderr, "cookie in "+wrongPath) || r.stdout != "" {
		t.Fatalf("wrong cookie: %+v", r)
	}
	if r.took > 3*time.Second {
		t.Fatalf("wrong cookie refused after %v", r.took)
	}

	gone := s.Cfg
	gone.Node.Name = uniq("gone") + "@127.0.0.1"
	gonePath := filepath.Join(t.TempDir(), "gone.config")
	if err := os.WriteFile(gonePath, []byte(sysconfig.Render(&gone)), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runConsole(t, "", "-config", gonePath, "info")
	if r.code != 1 || !strings.Contains(r.stderr, "is not running") || r.took > 3*time.Second {
		t.Fatalf("node not running: %+v", r)
	}

	s.cmd.Process.Kill()
	s.waitExit(10 * time.Second)
	r = runConsole(t, "", "-config", s.Path, "info")
	if r.code != 1 || !strings.Contains(r.stderr, "unreachable") || r.took > 3*time.Second {
		t.Fatalf("EPMD gone: %+v", r)
	}
}

// The REPL, fed by a pipe: help, commands with errors between them, a
// notice with its spacing kept, the history file.
func TestREPL(t *testing.T) {
	s := startServer(t, testConfig(t, uniq("repl")))
	alice := gatewaytest.Dial(t, "ws://"+s.Cfg.Gateway.Listen+"/ws")
	alice.Hello("alice")
	history := filepath.Join(t.TempDir(), "history")
	in := "help\ninfo\nboard cave-9\n\nnotice  two  spaces\nset log_level warn\nexit\ninfo\n"
	r := runConsole(t, in, "-config", s.Path, "-history", history)
	noCookie(t, r, s.Cfg.Node.Cookie.Reveal())
	if r.code != 0 {
		t.Fatalf("repl: %+v", r)
	}
	for _, want := range []string{"set KEY VALUE", "quit", "node ", s.Cfg.Node.Name, "ok: sent to", "ok: log_level info -> warn"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("repl output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Count(r.stdout, "dsn_kind") != 1 {
		t.Fatalf("the REPL went on after exit:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "error: board cave-9 is not active") {
		t.Fatalf("repl errors: %s", r.stderr)
	}
	if m := alice.Until("notice", nil); m.Str("text") != "two  spaces" {
		t.Fatalf("notice: %v", m)
	}
	h, err := os.ReadFile(history)
	if err != nil || !strings.Contains(string(h), "set log_level warn") {
		t.Fatalf("history: %q %v", h, err)
	}
	if st, err := os.Stat(history); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("history file mode: %v %v", st.Mode(), err)
	}
}

// Tab completion of command names, setting names and values, and the
// node's active board ids.
func TestCompletion(t *testing.T) {
	s := startServer(t, testConfig(t, uniq("complete")))
	alice := gatewaytest.Dial(t, "ws://"+s.Cfg.Gateway.Listen+"/ws")
	alice.Hello("alice")
	alice.JoinFull("goblin-2")
	c, err := console.Dial(context.Background(), &s.Cfg, console.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	comp := completer(c)
	complete := func(line string) []string {
		cands, _ := comp.Do([]rune(line), len([]rune(line)))
		var out []string
		for _, c := range cands {
			out = append(out, string(c))
		}
		return out
	}
	for line, want := range map[string]string{
		"bo":              "ard ",
		"se":              "t ",
		"set log":         "_level ",
		"set log_level d": "ebug ",
		"dr":              "ain ",
		"kill gob":        "lin-2 ",
		"board gob":       "lin-2 ",
	} {
		got := complete(line)
		found := false
		for _, g := range got {
			found = found || g == want
		}
		if !found {
			t.Errorf("complete %q: %q, want %q among them", line, got, want)
		}
	}
}

// drain through the console binary with clients connected and sending:
// they are closed with 1012, every op acknowledged is in the database,
// and the server process exits 0 on its own.
func TestDrainStopsTheServer(t *testing.T) {
	cfg := testConfig(t, uniq("drain"))
	cfg.Gateway.OpsPerSec, cfg.Gateway.OpsBurst = 100000, 100000
	s := startServer(t, cfg)
	ws := "ws://" + s.Cfg.Gateway.Listen + "/ws"
	alice := gatewaytest.Dial(t, ws)
	alice.Hello("alice")
	alice.JoinFull("last")
	bob := gatewaytest.Dial(t, ws)
	bob.Hello("bob")
	bob.JoinFull("last")
	alice.Expect("presence")
	// Alice sends without waiting until her connection is closed.
	sent := make(chan int, 1)
	go func() {
		i := 0
		for ; i < 2000; i++ {
			b, _ := json.Marshal(gatewaytest.Msg{"t": "op", "ref": fmt.Sprint(i), "board": "last", "id": fmt.Sprint("o", i),
				"op": map[string]any{"kind": "chat", "text": fmt.Sprint(i)}})
			if alice.TrySend(websocket.MessageText, b) != nil {
				break
			}
		}
		sent <- i
	}()
	acked := map[string]int64{}
	for len(acked) < 1 {
		if m := alice.Next(); m.T() == "ack" {
			acked[m.Str("id")] = m.Int("seq")
		}
	}
	r := runConsole(t, "", "-config", s.Path, "drain")
	if r.code != 0 || !strings.Contains(r.stdout, "ok: draining: 1 boards handed off, 2 clients closed with 1012") {
		t.Fatalf("drain: %+v", r)
	}
	for _, c := range []*gatewaytest.Client{alice, bob} {
		if code := c.WaitClose(); code != 1012 {
			t.Fatalf("%s closed with %d", c.Name, code)
		}
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
	if code := s.waitExit(15 * time.Second); code != 0 {
		t.Fatalf("server exit code %d after drain", code)
	}
	if !strings.Contains(s.logs.String(), "drained") {
		t.Fatalf("no drained line in the logs:\n%s", s.logs.String())
	}
	st, err := store.Open(context.Background(), s.Cfg.Store, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	seq, _, err := st.BoardSeq(context.Background(), "last")
	if err != nil {
		t.Fatal(err)
	}
	ops, err := st.LoadOps(context.Background(), "last", 0, seq)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]int64{}
	for _, o := range ops {
		stored[o.OpID] = o.Seq
	}
	for id, seq := range acked {
		if stored[id] != seq {
			t.Fatalf("acked op %s (seq %d) stored at %d", id, seq, stored[id])
		}
	}
	t.Logf("%d ops sent, %d acked before the drain closed the client, %d stored", <-sent, len(acked), len(ops))
}
