// Package console is the operator's side of a Tavern node. Every node runs
// the application "console": its registered gen.Server tavern_console
// answers operator requests given as Erlang terms (info, boards,
// {kill, Id}, {set, Key, Value}, drain, ...), so that the Go console
// (nodes/console, through Dial) and a plain Erlang shell
// (gen_server:call({tavern_console, Node}, boards)) get the same answers;
// and a net_kernel server that makes net_adm:ping from erl answer pong.
//
// Supervision tree:
//
//	console_sup (one_for_one)
//	 |- net_kernel      answers {is_auth, Node} with yes (Ergo's stub answers nil)
//	 `- tavern_console  the operator's requests
package console

import (
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/node"

	"github.com/tavernhq/tavern/apps/gateway"
)

// Registered names.
const (
	// ServerName is the registered name of the console server on every
	// node.
	ServerName = "tavern_console"
	// NetKernelName is the name erl's net_adm:ping calls.
	NetKernelName = "net_kernel"
	supName       = "console_sup"
)

// Version is the release's version, set at build time by `make release`
// (-ldflags "-X github.com/tavernhq/tavern/apps/console.Version=...");
// empty, the module's build information is used.
var Version = ""

// BuildVersion is Version, or what the Go toolchain recorded of the build.
func BuildVersion() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += "+" + s.Value[:12]
		}
	}
	return v
}

// Config is what the console server needs of its node. Only Log is
// required; what is left out is reported as unavailable.
type Config struct {
	// Version is reported by info; "" is BuildVersion().
	Version string
	// DSNKind is the kind of database, "sqlite" or "postgres" (never the
	// DSN itself: it may hold a password).
	DSNKind string
	// Live returns the live nodes of the cluster, this one included
	// (cluster.Placement.Live); nil: this node alone.
	Live func() []string
	// LogLevel is the node's log level, changed by {set, log_level, L};
	// nil: the log level cannot be changed.
	LogLevel *slog.LevelVar
	// OpsPerSec and OpsBurst are the clients' op rate limit the node
	// started with (sysconfig's gateway.ops_per_sec, ops_burst).
	OpsPerSec float64
	OpsBurst  int
	// SetOpsRate changes the op rate limit of the node's clients; nil is
	// gateway.SetOpsRate.
	SetOpsRate func(perSec float64, burst int) error
	// OnDrained is called, once and from its own goroutine, when a drain
	// has emptied the node: no active board and no client left. The
	// server stops the node in it.
	OnDrained func()
	// DrainPoll is how often a drain checks whether the node is empty;
	// 0 is 100 ms.
	DrainPoll time.Duration
	// Log is the node's logger.
	Log *slog.Logger
}

// App is the console application.
type App struct {
	gen.Application
	cfg  Config
	node node.Node
}

// NewApp returns the console application of node n, for
// node.ApplicationLoad once the node runs.
func NewApp(cfg Config, n node.Node) *App {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	cfg.Log = cfg.Log.With("app", "console")
	if cfg.Version == "" {
		cfg.Version = BuildVersion()
	}
	if cfg.SetOpsRate == nil {
		cfg.SetOpsRate = gateway.SetOpsRate
	}
	if cfg.DrainPoll <= 0 {
		cfg.DrainPoll = 100 * time.Millisecond
	}
	if cfg.OpsBurst < 1 {
		cfg.OpsBurst = 1
	}
	return &App{cfg: cfg, node: n}
}

// Load implements gen.ApplicationBehavior.
func (a *App) Load(args ...etf.Term) (gen.ApplicationSpec, error) {
	return gen.ApplicationSpec{
		Name:        "console",
		Description: "Tavern console: operator requests, net_kernel",
		Version:     "v1",
		Children: []gen.ApplicationChildSpec{
			{Name: supName, Child: &sup{}, Args: []etf.Term{a}},
		},
	}, nil
}

// Start implements gen.ApplicationBehavior.
func (a *App) Start(process gen.Process, args ...etf.Term) {}

type sup struct{ gen.Supervisor }

func (s *sup) Init(args ...etf.Term) (gen.SupervisorSpec, error) {
	a := args[0].(*App)
	return gen.SupervisorSpec{
		Name: supName,
		Children: []gen.SupervisorChildSpec{
			// Unnamed at spawn: it takes net_kernel over from Ergo's stub.
			{Name: "", Child: &netKernel{}, Args: []etf.Term{a.node, a.cfg.Log}},
			{Name: ServerName, Child: &server{}, Args: []etf.Term{a}},
		},
		Strategy: gen.SupervisorStrategy{
			Type: gen.SupervisorStrategyOneForOne, Intensity: 5, Period: 10,
			Restart: gen.SupervisorStrategyRestartPermanent,
		},
	}, nil
}
