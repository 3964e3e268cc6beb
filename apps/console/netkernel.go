package console

import (
	"log/slog"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
)

// netKernel answers what an Erlang node asks of a peer's net_kernel.
// net_adm:ping(Node) calls {net_kernel, Node} with {is_auth, Self} and
// answers pong only for {ok, yes}; Ergo's own net_kernel (apps/erlang) is
// a stub that answers nil, so erl saw pang and dropped the connection.
// The cookie was checked by the handshake already: a caller that got this
// far is authenticated.
type netKernel struct{ gen.Server }

// nameTaker is what netKernel needs of the node: taking the name from
// Ergo's stub, which keeps running, unnamed and unused.
type nameTaker interface {
	UnregisterName(name string) error
}

func (k *netKernel) Init(process *gen.ServerProcess, args ...etf.Term) error {
	n := args[0].(nameTaker)
	log := args[1].(*slog.Logger)
	// A supervisor panics, killing the siblings, when a child's Init
	// fails (ERGO_NOTES.md): a name we cannot take is logged, not fatal.
	if p := process.ProcessByName(NetKernelName); p != nil && p.Self() != process.Self() {
		_ = n.UnregisterName(NetKernelName)
	}
	if err := process.RegisterName(NetKernelName); err != nil {
		log.Warn("net_kernel: cannot register; net_adm:ping will answer pang", "err", err)
	}
	return nil
}

func (k *netKernel) HandleCall(process *gen.ServerProcess, from gen.ServerFrom, message etf.Term) (etf.Term, gen.ServerStatus) {
	if t, ok := message.(etf.Tuple); ok && len(t) == 2 && t[0] == etf.Atom("is_auth") {
		return etf.Atom("yes"), gen.ServerStatusOK
	}
	return etf.Tuple{atomError, etf.Atom("not_supported")}, gen.ServerStatusOK
}
