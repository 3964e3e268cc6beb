// Package gateway is Tavern's public edge: the HTTP server with the
// WebSocket endpoint of the client protocol (PROTOCOL.md), /healthz,
// /readyz, /metrics and the board page. It runs one session process per
// client under a simple_one_for_one supervisor; sessions authenticate,
// rate-limit and talk to boards through board.Member.
//
// Supervision tree:
//
//	gateway_sup (rest_for_one)
//	 |- session_sup     simple_one_for_one, temporary: one session per client
//	 `- tavern_gateway  the HTTP server and the set of connections
package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/tavernhq/tavern/internal/sysconfig"
)

// Registered names of the gateway's processes.
const (
	ServerName     = "tavern_gateway"
	SessionSupName = "session_sup"
	supName        = "gateway_sup"
)

// App is the gateway application.
type App struct {
	gen.Application
	hub *hub
}

// NewApp returns the gateway application of node nodeName. ready is what
// /readyz checks (nil: always ready). The listener is bound when the node
// loads the application, so a busy port fails the node's start.
func NewApp(cfg sysconfig.Gateway, nodeName string, log *slog.Logger, ready func(context.Context) error) *App {
	if log == nil {
		log = slog.Default()
	}
	if ready == nil {
		ready = func(context.Context) error { return nil }
	}
	log = log.With("app", "gateway") // the node field comes with the node's logger
	set := settingsFrom(cfg, log)
	h := newHub(set, log, ready)
	return &App{hub: h}
}

// Load binds the listener and returns the application's spec.
func (a *App) Load(args ...etf.Term) (gen.ApplicationSpec, error) {
	if err := a.hub.set.tlsErr; err != nil {
		return gen.ApplicationSpec{}, err
	}
	if err := a.hub.listen(); err != nil {
		return gen.ApplicationSpec{}, err
	}
	return gen.ApplicationSpec{
		Name:        "gateway",
		Description: "Tavern gateway: HTTP, WebSocket sessions",
		Version:     "v1",
		StartType:   gen.ApplicationStartPermanent,
		Children: []gen.ApplicationChildSpec{
			{Name: supName, Child: &gatewaySup{}, Args: []etf.Term{a.hub}},
		},
	}, nil
}

// Start is called once the application's children run.
func (a *App) Start(process gen.Process, args ...etf.Term) {}

// Addr is the address the HTTP server listens on (the real port when the
// configured one is 0), or "" before the application is loaded.
func (a *App) Addr() string { return a.hub.addr() }

// Shutdown stops taking connections, closes every client with 1001 (going
// away) after what is queued for it, and waits until every connection has
// ended or ctx is done (then the rest are cut). Run it before stopping the
// application to stop cleanly; the application's stop does the same with a
// short bound.
func (a *App) Shutdown(ctx context.Context) error {
	return a.hub.shutdown(ctx, closeGoingAway, "server going away")
}

// SetOpsRate changes the op rate limit of this gateway's sessions, current
// and new ones. See also the package function SetOpsRate.
func (a *App) SetOpsRate(perSec float64, burst int) error {
	return a.hub.setOpsRate(perSec, burst)
}

// gatewaySup starts session_sup and gateway_overflow, then tavern_gateway
// that needs them.
type gatewaySup struct{ gen.Supervisor }

func (s *gatewaySup) Init(args ...etf.Term) (gen.SupervisorSpec, error) {
	return gen.SupervisorSpec{
		Name: supName,
		Children: []gen.SupervisorChildSpec{
			{
				Name: SessionSupName, Child: &sessionSup{},
				// Every exiting session notifies the supervisor through a
				// channel of its mailbox size; a notification that finds it
				// full is lost and the child list keeps a dead entry.
				Options: gen.ProcessOptions{MailboxSize: 8192, DirectboxSize: 1024},
			},
			{
				Name: OverflowName, Child: &overflow{}, Args: args,
				Options: gen.ProcessOptions{MailboxSize: overflowMailbox},
			},
			{Name: ServerName, Child: &server{}, Args: args},
		},
		Strategy: gen.SupervisorStrategy{
			Type: gen.SupervisorStrategyRestForOne, Intensity: 5, Period: 10,
			Restart: gen.SupervisorStrategyRestartPermanent,
		},
	}, nil
}

// sessionSup is the simple_one_for_one supervisor of sessions; a session
// ends with its connection and is never restarted.
type sessionSup struct{ gen.Supervisor }

func (s *sessionSup) Init(args ...etf.Term) (gen.SupervisorSpec, error) {
	return gen.SupervisorSpec{
		Name: SessionSupName,
		Children: []gen.SupervisorChildSpec{{
			Name:  "session",
			Child: &session{},
			Options: gen.ProcessOptions{
				MailboxSize: sessionMailbox, DirectboxSize: sessionDirectbox,
				Fallback: gen.ProcessFallback{Name: OverflowName, Tag: "session"},
			},
		}},
		Strategy: gen.SupervisorStrategy{
			Type:    gen.SupervisorStrategySimpleOneForOne,
			Restart: gen.SupervisorStrategyRestartTemporary,
		},
	}, nil
}

// startSession starts the session process of c under sup.
func startSession(sup gen.Process, h *hub, c *conn) (gen.Process, error) {
	var s gen.Supervisor
	p, err := s.StartChild(sup, "session", h, c)
	if err != nil {
		return nil, fmt.Errorf("start session: %w", err)
	}
	return p, nil
}

// bindListener listens on addr.
func bindListener(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("gateway: listen %s: %w", addr, err)
	}
	return ln, nil
}

// stopBound is how long the application's stop waits for connections when
// Shutdown was not called first.
const stopBound = 3 * time.Second
