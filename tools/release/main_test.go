package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tavernhq/tavern/internal/erlterm/erltest"
	"github.com/tavernhq/tavern/internal/sysconfig"
	"github.com/tavernhq/tavern/internal/testutil"
)

var nameRE = regexp.MustCompile(`^tavern-[0-9a-f]{8}@`)

// The repository's sys.config, as `make release` reads it.
const devConfig = "../../sys.config"

// A release gets a random name and a random cookie of at least 128 bits,
// mode 0600; everything else is the source's; two releases never share
// an identity; the output parses back.
func TestReleaseIdentity(t *testing.T) {
	dir := t.TempDir()
	src, err := sysconfig.Parse(devConfig, mustRead(t, devConfig), nil)
	if err != nil {
		t.Fatal(err)
	}
	names, cookies := map[string]bool{}, map[string]bool{}
	for i := range 50 {
		out := filepath.Join(dir, fmt.Sprint("rel", i), "sys.config")
		name, err := Write(devConfig, out, "db1.example")
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(out)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("mode %v %v", st.Mode(), err)
		}
		cfg, err := sysconfig.Load(out)
		if err != nil {
			t.Fatalf("the node cannot read its release config: %v", err)
		}
		cookie := cfg.Node.Cookie.Reveal()
		if cfg.Node.Name != name || !nameRE.MatchString(name) || !strings.HasSuffix(name, "@db1.example") {
			t.Fatalf("name %q (%q)", cfg.Node.Name, name)
		}
		if len(cookie) < 32 || !regexp.MustCompile(`^[0-9a-f]+$`).MatchString(cookie) {
			t.Fatalf("cookie of %d characters", len(cookie))
		}
		if names[name] || cookies[cookie] {
			t.Fatalf("release %d repeats an identity", i)
		}
		names[name], cookies[cookie] = true, true
		if cookie == src.Node.Cookie.Reveal() {
			t.Fatal("the release kept the source's cookie")
		}
		// The development config's exemption from the mode check is
		// dropped; everything else but the identity is the source's.
		if !src.Node.AllowInsecureConfig || cfg.Node.AllowInsecureConfig {
			t.Fatalf("allow_insecure_config: source %v, release %v; want true, false", src.Node.AllowInsecureConfig, cfg.Node.AllowInsecureConfig)
		}
		cfg.Node.Name, cfg.Node.Cookie, cfg.Path = src.Node.Name, src.Node.Cookie, src.Path
		cfg.Node.AllowInsecureConfig = src.Node.AllowInsecureConfig
		if sysconfig.Render(cfg) != sysconfig.Render(src) {
			t.Fatalf("the release changed more than the identity:\n%s\nvs\n%s", sysconfig.Render(cfg), sysconfig.Render(src))
		}
	}
	// A bad host is refused, and nothing is written.
	out := filepath.Join(dir, "bad", "sys.config")
	if _, err := Write(devConfig, out, "not a host"); err == nil {
		t.Fatal("a bad host was accepted")
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("a bad release was written: %v", err)
	}
	// The command prints the name, never the cookie.
	var stdout, stderr bytes.Buffer
	out = filepath.Join(dir, "cmd", "sys.config")
	if code := run([]string{"-from", devConfig, "-out", out, "-host", "127.0.0.1"}, &stdout, &stderr); code != 0 {
		t.Fatalf("release: %d %s", code, stderr.String())
	}
	cfg, err := sysconfig.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), cfg.Node.Name) || strings.Contains(stdout.String()+stderr.String(), cfg.Node.Cookie.Reveal()) {
		t.Fatalf("release output: %s", stdout.String())
	}
	if code := run([]string{"-from", devConfig}, &stdout, &stderr); code != 2 {
		t.Fatalf("without -host: %d", code)
	}
}

// The environment of the machine that builds a release does not leak
// into it.
func TestReleaseIgnoresEnvironment(t *testing.T) {
	t.Setenv("TAVERN_COOKIE", "from-the-build-machine")
	t.Setenv("TAVERN_DSN", "postgres://u:p@build/db")
	out := filepath.Join(t.TempDir(), "sys.config")
	if _, err := Write(devConfig, out, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	text := string(mustRead(t, out))
	if strings.Contains(text, "from-the-build-machine") || strings.Contains(text, "build/db") {
		t.Fatal("the environment leaked into the release")
	}
}

// A real erl reads the release with file:consult/1; a server started on
// it runs under that identity; the console attaches with it; and erl,
// with the cookie it read from the file, pings the node: pong.
func TestReleaseRunsAndAttaches(t *testing.T) {
	dir := t.TempDir()
	// The source: the development config on free ports and a fresh
	// database, so the test disturbs nothing.
	src, err := sysconfig.Parse(devConfig, mustRead(t, devConfig), nil)
	if err != nil {
		t.Fatal(err)
	}
	epmd := testutil.FreePort(t)
	src.Node.DistListen = testutil.FreeAddr(t)
	src.Node.EPMDPort = epmd
	src.Gateway.Listen = testutil.FreeAddr(t)
	src.Store.DSN = "sqlite:" + filepath.Join(dir, "tavern.db")
	srcPath := filepath.Join(dir, "src.config")
	if err := os.WriteFile(srcPath, []byte(sysconfig.Render(src)), 0o600); err != nil {
		t.Fatal(err)
	}
	rel := filepath.Join(dir, "rel", "sys.config")
	name, err := Write(srcPath, rel, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}

	res := erltest.Consult(t, rel)
	if !res[0].OK {
		t.Fatalf("erl cannot read the release: %s", res[0].Reason)
	}

	srv := exec.Command(testutil.Binary(t, "./nodes/server"), "-config", rel)
	var logs bytes.Buffer
	srv.Stdout, srv.Stderr = &logs, &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = srv.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = srv.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("server logs:\n%s", logs.String())
		}
	})
	consoleBin := testutil.Binary(t, "./nodes/console")
	var out []byte
	testutil.Eventually(t, 30*time.Second, func() bool {
		select {
		case <-exited:
			t.Fatalf("server exited:\n%s", logs.String())
		default:
		}
		out, err = exec.Command(consoleBin, "-config", rel, "-timeout", "2s", "info").Output()
		return err == nil
	}, "console attached to the release node")
	if !strings.Contains(string(out), name) {
		t.Fatalf("info: %s", out)
	}

	erl := erltest.Erl(t)
	script := fmt.Sprintf(`{ok, [Cfg]} = file:consult(%q),
{node, Node} = lists:keyfind(node, 1, Cfg),
{name, Name} = lists:keyfind(name, 1, Node),
{cookie, Cookie} = lists:keyfind(cookie, 1, Node),
erlang:set_cookie(list_to_atom(Cookie)),
N = list_to_atom(Name),
io:format("~s ~p~n", [Name, net_adm:ping(N)]),
{ok, Info} = gen_server:call({tavern_console, N}, info),
io:format("info ~p~n", [maps:get(node, Info)]),
halt().`, rel)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, erl, "-name", "relcheck@127.0.0.1", "-hidden", "-noshell", "-eval", script)
	cmd.Env = append(os.Environ(), fmt.Sprintf("ERL_EPMD_PORT=%d", epmd))
	eout, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("erl: %v\n%s", err, eout)
	}
	if !strings.Contains(string(eout), name+" pong") || !strings.Contains(string(eout), "info '"+name+"'") {
		t.Fatalf("erl with the release's cookie: %s", eout)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
