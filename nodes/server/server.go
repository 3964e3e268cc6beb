package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"
	"github.com/ergo-services/ergo/node"

	"github.com/tavernhq/tavern/apps/board"
	"github.com/tavernhq/tavern/apps/bus"
	"github.com/tavernhq/tavern/apps/cluster"
	"github.com/tavernhq/tavern/apps/console"
	"github.com/tavernhq/tavern/apps/gateway"
	"github.com/tavernhq/tavern/apps/store"
	"github.com/tavernhq/tavern/internal/ergonode"
	"github.com/tavernhq/tavern/internal/sysconfig"
)

// Server is a running Tavern node.
type Server struct {
	cfg     *sysconfig.Config
	log     *slog.Logger
	node    node.Node
	store   *store.Store
	cluster *cluster.App
	gateway *gateway.App
	// drained is closed when a console drain has emptied the node.
	drained     chan struct{}
	drainedOnce sync.Once
}

// Start opens the store (applying migrations), then starts the Ergo node
// with the applications in dependency order.
func Start(ctx context.Context, cfg *sysconfig.Config, log *slog.Logger, level *slog.LevelVar) (*Server, error) {
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := store.Open(openCtx, cfg.Store, log)
	if err != nil {
		return nil, err
	}
	deps := board.NewDeps(st, cfg, log)
	placement := cluster.NewPlacement(cfg.Node.Name)
	deps.Placement = placement
	deps.Publish = erlangSubscribers(placement)
	n, err := ergonode.Start(context.Background(), ergonode.Options{
		Name:          cfg.Node.Name,
		Cookie:        cfg.Node.Cookie.Reveal(),
		DistListen:    cfg.Node.DistListen,
		EPMDPort:      uint16(cfg.Node.EPMDPort),
		SelfSignedTLS: cfg.Node.DistTLS != nil && cfg.Node.DistTLS.Cert == "",
		TLSCert:       distCert(cfg),
		TLSKey:        distKey(cfg),
		Applications:  []gen.ApplicationBehavior{bus.NewApp(log.With("app", "bus")), board.NewApp(deps)},
	})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("start node %s: %w", cfg.Node.Name, err)
	}
	srv := &Server{cfg: cfg, log: log, node: n, store: st, drained: make(chan struct{})}
	// The gateway binds its listener when loaded (a busy port fails the
	// start here) and takes clients once everything else runs.
	var running atomic.Pointer[Server]
	srv.gateway = gateway.NewApp(cfg.Gateway, cfg.Node.Name, log, func(ctx context.Context) error {
		if s := running.Load(); s != nil {
			return s.Ready(ctx)
		}
		return errors.New("node starting")
	})
	if _, err := n.ApplicationLoad(srv.gateway); err != nil {
		srv.gateway = nil
		srv.Stop()
		return nil, fmt.Errorf("load gateway: %w", err)
	}
	if err := srv.startCluster(placement); err != nil {
		srv.Stop()
		return nil, err
	}
	if err := srv.startConsole(placement, level); err != nil {
		srv.Stop()
		return nil, err
	}
	running.Store(srv)
	if _, err := n.ApplicationStartPermanent("gateway"); err != nil {
		srv.Stop()
		return nil, fmt.Errorf("start gateway: %w", err)
	}
	log.Info("node started", "dist", cfg.Node.DistListen, "dsn_kind", st.Dialect(),
		"seeds", len(cfg.Cluster.Seeds), "discovery", cfg.Cluster.Discovery)
	return srv, nil
}

// startCluster starts membership once the node runs: it needs the node to
// connect to peers.
func (s *Server) startCluster(placement *cluster.Placement) error {
	cfg := s.cfg
	var shared *store.Store
	if cfg.Cluster.Discovery == "postgres" {
		shared = s.store
	}
	s.cluster = cluster.NewApp(cluster.Config{
		Self:       cfg.Node.Name,
		DistAddr:   cfg.Node.DistListen,
		PublicURL:  "http://" + s.HTTPAddr() + "/",
		Seeds:      cfg.Cluster.Seeds,
		Store:      shared,
		Heartbeat:  time.Duration(cfg.Cluster.HeartbeatMs) * time.Millisecond,
		DownAfter:  time.Duration(cfg.Cluster.DownAfterMs) * time.Millisecond,
		Placement:  placement,
		Log:        s.log.With("app", "cluster"),
		Changed:    gen.ProcessID{Name: board.RouterName, Node: cfg.Node.Name},
		ChangedMsg: board.MembershipChanged{},
	}, s.node)
	if _, err := s.node.ApplicationLoad(s.cluster); err != nil {
		return fmt.Errorf("load cluster: %w", err)
	}
	if _, err := s.node.ApplicationStartPermanent("cluster"); err != nil {
		return fmt.Errorf("start cluster: %w", err)
	}
	return nil
}

