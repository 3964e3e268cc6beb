package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tavernhq/tavern/internal/sysconfig"
	"github.com/tavernhq/tavern/internal/testutil"
)

// server is a tavern-server running as its own OS process, as in
// production: the console attaches to it through its EPMD and cookie.
type server struct {
	t      *testing.T
	Cfg    sysconfig.Config
	Path   string // its sys.config, mode 0600
	cmd    *exec.Cmd
	logs   testutil.SyncBuffer
	exited chan struct{}
	code   int
}

// testConfig is a node config on random ports, its own EPMD and a fresh
// SQLite database.
func testConfig(t *testing.T, name string) sysconfig.Config {
	cfg := testutil.NodeConfig(t, name, "sqlite:"+filepath.Join(t.TempDir(), "tavern.db"), testutil.FreePort(t))
	cfg.Node.Cookie = sysconfig.Secret("sekrit-" + name + "-4f1c9a")
	return cfg
}

// startServer writes cfg to a sys.config and runs a server on it until
// it says it serves; it is killed when the test ends.
func startServer(t *testing.T, cfg sysconfig.Config) *server {
	t.Helper()
	s := &server{t: t, Cfg: cfg, exited: make(chan struct{})}
	s.Path = filepath.Join(t.TempDir(), "sys.config")
	if err := os.WriteFile(s.Path, []byte(sysconfig.Render(&cfg)), 0o600); err != nil {
		t.Fatal(err)
	}
	return s.run(testutil.Binary(t, "./nodes/server"))
}

// startServerAt runs a server on an existing sys.config.
func startServerAt(t *testing.T, path string) *server {
	t.Helper()
	cfg, err := sysconfig.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, Cfg: *cfg, Path: path, exited: make(chan struct{})}
	return s.run(testutil.Binary(t, "./nodes/server"))
}

func (s *server) run(bin string) *server {
	t := s.t
	t.Helper()
	s.cmd = exec.Command(bin, "-config", s.Path)
	s.cmd.Stderr = &s.logs
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	serving := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			s.logs.Write(append(sc.Bytes(), '\n'))
			if strings.Contains(sc.Text(), " serving ") {
				once.Do(func() { close(serving) })
			}
		}
	}()
	go func() {
		_ = s.cmd.Wait()
		s.code = s.cmd.ProcessState.ExitCode()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Signal(syscall.SIGKILL)
			<-s.exited
		}
		if t.Failed() {
			t.Logf("logs of %s:\n%s", s.Cfg.Node.Name, s.logs.String())
		}
	})
	select {
	case <-serving:
	case <-s.exited:
		t.Fatalf("server exited with %d:\n%s", s.code, s.logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("server not serving after 30s:\n%s", s.logs.String())
	}
	return s
}

// waitExit waits for the server to exit on its own and returns its code.
func (s *server) waitExit(d time.Duration) int {
	s.t.Helper()
	select {
	case <-s.exited:
		return s.code
	case <-time.After(d):
		s.t.Fatalf("%s still running after %v", s.Cfg.Node.Name, d)
	}
	return -1
}

// result is one run of the console binary.
type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// runConsole runs the tavern-console binary and returns what it wrote.
func runConsole(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testutil.Binary(t, "./nodes/console"), args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		} else {
			t.Fatalf("run console: %v", err)
		}
	}
	return r
}
