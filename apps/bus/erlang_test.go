package bus_test

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/tavernhq/tavern/apps/bus"
	"github.com/tavernhq/tavern/internal/testutil"
)

// TestErlangInterop runs a real OTP 25 node with OTP's own pg and an
// erlbus-like server (testdata/tbus.erl) against a Go node: each sees the
// other's bus server in group ebus_ps of scope ebus_ps_pg, and publishes
// cross both ways.
//
// Hidden, only the Go side discovers (Ergo reports hidden connections; the
// Erlang pg hears of visible nodes only); visible, both sides do.
func TestErlangInterop(t *testing.T) {
	dir := compileErlang(t, filepath.Join("testdata", "tbus.erl"))
	t.Run("hidden", func(t *testing.T) { runInterop(t, "emul", dir, true) })
	t.Run("visible", func(t *testing.T) { runInterop(t, "emul", dir, false) })
}

// TestErlbusInterop is TestErlangInterop against the real erlbus 0.3
// (github.com/cabol/erlbus): set TAVERN_ERLBUS_SRC to a checkout (its src
// directory is compiled at test time; nothing of it is kept here).
func TestErlbusInterop(t *testing.T) {
	src := os.Getenv("TAVERN_ERLBUS_SRC")
	if src == "" {
		t.Skip("TAVERN_ERLBUS_SRC is not set")
	}
	var files []string
	_ = filepath.WalkDir(filepath.Join(src, "src"), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".erl") {
			files = append(files, p)
		}
		return nil
	})
	dir := compileErlang(t, append(files, filepath.Join("testdata", "tbus.erl"))...)
	app, err := os.ReadFile(filepath.Join(src, "src", "ebus.app.src"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ebus.app"), app, 0o644); err != nil {
		t.Fatal(err)
	}
	runInterop(t, "erlbus", dir, true)
}

func runInterop(t *testing.T, mode, beams string, hidden bool) {
	ns := cluster(t, 1)
	g := ns[0]
	g1 := g.spawn(256)
	g1.sub(t, topic)

	erl := startErl(t, g, mode, beams, hidden)
	erl.expect(t, "{connect,'"+g.node.Name()+"'}.", "connect true")

	// (1) Each side sees both bus servers in the group.
	erlNode := "'" + erl.name + "'"
	want := "members [" + strings.Join(sortedPair(erlNode, "'"+g.node.Name()+"'"), ",") + "]"
	var got string
	testutil.Eventually(t, 10*time.Second, func() bool {
		got = erl.ask(t, "{members}.")
		return got == want
	}, "Erlang's pg:get_members(ebus_ps_pg, ebus_ps): want %q", want)
	testutil.Eventually(t, 15*time.Second, func() bool {
		for _, m := range bus.Members(g.driver.proc) {
			if string(m.Node) == erl.name {
				return true
			}
		}
		return false
	}, "the Go node does not see the Erlang bus server")

	// (2) An Erlang publish reaches the Go subscriber.
	erl.expect(t, `{pub, <<"board:cave-1">>, {hello, <<"from erlang">>, 42}}.`, "pub ok")
	msgs := g1.waitFor(t, 1)
	wantMsg := etf.Tuple{etf.Atom("hello"), []byte("from erlang"), 42}
	if !reflect.DeepEqual(msgs[0], wantMsg) {
		t.Fatalf("Go got %#v, want %#v", msgs[0], wantMsg)
	}
	if s := g.app.Stats(); s.Received != 1 {
		t.Fatalf("Go received %d forwards, want 1", s.Received)
	}

	// (3) A Go publish reaches the Erlang subscriber, and the Go one.
	erl.expect(t, `{sub, <<"board:cave-1">>}.`, "sub ok")
	g.driver.pub(t, topic, etf.Tuple{etf.Atom("hello"), []byte("from go"), 7})
	erl.expect(t, "{recv, 5000}.", "recv {hello,"+erlBinary("from go")+",7}")
	g1.waitFor(t, 2)

	// Order holds from Go to Erlang too.
	const n = 500
	g.driver.do(t, func(p gen.Process) (any, error) {
		for i := range n {
			if err := bus.Pub(p, topic, ev("o", i)); err != nil {
				return nil, err
			}
		}
		return nil, nil
	})
	for i := range n {
		erl.expect(t, "{recv, 5000}.", fmt.Sprintf("recv {o,%d}", i))
	}

	// Subscribers asks the Erlang server too, which answers ok as erlbus's
	// does: only Go subscribers are listed, and no error.
	subs, err := func() ([]etf.Pid, error) {
		var subs []etf.Pid
		var err error
		g.driver.do(t, func(p gen.Process) (any, error) {
			subs, err = bus.Subscribers(p, topic)
			return nil, nil
		})
		return subs, err
	}()
	if err != nil || len(subs) != 1 || subs[0] != g1.self() {
		t.Fatalf("Subscribers: %v, %v", subs, err)
	}

	// The Erlang node going away takes its bus server out of the group.
	erl.quit(t)
	testutil.Eventually(t, 15*time.Second, func() bool { return len(bus.Members(g.driver.proc)) == 1 },
		"the Erlang bus server is still a member: %v", bus.Members(g.driver.proc))
}

