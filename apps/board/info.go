package board

import (
	"fmt"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
)

type infoRequest struct{}

// Info describes an active board, for the console and tests.
type Info struct {
	ID       string
	Epoch    int64
	Seq      int64 // last durable op
	Pending  int   // ops assigned, not yet durable
	Members  int
	Users    []string
	Entities int
	Loaded   bool
}

func (st *boardState) info() Info {
	in := Info{ID: st.id, Epoch: st.epoch, Seq: st.committed, Pending: len(st.pending),
		Members: len(st.members), Users: st.userList(), Loaded: st.phase == phaseActive}
	if st.durable != nil {
		in.Entities = st.durable.Len()
	}
	return in
}

// direct asks a local process synchronously; it works from any goroutine.
func direct(p gen.Process, to interface{}, req interface{}) (interface{}, error) {
	var target gen.Process
	switch t := to.(type) {
	case string:
		target = p.ProcessByName(t)
	case etf.Pid:
		target = p.ProcessByPid(t)
	}
	if target == nil {
		return nil, fmt.Errorf("process %v is not running", to)
	}
	return target.Direct(req)
}

// Boards lists the ids of this node's active boards.
func Boards(p gen.Process) ([]string, error) {
	v, err := direct(p, RouterName, listBoards{})
	if err != nil {
		return nil, err
	}
	ids, _ := v.([]string)
	return ids, nil
}

// Lookup returns the pid of an active board on this node.
func Lookup(p gen.Process, id string) (etf.Pid, bool, error) {
	v, err := direct(p, RouterName, boardPid{Board: id})
	if err != nil {
		return etf.Pid{}, false, err
	}
	pid, _ := v.(etf.Pid)
	return pid, pid != (etf.Pid{}), nil
}

// Describe asks an active board for its Info.
func Describe(p gen.Process, id string) (Info, error) {
	pid, ok, err := Lookup(p, id)
	if err != nil {
		return Info{}, err
	}
	if !ok {
		return Info{}, fmt.Errorf("board %s is not active on this node", id)
	}
	v, err := direct(p, pid, infoRequest{})
	if err != nil {
		return Info{}, err
	}
	in, ok := v.(Info)
	if !ok {
		return Info{}, fmt.Errorf("board %s: unexpected answer %v", id, v)
	}
	return in, nil
}

// Crash makes an active board's actor panic, so its supervisor restarts
// it (the console's "kill"). It reports whether the board was active.
func Crash(p gen.Process, id string) (bool, error) {
	pid, ok, err := Lookup(p, id)
	if err != nil || !ok {
		return false, err
	}
	return true, p.Send(pid, crash{})
}

// Drain makes this node hand every board to the other nodes and start no
// new one: each actor finishes what is in flight and stops, and its
// members re-join at the new owner. It returns how many boards were
// active; Boards tells when they are all gone.
func Drain(p gen.Process) (int, error) {
	v, err := direct(p, RouterName, drainBoards{})
	if err != nil {
		return 0, err
	}
	n, _ := v.(int)
	return n, nil
}
