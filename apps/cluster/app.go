package cluster

import (
	"sync/atomic"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/node"
)

// App is the cluster application: the membership server.
type App struct {
	gen.Application
	m *membership
}

// NewApp returns the application. It needs the node it runs on, so it is
// loaded and started after the node (node.ApplicationLoad + Start).
func NewApp(cfg Config, n node.Node) *App {
	return &App{m: &membership{cfg: cfg, node: n, ready: new(atomic.Bool)}}
}

// Ready reports whether the node has joined its cluster: discovery has
// answered and peers had a heartbeat round to answer.
func (a *App) Ready() bool { return a.m.ready.Load() }

func (a *App) Load(args ...etf.Term) (gen.ApplicationSpec, error) {
	return gen.ApplicationSpec{
		Name:        "cluster",
		Description: "Tavern cluster membership",
		Version:     "v1",
		Children: []gen.ApplicationChildSpec{
			{Name: MembershipName, Child: a.m, Options: gen.ProcessOptions{MailboxSize: 4096}},
		},
	}, nil
}

func (a *App) Start(process gen.Process, args ...etf.Term) {}
