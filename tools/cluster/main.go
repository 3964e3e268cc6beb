// Command cluster runs N Tavern nodes on this machine, sharing one
// PostgreSQL database (discovery postgres), and prints their URLs; Ctrl-C
// stops them all. It is what `make cluster` runs.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/tavernhq/tavern/internal/sysconfig"
)

func main() {
	n := flag.Int("n", 2, "number of nodes")
	dsn := flag.String("dsn", "postgres://postgres@127.0.0.1:5432/tavern?sslmode=disable", "the shared database (created if missing)")
	bin := flag.String("bin", "bin/tavern-server", "the server binary")
	dir := flag.String("dir", "data/cluster", "where the nodes' sys.config files go")
	basePort := flag.Int("port", 8080, "the first node's HTTP port; the others follow")
	flag.Parse()
	if err := run(*n, *dsn, *bin, *dir, *basePort); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

func run(n int, dsn, bin, dir string, basePort int) error {
	if err := ensureDatabase(dsn); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	cookie, err := randomCookie()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var procs []*exec.Cmd
	for i := 0; i < n; i++ {
		cfg := sysconfig.Default()
		cfg.Node.Name = fmt.Sprintf("tavern-%d@127.0.0.1", i+1)
		cfg.Node.Cookie = sysconfig.Secret(cookie)
		cfg.Node.DistListen = fmt.Sprintf("127.0.0.1:%d", 25100+i)
		cfg.Gateway.Listen = fmt.Sprintf("127.0.0.1:%d", basePort+i)
		cfg.Store.DSN = dsn
		cfg.Cluster.Discovery = "postgres"
		path := filepath.Join(dir, fmt.Sprintf("node%d.config", i+1))
		if err := os.WriteFile(path, []byte(sysconfig.Render(&cfg)), 0o600); err != nil {
			return err
		}
		for _, addr := range []string{cfg.Gateway.Listen, cfg.Node.DistListen} {
			if l, err := net.Listen("tcp", addr); err != nil {
				return fmt.Errorf("%s is taken (another cluster running?): %w", addr, err)
			} else {
				l.Close()
			}
		}
		cmd := exec.CommandContext(ctx, bin, "-config", path)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = 20 * time.Second
		if err := cmd.Start(); err != nil {
			return err
		}
		procs = append(procs, cmd)
		fmt.Printf("node %s: http://%s/  (config %s)\n", cfg.Node.Name, cfg.Gateway.Listen, path)
	}
	fmt.Printf("attach a console: bin/tavern-console -config %s\nCtrl-C stops the cluster.\n", filepath.Join(dir, "node1.config"))
	var first error
	for _, p := range procs {
		if err := p.Wait(); err != nil && first == nil && ctx.Err() == nil {
			first = err
		}
	}
	return first
}

// ensureDatabase creates the database of dsn if it does not exist.
func ensureDatabase(dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil {
		return err
	}
	name := strings.TrimPrefix(u.Path, "/")
	admin := *u
	admin.Path = "/postgres"
	db, err := sql.Open("pgx", admin.String())
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("postgres at %s: %w", u.Host, err)
	}
	if !exists {
		if _, err := db.ExecContext(ctx, `CREATE DATABASE "`+strings.ReplaceAll(name, `"`, `""`)+`"`); err != nil {
			return err
		}
	}
	return nil
}

func randomCookie() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", errors.New("no randomness for the cookie")
	}
	return fmt.Sprintf("%x", b), nil
}