func sortedPair(a, b string) []string {
	if strings.Trim(b, "'") < strings.Trim(a, "'") {
		a, b = b, a
	}
	return []string{a, b}
}

// erlBinary is how ~w writes a binary.
func erlBinary(s string) string {
	parts := make([]string, len(s))
	for i := range len(s) {
		parts[i] = fmt.Sprint(s[i])
	}
	return "<<" + strings.Join(parts, ",") + ">>"
}

// needErl skips without erl, but fails under CI, where it must be.
func needErl(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"erl", "erlc"} {
		if _, err := exec.LookPath(tool); err != nil {
			if testutil.InCI() {
				t.Fatalf("%s is required under CI: %v", tool, err)
			}
			t.Skipf("%s not found", tool)
		}
	}
}

func compileErlang(t *testing.T, files ...string) string {
	t.Helper()
	needErl(t)
	dir := t.TempDir()
	out, err := exec.Command("erlc", append([]string{"-o", dir}, files...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("erlc: %v\n%s", err, out)
	}
	return dir
}

// erlNode is a running erl driven over its stdin and stdout.
type erlNode struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *testutil.SyncBuffer
	done   chan struct{}
}

func startErl(t *testing.T, g *testNode, mode, beams string, hidden bool) *erlNode {
	t.Helper()
	e := &erlNode{
		name:   fmt.Sprintf("t%d@127.0.0.1", rand.Uint32()),
		lines:  make(chan string, 1024),
		stderr: &testutil.SyncBuffer{},
		done:   make(chan struct{}),
	}
	// pg on the Erlang side starts before the connection, so the Go
	// node's discover finds it.
	args := []string{"-name", e.name, "-setcookie", cookie, "-noshell",
		"-start_epmd", "false", "-pa", beams, "-eval", "tbus:main(" + mode + ")"}
	if hidden {
		args = append(args, "-hidden")
	}
	e.cmd = exec.Command("erl", args...)
	e.cmd.Env = append(os.Environ(), fmt.Sprintf("ERL_EPMD_PORT=%d", g.epmd))
	e.cmd.Stderr = e.stderr
	var err error
	if e.stdin, err = e.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := e.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("start erl: %v", err)
	}
	go func() {
		defer close(e.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			e.lines <- sc.Text()
		}
		_ = e.cmd.Wait()
	}()
	t.Cleanup(func() { e.stop(t) })
	if got := e.read(t, 20*time.Second); got != "ready "+mode {
		t.Fatalf("erl did not start: %q\n%s", got, e.stderr.String())
	}
	return e
}

func (e *erlNode) read(t *testing.T, d time.Duration) string {
	t.Helper()
	select {
	case l := <-e.lines:
		return l
	case <-e.done:
		t.Fatalf("erl exited\nstderr:\n%s", e.stderr.String())
	case <-time.After(d):
		t.Fatalf("no answer from erl within %v\nstderr:\n%s", d, e.stderr.String())
	}
	return ""
}

func (e *erlNode) ask(t *testing.T, cmd string) string {
	t.Helper()
	if _, err := io.WriteString(e.stdin, cmd+"\n"); err != nil {
		t.Fatalf("write to erl: %v", err)
	}
	return e.read(t, 10*time.Second)
}

func (e *erlNode) expect(t *testing.T, cmd, want string) {
	t.Helper()
	if got := e.ask(t, cmd); got != want {
		t.Fatalf("%s\n got  %q\n want %q", cmd, got, want)
	}
}

func (e *erlNode) quit(t *testing.T) {
	t.Helper()
	_, _ = io.WriteString(e.stdin, "{quit}.\n")
	select {
	case <-e.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("erl did not quit\nstderr:\n%s", e.stderr.String())
	}
}

func (e *erlNode) stop(t *testing.T) {
	_ = e.stdin.Close()
	select {
	case <-e.done:
		return
	case <-time.After(5 * time.Second):
	}
	_ = e.cmd.Process.Kill()
	<-e.done
}
