// Package board runs Tavern's boards: one gen.Server per active board
// under a simple_one_for_one supervisor, and a router per node that starts
// them, paces their restarts and tells sessions where they run. The pure
// rules of a board live in board/rules.
package board

import (
	"fmt"
	"log/slog"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/tavernhq/tavern/apps/board/rules"
	"github.com/tavernhq/tavern/apps/store"
	"github.com/tavernhq/tavern/internal/sysconfig"
)

// Deps is what every board actor shares.
type Deps struct {
	Store       *store.Store
	Config      sysconfig.Board
	StoreConfig sysconfig.Store
	Limits      rules.Limits
	Log         *slog.Logger
	// Placement says which node owns a board; nil: this node owns all.
	Placement Placement
	// Publish, if set, also gets every committed event (the node's bus
	// hands it to Erlang subscribers of topic "board:ID").
	Publish func(p gen.Process, board string, seq int64, frame []byte)
}

// Placement is the cluster's answer to "who owns this board".
type Placement interface {
	Self() string
	Owner(board string) string
	OwnerWithout(board, node string) string
}

// NewDeps derives the board limits from the config.
func NewDeps(st *store.Store, cfg *sysconfig.Config, log *slog.Logger) *Deps {
	lim := rules.DefaultLimits()
	lim.MaxPutEntities = cfg.Board.MaxPutEntities
	lim.MaxEntities = cfg.Board.MaxEntities
	lim.MaxPropsBytes = cfg.Board.MaxPropsBytes
	return &Deps{Store: st, Config: cfg.Board, StoreConfig: cfg.Store, Limits: lim, Log: log.With("app", "board")}
}

// App is the board application: its supervisor holds the router and the
// boards' simple_one_for_one supervisor.
type App struct {
	gen.Application
	deps *Deps
}

// NewApp returns the application, ready for node.ApplicationLoad.
func NewApp(deps *Deps) *App { return &App{deps: deps} }

func (a *App) Load(args ...etf.Term) (gen.ApplicationSpec, error) {
	return gen.ApplicationSpec{
		Name:        "board",
		Description: "Tavern boards",
		Version:     "v1",
		Children: []gen.ApplicationChildSpec{
			{Name: "board_app_sup", Child: &appSup{}, Args: []etf.Term{a.deps}},
		},
	}, nil
}

func (a *App) Start(process gen.Process, args ...etf.Term) {}

// appSup starts board_sup first, then the router that needs it.
type appSup struct{ gen.Supervisor }

func (s *appSup) Init(args ...etf.Term) (gen.SupervisorSpec, error) {
	return gen.SupervisorSpec{
		Name: "board_app_sup",
		Children: []gen.SupervisorChildSpec{
			{Name: "board_sup", Child: &boardSup{}, Args: args},
			// One router and one fanout per node take every join and every
			// remote event: their mailboxes are sized for bursts (a
			// thousand clients re-joining at once), 3 MB each at most.
			{Name: RouterName, Child: &routerStarter{}, Args: args, Options: gen.ProcessOptions{MailboxSize: 65535}},
			{Name: FanoutName, Child: &fanout{}, Options: gen.ProcessOptions{MailboxSize: 65535}},
		},
		Strategy: gen.SupervisorStrategy{
			Type: gen.SupervisorStrategyRestForOne, Intensity: 5, Period: 10,
			Restart: gen.SupervisorStrategyRestartPermanent,
		},
	}, nil
}

// boardSup is the simple_one_for_one supervisor of board actors. transient:
// a crashed board restarts, a passivated or fenced one does not.
type boardSup struct{ gen.Supervisor }

// BoardSupName is the registered name of the boards' supervisor.
const BoardSupName = "board_sup"

func (s *boardSup) Init(args ...etf.Term) (gen.SupervisorSpec, error) {
	deps := args[0].(*Deps)
	return gen.SupervisorSpec{
		Name: BoardSupName,
		Children: []gen.SupervisorChildSpec{{
			Name:    "board",
			Child:   &actor{},
			Options: gen.ProcessOptions{MailboxSize: uint16(deps.Config.Mailbox)},
		}},
		Strategy: gen.SupervisorStrategy{
			Type:    gen.SupervisorStrategySimpleOneForOne,
			Restart: gen.SupervisorStrategyRestartTransient,
		},
	}, nil
}

// routerStarter wraps the router so it can find board_sup on start.
type routerStarter struct{ router }

func (r *routerStarter) Init(process *gen.ServerProcess, args ...etf.Term) error {
	if err := r.router.Init(process, args...); err != nil {
		return err
	}
	sup := process.ProcessByName(BoardSupName)
	if sup == nil {
		return fmt.Errorf("board router: %s is not running", BoardSupName)
	}
	process.State.(*routerState).sup = sup
	return nil
}

func startBoard(sup gen.Process, deps *Deps, id string) (gen.Process, error) {
	var s gen.Supervisor
	p, err := s.StartChild(sup, "board", deps, id)
	if err != nil {
		return nil, fmt.Errorf("start board %s: %w", id, err)
	}
	return p, nil
}
