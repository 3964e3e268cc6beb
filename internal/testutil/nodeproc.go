package testutil

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tavernhq/tavern/internal/sysconfig"
)

var build struct {
	once sync.Once
	dir  string
	err  error
	out  []byte
}

// Binary builds one of the project's commands (e.g. "./nodes/server")
// once per test binary and returns its path.
func Binary(t testing.TB, pkg string) string {
	t.Helper()
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "tavern-bin-")
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	bin := filepath.Join(build.dir, filepath.Base(pkg))
	binLock.Lock()
	defer binLock.Unlock()
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	root := moduleRoot(t)
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

var binLock sync.Mutex

func moduleRoot(t testing.TB) string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// NodeProc is a Tavern server node running as its own OS process.
type NodeProc struct {
	t      testing.TB
	bin    string
	Config sysconfig.Config
	Path   string // its sys.config
	HTTP   string // host:port of its gateway
	cmd    *exec.Cmd
	logs   *SyncBuffer
	exited chan struct{}
	code   int
}

// SyncBuffer is a bytes.Buffer that several goroutines may write (a
// process's stdout and stderr) while a test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// NodeConfig is a config for a test node: random ports, its own name,
// the given dsn; epmd is the EPMD port of the nodes that must find each
// other (0 for none).
func NodeConfig(t testing.TB, name, dsn string, epmd int) sysconfig.Config {
	cfg := sysconfig.Default()
	cfg.Node.Name = name + "@127.0.0.1"
	cfg.Node.Cookie = sysconfig.Secret("test-cookie-" + name)
	cfg.Node.DistListen = FreeAddr(t)
	cfg.Node.EPMDPort = epmd
	cfg.Gateway.Listen = FreeAddr(t)
	// Every test client comes from 127.0.0.1: the per-address caps would
	// count them all as one client (security tests set their own).
	cfg.Gateway.MaxConnsPerIP = cfg.Gateway.MaxConns
	cfg.Gateway.ConnRatePerIP = 10000
	cfg.Store.DSN = dsn
	return cfg
}

// StartNode writes cfg to a sys.config (mode 0600) and starts a node
// process on it; it returns once the node's /readyz answers 200. The node
// is killed when the test ends.
func StartNode(t testing.TB, cfg sysconfig.Config) *NodeProc {
	t.Helper()
	n := &NodeProc{t: t, bin: Binary(t, "./nodes/server"), Config: cfg, HTTP: cfg.Gateway.Listen}
	n.Path = filepath.Join(t.TempDir(), "sys.config")
	if err := os.WriteFile(n.Path, []byte(sysconfig.Render(&cfg)), 0o600); err != nil {
		t.Fatal(err)
	}
	// Registered before the start: a node that fails to become ready is
	// still killed.
	t.Cleanup(func() {
		if n.cmd != nil && n.cmd.Process != nil && n.running() {
			_ = n.cmd.Process.Kill()
			<-n.exited
		}
		if t.Failed() && n.logs != nil {
			t.Logf("logs of %s:\n%s", cfg.Node.Name, n.logs.String())
		}
	})
	n.start()
	return n
}

func (n *NodeProc) start() {
	t := n.t
	t.Helper()
	n.logs = &SyncBuffer{}
	n.exited = make(chan struct{})
	n.cmd = exec.Command(n.bin, "-config", n.Path)
	n.cmd.Stderr = n.logs
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		close(n.exited)
		t.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		close(n.exited)
		t.Fatalf("start node: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintln(n.logs, sc.Text())
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		err := n.cmd.Wait()
		n.code = n.cmd.ProcessState.ExitCode()
		_ = err
		close(n.exited)
	}()
	client, url := http.DefaultClient, "http://"+n.HTTP+"/readyz"
	if n.Config.Gateway.TLS != nil {
		// Readiness only: the test's own clients check the certificate.
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec
		defer tr.CloseIdleConnections()
		client, url = &http.Client{Transport: tr}, "https://"+n.HTTP+"/readyz"
	}
	Eventually(t, 30*time.Second, func() bool {
		select {
		case <-n.exited:
			t.Fatalf("node %s exited with %d:\n%s", n.Config.Node.Name, n.code, n.logs.String())
		default:
		}
		resp, err := client.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "node %s ready", n.Config.Node.Name)
}

func (n *NodeProc) running() bool {
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// Restart starts the node again on the same config after it stopped.
func (n *NodeProc) Restart() {
	n.t.Helper()
	if n.running() {
		n.t.Fatal("restart of a running node")
	}
	n.start()
}

// Kill sends SIGKILL and waits for the process to end.
func (n *NodeProc) Kill() {
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

// Stop sends SIGTERM and returns the exit code.
func (n *NodeProc) Stop() int {
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(30 * time.Second):
		n.t.Fatalf("node %s did not stop within 30s", n.Config.Node.Name)
	}
	return n.code
}

// Pause and Resume send SIGSTOP and SIGCONT.
func (n *NodeProc) Pause()  { _ = n.cmd.Process.Signal(syscall.SIGSTOP) }
func (n *NodeProc) Resume() { _ = n.cmd.Process.Signal(syscall.SIGCONT) }

// Pid is the node's process id (0 before it started).
func (n *NodeProc) Pid() int {
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Signal sends sig to the node's process.
func (n *NodeProc) Signal(sig os.Signal) { _ = n.cmd.Process.Signal(sig) }

// Wait waits up to d for the process to exit and returns its exit code
// (-1 if killed by a signal).
func (n *NodeProc) Wait(d time.Duration) int {
	n.t.Helper()
	select {
	case <-n.exited:
	case <-time.After(d):
		n.t.Fatalf("node %s still running after %v", n.Config.Node.Name, d)
	}
	return n.code
}

// Logs returns what the node wrote so far.
func (n *NodeProc) Logs() string { return n.logs.String() }

// WS is the node's WebSocket URL.
func (n *NodeProc) WS() string { return "ws://" + n.HTTP + "/ws" }
