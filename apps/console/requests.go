package console

import (
	"fmt"
	"strings"

	"github.com/ergo-services/ergo/etf"
)

// Request is one request tavern_console answers, and the console command
// that sends it.
type Request struct {
	// Command and Args are the console's command and its arguments.
	Command, Args string
	// Erlang is the request as an Erlang shell writes it.
	Erlang string
	// Help says what it does.
	Help string
	// nargs is the number of arguments: -1 is "the rest of the line".
	nargs int
	build func(args []string) etf.Term
}

func atomReq(a string) func([]string) etf.Term {
	return func([]string) etf.Term { return etf.Atom(a) }
}

func tagReq(tag string) func([]string) etf.Term {
	return func(args []string) etf.Term {
		t := etf.Tuple{etf.Atom(tag)}
		for _, a := range args {
			t = append(t, bin(a))
		}
		return t
	}
}

// Requests lists every request, in the order help shows them.
var Requests = []Request{
	{Command: "info", Erlang: "info", Help: "node, version, uptime, boards, clients, live nodes, database kind", build: atomReq("info")},
	{Command: "nodes", Erlang: "nodes", Help: "the cluster's live nodes and this node's connections", build: atomReq("nodes")},
	{Command: "boards", Erlang: "boards", Help: "this node's active boards", build: atomReq("boards")},
	{Command: "board", Args: "ID", Erlang: "{board, Id}", Help: "one active board of this node", nargs: 1, build: tagReq("board")},
	{Command: "clients", Erlang: "clients", Help: "this node's clients", build: atomReq("clients")},
	{Command: "kill", Args: "ID", Erlang: "{kill, Id}", Help: "crash a board's actor: its supervisor restarts it, its clients stay", nargs: 1, build: tagReq("kill")},
	{Command: "notice", Args: "TEXT", Erlang: "{notice, Text}", Help: "send a notice to every client of the cluster", nargs: -1,
		build: func(args []string) etf.Term { return etf.Tuple{etf.Atom("notice"), bin(strings.Join(args, " "))} }},
	{Command: "set", Args: "KEY VALUE", Erlang: "{set, Key, Value}", Help: "change log_level (debug, info, warn, error), ops_per_sec or ops_burst", nargs: 2,
		build: func(args []string) etf.Term { return etf.Tuple{etf.Atom("set"), etf.Atom(args[0]), bin(args[1])} }},
	{Command: "drain", Erlang: "drain", Help: "hand the boards to other nodes, close the clients with 1012, then stop the node", build: atomReq("drain")},
}

// Usage is the command with its arguments, as help shows it.
func (r Request) Usage() string {
	if r.Args == "" {
		return r.Command
	}
	return r.Command + " " + r.Args
}

// Lookup finds the request of a console command.
func Lookup(command string) (Request, bool) {
	for _, r := range Requests {
		if r.Command == command {
			return r, true
		}
	}
	return Request{}, false
}

// Build turns a console command and its arguments into the request term;
// a wrong command or wrong arguments is an error that wraps ErrUsage.
func Build(command string, args []string) (etf.Term, error) {
	r, ok := Lookup(command)
	if !ok {
		return nil, fmt.Errorf("%w: unknown command %q (try help)", ErrUsage, command)
	}
	switch {
	case r.nargs == -1 && len(args) == 0:
		return nil, fmt.Errorf("%w: %s", ErrUsage, r.Usage())
	case r.nargs >= 0 && len(args) != r.nargs:
		return nil, fmt.Errorf("%w: %s", ErrUsage, r.Usage())
	}
	return r.build(args), nil
}
