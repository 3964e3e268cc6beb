package board

import (
	"fmt"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/lib"
)

// FanoutEvent carries one event to every member on one remote node: the
// board sends one distribution message per interested node, and that
// node's fanout process delivers it locally.
type FanoutEvent struct {
	Members LocalIDs
	Board   string
	Seq     int64
	Frame   []byte
}

// FanoutEvents is FanoutEvent for an Events batch.
type FanoutEvents struct {
	Members LocalIDs
	Board   string
	First   int64
	Frames  []byte
}

// FanoutPresence carries a presence change to the members on one node.
type FanoutPresence struct {
	Members LocalIDs
	Board   string
	Joins   Names
	Leaves  Names
}

// crossNode lists every message that may travel between Tavern nodes.
// Registered (strict), they arrive as the same Go struct, not as a
// generic term (ERGO_NOTES.md).
var crossNode = []any{
	Names{}, LocalIDs{}, // first: the structs below hold them
	Locate{}, Located{}, Join{}, Joined{}, Leave{}, Op{}, Ack{}, Failed{},
	Event{}, Events{}, Presence{}, FanoutEvent{}, FanoutEvents{}, FanoutPresence{},
}

func init() {
	for _, t := range crossNode {
		if _, err := etf.RegisterType(t, etf.RegisterTypeOptions{Strict: true}); err != nil && err != lib.ErrTaken {
			panic(fmt.Sprintf("board: register %T for distribution: %v", t, err))
		}
	}
}
