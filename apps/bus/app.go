package bus

import (
	"fmt"
	"log/slog"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
)

// App is the application "bus". Its supervisor starts, rest_for_one as
// erlbus's does, the overflow process, the pg scope server and the bus
// server: a restarted scope restarts the bus server, which joins the new
// scope; a restarted bus server keeps the topic table and monitors its
// subscribers again.
type App struct {
	gen.Application
	cfg Config
	log *slog.Logger
	in  *instance
}

// NewApp returns the bus application with DefaultConfig.
func NewApp(log *slog.Logger) *App { return New(DefaultConfig(), log) }

// New returns the bus application with cfg, which Load validates.
func New(cfg Config, log *slog.Logger) *App {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &App{cfg: cfg, log: log.With("app", "bus")}
}

// Load implements gen.ApplicationBehavior.
func (a *App) Load(args ...etf.Term) (gen.ApplicationSpec, error) {
	if err := a.cfg.Validate(); err != nil {
		return gen.ApplicationSpec{}, fmt.Errorf("bus: %w", err)
	}
	a.in = newInstance(a.cfg, a.log)
	return gen.ApplicationSpec{
		Name:        "bus",
		Description: "erlbus-style topics across nodes over OTP pg",
		Version:     "v1",
		Children: []gen.ApplicationChildSpec{
			{Name: "bus_sup", Child: &busSup{}, Args: []etf.Term{a.in}},
		},
	}, nil
}

// Start implements gen.ApplicationBehavior.
func (a *App) Start(process gen.Process, args ...etf.Term) {}

// Stats returns this node's counters (zero before Load).
func (a *App) Stats() Stats {
	if a.in == nil {
		return Stats{}
	}
	return a.in.snapshot()
}

type busSup struct{ gen.Supervisor }

func (s *busSup) Init(args ...etf.Term) (gen.SupervisorSpec, error) {
	in := args[0].(*instance)
	return gen.SupervisorSpec{
		Name: "bus_sup",
		Children: []gen.SupervisorChildSpec{
			{Name: OverflowName, Child: &overflowProc{}, Args: args,
				Options: gen.ProcessOptions{MailboxSize: overflowMailbox}},
			{Name: ScopeName, Child: &scopeServer{}, Args: args,
				Options: gen.ProcessOptions{
					// Peers' joins and leaves, DOWNs, network events: a
					// few per node event.
					MailboxSize: 4096, DirectboxSize: 64,
					Fallback: gen.ProcessFallback{Name: OverflowName, Tag: tagScope},
				}},
			{Name: ServerName, Child: &busServer{}, Args: args,
				Options: gen.ProcessOptions{
					MailboxSize:   uint16(in.cfg.Mailbox),
					DirectboxSize: uint16(in.cfg.Directbox),
					Fallback:      gen.ProcessFallback{Name: OverflowName, Tag: tagServer},
				}},
		},
		Strategy: gen.SupervisorStrategy{
			Type: gen.SupervisorStrategyRestForOne, Intensity: 5, Period: 10,
			Restart: gen.SupervisorStrategyRestartPermanent,
		},
	}, nil
}
