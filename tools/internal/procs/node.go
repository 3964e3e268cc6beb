// Package procs runs Tavern server nodes and other programs as OS
// processes for the load, chaos and benchmark tools: start with a
// sys.config, wait for /readyz, signal (SIGKILL, SIGSTOP, SIGCONT),
// restart with the same configuration; and the small helpers they share
// (free ports, fresh Postgres databases, /metrics and memory readings).
package procs

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/tavernhq/tavern/internal/sysconfig"
)

// Node is one tavern-server OS process, restartable with the same
// configuration (name, ports, database).
type Node struct {
	Name    string
	Cfg     sysconfig.Config
	Path    string // its sys.config
	LogPath string
	Bin     string
	Env     []string // added to the environment of the process

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	paused bool
}

// WS is the node's WebSocket URL.
func (n *Node) WS() string { return "ws://" + n.Cfg.Gateway.Listen + "/ws" }

// Start runs the node and waits until its /readyz answers 200.
func (n *Node) Start(ctx context.Context, readyWithin time.Duration) error {
	n.mu.Lock()
	if n.cmd != nil {
		n.mu.Unlock()
		return fmt.Errorf("%s already runs", n.Name)
	}
	logf, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		n.mu.Unlock()
		return err
	}
	fmt.Fprintf(logf, "=== %s start %s\n", time.Now().Format(time.RFC3339Nano), n.Name)
	cmd := exec.Command(n.Bin, "-config", n.Path)
	cmd.Env = append(os.Environ(), n.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		n.mu.Unlock()
		return fmt.Errorf("start %s: %w", n.Name, err)
	}
	exited := make(chan struct{})
	n.cmd, n.exited, n.paused = cmd, exited, false
	n.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	return n.waitReady(ctx, readyWithin, exited)
}

func (n *Node) waitReady(ctx context.Context, within time.Duration, exited chan struct{}) error {
	deadline := time.Now().Add(within)
	client := &http.Client{Timeout: time.Second}
	scheme := "http://"
	if n.Cfg.Gateway.TLS != nil {
		// Only the readiness probe skips verification; the load verifies.
		scheme = "https://"
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec
	}
	for {
		resp, err := client.Get(scheme + n.Cfg.Gateway.Listen + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited while starting (see %s)", n.Name, n.LogPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %v (see %s)", n.Name, within, n.LogPath)
		}
	}
}

// Signal sends sig to the running node.
func (n *Node) Signal(sig syscall.Signal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return fmt.Errorf("%s is not running", n.Name)
	}
	switch sig {
	case syscall.SIGSTOP:
		n.paused = true
	case syscall.SIGCONT:
		n.paused = false
	}
	return n.cmd.Process.Signal(sig)
}

// Kill sends SIGKILL and waits for the process to be gone.
func (n *Node) Kill() {
	n.stopWith(syscall.SIGKILL, 10*time.Second)
}

// Stop asks the node to stop (SIGTERM), and kills it after grace.
func (n *Node) Stop(grace time.Duration) {
	n.stopWith(syscall.SIGTERM, grace)
}

func (n *Node) stopWith(sig syscall.Signal, grace time.Duration) {
	n.mu.Lock()
	cmd, exited, paused := n.cmd, n.exited, n.paused
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	if paused {
		_ = cmd.Process.Signal(syscall.SIGCONT)
	}
	select {
	case <-exited:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-exited
	}
	n.mu.Lock()
	n.cmd, n.paused = nil, false
	n.mu.Unlock()
}

// Running reports whether the process runs (paused counts).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

// PID is the node's process id, 0 if it does not run.
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Paused reports whether the node was stopped with SIGSTOP.
func (n *Node) Paused() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.paused
}

// HTTP is the node's gateway address, host:port.
func (n *Node) HTTP() string { return n.Cfg.Gateway.Listen }

// FreeAddr is a free 127.0.0.1 port.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// RandomHex is n random bytes in hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// CreateDatabase makes a fresh database on the server of admin and
// returns its DSN and a function that drops it.
func CreateDatabase(ctx context.Context, admin string) (string, func(), error) {
	db, err := sql.Open("pgx", admin)
	if err != nil {
		return "", nil, err
	}
	name := "tavern_chaos_" + RandomHex(5)
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		db.Close()
		return "", nil, fmt.Errorf("create database: %w", err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		db.Close()
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		db.Close()
	}
	return u.String(), drop, nil
}
