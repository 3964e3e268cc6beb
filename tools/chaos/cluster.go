package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/tavernhq/tavern/internal/sysconfig"
)

// node is one tavern-server OS process of the cluster, restartable with
// the same configuration (name, ports, database).
type node struct {
	name    string
	cfg     sysconfig.Config
	path    string // its sys.config
	logPath string
	bin     string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	paused bool
}

// WS is the node's WebSocket URL.
func (n *node) WS() string { return "ws://" + n.cfg.Gateway.Listen + "/ws" }

// start runs the node and waits until its /readyz answers 200.
func (n *node) start(ctx context.Context, readyWithin time.Duration) error {
	n.mu.Lock()
	if n.cmd != nil {
		n.mu.Unlock()
		return fmt.Errorf("%s already runs", n.name)
	}
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		n.mu.Unlock()
		return err
	}
	fmt.Fprintf(logf, "=== %s start %s\n", time.Now().Format(time.RFC3339Nano), n.name)
	cmd := exec.Command(n.bin, "-config", n.path)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		n.mu.Unlock()
		return fmt.Errorf("start %s: %w", n.name, err)
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

func (n *node) waitReady(ctx context.Context, within time.Duration, exited chan struct{}) error {
	deadline := time.Now().Add(within)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get("http://" + n.cfg.Gateway.Listen + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited while starting (see %s)", n.name, n.logPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %v (see %s)", n.name, within, n.logPath)
		}
	}
}

// signal sends sig to the running node.
func (n *node) signal(sig syscall.Signal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return fmt.Errorf("%s is not running", n.name)
	}
	switch sig {
	case syscall.SIGSTOP:
		n.paused = true
	case syscall.SIGCONT:
		n.paused = false
	}
	return n.cmd.Process.Signal(sig)
}

// kill sends SIGKILL and waits for the process to be gone.
func (n *node) kill() {
	n.stopWith(syscall.SIGKILL, 10*time.Second)
}

// stop asks the node to stop (SIGTERM), and kills it after grace.
func (n *node) stop(grace time.Duration) {
	n.stopWith(syscall.SIGTERM, grace)
}

func (n *node) stopWith(sig syscall.Signal, grace time.Duration) {
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

func (n *node) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

// pid is the node's process id, 0 if it does not run.
func (n *node) pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// cluster is the nodes of a chaos run and the database they share
// (through a proxy that can cut them off).
type cluster struct {
	nodes   []*node
	dsn     string // the database, directly
	proxy   *proxy
	console string // tavern-console binary, "" if there is none
	dir     string
}

// clusterOptions shape the cluster.
type clusterOptions struct {
	Nodes       int
	DSN         string // a fresh database
	ServerBin   string
	ConsoleBin  string
	Dir         string
	HeartbeatMs int
	DownAfterMs int
}

func newCluster(ctx context.Context, o clusterOptions) (*cluster, error) {
	u, err := url.Parse(o.DSN)
	if err != nil {
		return nil, fmt.Errorf("dsn: %w", err)
	}
	px, err := newProxy(u.Host)
	if err != nil {
		return nil, err
	}
	viaProxy := *u
	viaProxy.Host = px.Addr()
	cookie := randomHex(16)
	c := &cluster{dsn: o.DSN, proxy: px, console: o.ConsoleBin, dir: o.Dir}
	for i := range o.Nodes {
		cfg := sysconfig.Default()
		cfg.Node.Name = fmt.Sprintf("chaos%d-%s@127.0.0.1", i+1, randomHex(3))
		cfg.Node.Cookie = sysconfig.Secret(cookie)
		cfg.Node.EPMDPort = 0 // no EPMD: peers are found through the nodes table
		cfg.Node.LogLevel = "info"
		if cfg.Node.DistListen, err = freeAddr(); err != nil {
			return nil, err
		}
		if cfg.Gateway.Listen, err = freeAddr(); err != nil {
			return nil, err
		}
		cfg.Gateway.MaxConnsPerIP = cfg.Gateway.MaxConns
		cfg.Gateway.ConnRatePerIP = 10000
		cfg.Gateway.OpsPerSec = 1000
		cfg.Gateway.OpsBurst = 1000
		cfg.Store.DSN = viaProxy.String()
		cfg.Cluster.Discovery = "postgres"
		cfg.Cluster.HeartbeatMs = o.HeartbeatMs
		cfg.Cluster.DownAfterMs = o.DownAfterMs
		n := &node{name: cfg.Node.Name, cfg: cfg, bin: o.ServerBin,
			path:    filepath.Join(o.Dir, fmt.Sprintf("node%d.config", i+1)),
			logPath: filepath.Join(o.Dir, fmt.Sprintf("node%d.log", i+1))}
		if err := os.WriteFile(n.path, []byte(sysconfig.Render(&cfg)), 0o600); err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, n)
	}
	// Start them together: each waits for the others to be ready.
	errs := make(chan error, len(c.nodes))
	for _, n := range c.nodes {
		go func() { errs <- n.start(ctx, 60*time.Second) }()
	}
	var all []error
	for range c.nodes {
		all = append(all, <-errs)
	}
	if err := errors.Join(all...); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// URLs are the nodes' WebSocket URLs.
func (c *cluster) URLs() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.WS())
	}
	return out
}

func (c *cluster) stop() {
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.stop(15 * time.Second)
		}()
	}
	wg.Wait()
	c.proxy.Close()
}

// terminateBackends ends every server process of the nodes' database
// (pg_terminate_backend): every pooled connection breaks at once.
func (c *cluster) terminateBackends(ctx context.Context) (int, error) {
	db, err := sql.Open("pgx", c.dsn)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int
	err = db.QueryRowContext(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n)
	return n, err
}

// consoleKill crashes board's actor through the console of whichever
// node has it active; it returns the node's name.
func (c *cluster) consoleKill(ctx context.Context, board string) (string, error) {
	if c.console == "" {
		return "", errNoConsole
	}
	var errs []error
	for _, n := range c.nodes {
		if !n.running() {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		cmd := exec.CommandContext(cctx, c.console, "-config", n.path, "-timeout", "3s", "kill", board)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		cancel()
		if err == nil {
			return n.name, nil
		}
		errs = append(errs, fmt.Errorf("%s: %v: %s", n.name, err, strings.TrimSpace(out.String())))
	}
	return "", fmt.Errorf("no node crashed board %s: %w", board, errors.Join(errs...))
}

var errNoConsole = errors.New("no tavern-console binary")

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// createDatabase makes a fresh database on the server of admin and
// returns its DSN and a function that drops it.
func createDatabase(ctx context.Context, admin string) (string, func(), error) {
	db, err := sql.Open("pgx", admin)
	if err != nil {
		return "", nil, err
	}
	name := "tavern_chaos_" + randomHex(5)
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