// startConsole starts tavern_console (and the net_kernel erl's
// net_adm:ping asks), once the node runs.
func (s *Server) startConsole(placement *cluster.Placement, level *slog.LevelVar) error {
	app := console.NewApp(console.Config{
		DSNKind:   s.store.Dialect(),
		Live:      placement.Live,
		LogLevel:  level,
		OpsPerSec: s.cfg.Gateway.OpsPerSec,
		OpsBurst:  s.cfg.Gateway.OpsBurst,
		OnDrained: func() { s.drainedOnce.Do(func() { close(s.drained) }) },
		Log:       s.log,
	}, s.node)
	if _, err := s.node.ApplicationLoad(app); err != nil {
		return fmt.Errorf("load console: %w", err)
	}
	if _, err := s.node.ApplicationStart("console"); err != nil {
		return fmt.Errorf("start console: %w", err)
	}
	return nil
}

// Drained is closed when a drain (console) has handed off every board and
// closed every client: the node then stops as on SIGTERM.
func (s *Server) Drained() <-chan struct{} { return s.drained }

// Ready reports whether the node can serve boards: its database answers
// and it has joined its cluster.
func (s *Server) Ready(ctx context.Context) error {
	if err := s.store.Ping(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if s.cluster == nil || !s.cluster.Ready() {
		return errors.New("cluster: not joined yet")
	}
	return nil
}

// HTTPAddr is where clients connect: the address the gateway's listener
// got (the real port when the configured one is 0).
func (s *Server) HTTPAddr() string {
	if s.gateway != nil {
		if a := s.gateway.Addr(); a != "" {
			return a
		}
	}
	return s.cfg.Gateway.Listen
}

// stopGatewayTimeout bounds how long Stop waits for clients to close.
const stopGatewayTimeout = 10 * time.Second

// Stop stops taking clients (the listener closes, every client is closed
// with 1001 going away), then stops the boards, flushes every queued
// commit and stops the node.
func (s *Server) Stop() error {
	if s.gateway != nil {
		ctx, cancel := context.WithTimeout(context.Background(), stopGatewayTimeout)
		if err := s.gateway.Shutdown(ctx); err != nil {
			s.log.Warn("gateway shutdown", "err", err)
		}
		cancel()
		if err := s.node.ApplicationStop("gateway"); err != nil && !errors.Is(err, lib.ErrAppIsNotRunning) {
			s.log.Warn("stop application", "app", "gateway", "err", err)
		}
	}
	for _, app := range []string{"board", "cluster"} {
		if err := s.node.ApplicationStop(app); err != nil {
			s.log.Warn("stop application", "app", app, "err", err)
		}
	}
	if s.cfg.Cluster.Discovery == "postgres" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.store.RemoveNode(ctx, s.cfg.Node.Name)
		cancel()
	}
	err := s.store.Close()
	s.node.Stop()
	return err
}

func distCert(cfg *sysconfig.Config) string {
	if cfg.Node.DistTLS == nil {
		return ""
	}
	return cfg.Node.DistTLS.Cert
}

func distKey(cfg *sysconfig.Config) string {
	if cfg.Node.DistTLS == nil {
		return ""
	}
	return cfg.Node.DistTLS.Key
}

// erlangSubscribers publishes each committed event on the bus topic
// "board:ID" as {tavern_ev, Board, Seq, EvJSON} (binaries and an
// integer), for erlbus subscribers on Erlang nodes. Tavern nodes are
// skipped: their members have the event from the board already.
func erlangSubscribers(placement *cluster.Placement) func(gen.Process, string, int64, []byte) {
	return func(p gen.Process, id string, seq int64, frame []byte) {
		live := placement.Live()
		skip := func(node string) bool { return slices.Contains(live, node) }
		msg := etf.Tuple{etf.Atom("tavern_ev"), []byte(id), seq, frame}
		_ = bus.PubExcept(p, "board:"+id, msg, skip)
	}
}
