package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tavernhq/tavern/apps/gateway/gatewaytest"
	"github.com/tavernhq/tavern/internal/testutil"
)

// A real Erlang node (OTP 25) with OTP's pg and an erlbus-style bus
// server subscribes to a board's topic on a running Tavern node and gets
// its events as an erlbus subscriber would: {tavern_ev, Board, Seq, Ev}.
func TestErlangSubscriberGetsBoardEvents(t *testing.T) {
	for _, tool := range []string{"erl", "erlc"} {
		if _, err := exec.LookPath(tool); err != nil {
			if testutil.InCI() {
				t.Fatalf("%s is required under CI: %v", tool, err)
			}
			t.Skipf("%s not found", tool)
		}
	}
	beams := t.TempDir()
	if out, err := exec.Command("erlc", "-o", beams, filepath.Join("..", "..", "apps", "bus", "testdata", "tbus.erl")).CombinedOutput(); err != nil {
		t.Fatalf("erlc: %v\n%s", err, out)
	}
	epmd := testutil.FreePort(t)
	cfg := testutil.NodeConfig(t, "erlsub", "sqlite:"+t.TempDir()+"/t.db", epmd)
	n := testutil.StartNode(t, cfg)

	name := fmt.Sprintf("e%d@127.0.0.1", rand.Uint32())
	cmd := exec.Command("erl", "-name", name, "-setcookie", cfg.Node.Cookie.Reveal(), "-noshell",
		"-start_epmd", "false", "-pa", beams, "-eval", "tbus:main(emul)")
	cmd.Env = append(os.Environ(), fmt.Sprintf("ERL_EPMD_PORT=%d", epmd))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	ask := func(cmd string) string {
		t.Helper()
		if cmd != "" {
			fmt.Fprintln(stdin, cmd)
		}
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("erl exited")
			}
			return l
		case <-time.After(20 * time.Second):
			t.Fatalf("erl: no answer to %s", cmd)
		}
		return ""
	}
	if got := ask(""); got != "ready emul" {
		t.Fatalf("erl: %q", got)
	}
	if got := ask("{connect,'" + cfg.Node.Name + "'}."); got != "connect true" {
		t.Fatalf("connect: %q", got)
	}
	testutil.Eventually(t, 15*time.Second, func() bool {
		return strings.Contains(ask("{members}."), cfg.Node.Name)
	}, "Erlang's pg sees the Tavern node's bus server")
	if got := ask(`{sub, <<"board:tavern-1">>}.`); got != "sub ok" {
		t.Fatalf("sub: %q", got)
	}
	// The Tavern side learns of the Erlang bus server through pg too.
	c := gatewaytest.Dial(t, n.WS())
	c.Hello("alice")
	c.JoinFull("tavern-1")
	var got string
	testutil.Eventually(t, 15*time.Second, func() bool {
		c.Apply("tavern-1", map[string]any{"kind": "chat", "text": "hi erlang"})
		got = ask("{recv, 500}.")
		return got != "recv timeout"
	}, "an event reaches the Erlang subscriber")
	// {tavern_ev, <<"tavern-1">>, Seq, <<EvJSON>>}, binaries written by ~w
	m := regexp.MustCompile(`^recv \{tavern_ev,<<([0-9,]+)>>,([0-9]+),<<([0-9,]+)>>\}$`).FindStringSubmatch(got)
	if m == nil || erlString(m[1]) != "tavern-1" || m[2] == "0" || !strings.Contains(erlString(m[3]), `"t":"ev"`) {
		t.Fatalf("erlang got %q", got)
	}
}

// erlString decodes a binary as ~w writes it ("104,105").
func erlString(bytes string) string {
	var b strings.Builder
	for _, n := range strings.Split(bytes, ",") {
		var c int
		fmt.Sscan(n, &c)
		b.WriteByte(byte(c))
	}
	return b.String()
}
