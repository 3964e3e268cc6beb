package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/node"

	"github.com/tavernhq/tavern/apps/board"
	"github.com/tavernhq/tavern/apps/store"
	"github.com/tavernhq/tavern/internal/ergonode"
	"github.com/tavernhq/tavern/internal/sysconfig"
)

// Server is a running Tavern node.
type Server struct {
	cfg   *sysconfig.Config
	log   *slog.Logger
	node  node.Node
	store *store.Store
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
	n, err := ergonode.Start(context.Background(), ergonode.Options{
		Name:          cfg.Node.Name,
		Cookie:        cfg.Node.Cookie.Reveal(),
		DistListen:    cfg.Node.DistListen,
		EPMDPort:      uint16(cfg.Node.EPMDPort),
		SelfSignedTLS: cfg.Node.DistTLS != nil && cfg.Node.DistTLS.Cert == "",
		Applications:  []gen.ApplicationBehavior{board.NewApp(deps)},
	})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("start node %s: %w", cfg.Node.Name, err)
	}
	log.Info("node started", "dist", cfg.Node.DistListen, "dsn_kind", st.Dialect())
	return &Server{cfg: cfg, log: log, node: n, store: st}, nil
}

// HTTPAddr is where clients connect.
func (s *Server) HTTPAddr() string { return s.cfg.Gateway.Listen }

// Stop stops taking clients, stops the boards, flushes every queued
// commit and stops the node.
func (s *Server) Stop() error {
	for _, app := range []string{"board"} {
		if err := s.node.ApplicationStop(app); err != nil {
			s.log.Warn("stop application", "app", app, "err", err)
		}
	}
	err := s.store.Close()
	s.node.Stop()
	return err
}
