package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/tavernhq/tavern/internal/sysconfig"
	"github.com/tavernhq/tavern/internal/tcpproxy"
	"github.com/tavernhq/tavern/tools/internal/procs"
)

// cluster is the nodes of a chaos run and the database they share
// (through a proxy that can cut them off).
type cluster struct {
	nodes   []*procs.Node
	dsn     string // the database, directly
	proxy   *tcpproxy.Proxy
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
	px, err := tcpproxy.New(u.Host)
	if err != nil {
		return nil, err
	}
	viaProxy := *u
	viaProxy.Host = px.Addr()
	cookie := procs.RandomHex(16)
	c := &cluster{dsn: o.DSN, proxy: px, console: o.ConsoleBin, dir: o.Dir}
	for i := range o.Nodes {
		cfg := sysconfig.Default()
		cfg.Node.Name = fmt.Sprintf("chaos%d-%s@127.0.0.1", i+1, procs.RandomHex(3))
		cfg.Node.Cookie = sysconfig.Secret(cookie)
		cfg.Node.EPMDPort = 0 // no EPMD: peers are found through the nodes table
		cfg.Node.LogLevel = "info"
		if cfg.Node.DistListen, err = procs.FreeAddr(); err != nil {
			return nil, err
		}
		if cfg.Gateway.Listen, err = procs.FreeAddr(); err != nil {
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
		n := &procs.Node{Name: cfg.Node.Name, Cfg: cfg, Bin: o.ServerBin,
			Path:    filepath.Join(o.Dir, fmt.Sprintf("node%d.config", i+1)),
			LogPath: filepath.Join(o.Dir, fmt.Sprintf("node%d.log", i+1))}
		if err := os.WriteFile(n.Path, []byte(sysconfig.Render(&cfg)), 0o600); err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, n)
	}
	// The first node alone (it makes the schema: migrations of several
	// nodes at once on a fresh database collide), then the others together.
	if err := c.nodes[0].Start(ctx, 60*time.Second); err != nil {
		c.stop()
		return nil, err
	}
	errs := make(chan error, len(c.nodes))
	for _, n := range c.nodes[1:] {
		go func() { errs <- n.Start(ctx, 60*time.Second) }()
	}
	var all []error
	for range c.nodes[1:] {
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
			n.Stop(15 * time.Second)
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
		if !n.Running() {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		cmd := exec.CommandContext(cctx, c.console, "-config", n.Path, "-timeout", "3s", "kill", board)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		cancel()
		if err == nil {
			return n.Name, nil
		}
		errs = append(errs, fmt.Errorf("%s: %v: %s", n.Name, err, strings.TrimSpace(out.String())))
	}
	return "", fmt.Errorf("no node crashed board %s: %w", board, errors.Join(errs...))
}

var errNoConsole = errors.New("no tavern-console binary")
