package bus

import (
	"sync"

	"github.com/ergo-services/ergo/etf"
)

// groupView is a node's view of its pg scope: for each group, its local
// and remote members. The scope server alone writes it; publishers read
// it from their own processes. Member slices are never modified once
// stored (copy on write), so a reader may keep one after unlocking.
type groupView struct {
	mu     sync.RWMutex
	groups map[string]*groupEntry
}

type groupEntry struct {
	group  etf.Term
	local  []etf.Pid
	remote []etf.Pid
}

func newGroupView() *groupView { return &groupView{groups: map[string]*groupEntry{}} }

// remote returns the remote members of the group; do not modify.
func (v *groupView) remote(key string) []etf.Pid {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if e := v.groups[key]; e != nil {
		return e.remote
	}
	return nil
}

// members returns a fresh slice of all members, local first.
func (v *groupView) members(key string) []etf.Pid {
	v.mu.RLock()
	defer v.mu.RUnlock()
	e := v.groups[key]
	if e == nil {
		return nil
	}
	out := make([]etf.Pid, 0, len(e.local)+len(e.remote))
	return append(append(out, e.local...), e.remote...)
}

// localGroups is what a sync carries: every group with local members.
func (v *groupView) localGroups() []groupPids {
	v.mu.RLock()
	defer v.mu.RUnlock()
	var out []groupPids
	for _, e := range v.groups {
		if len(e.local) > 0 {
			out = append(out, groupPids{group: e.group, pids: e.local})
		}
	}
	return out
}

func (v *groupView) reset() {
	v.mu.Lock()
	v.groups = map[string]*groupEntry{}
	v.mu.Unlock()
}

func (v *groupView) add(group etf.Term, pids []etf.Pid, local bool) {
	if len(pids) == 0 {
		return
	}
	key := groupKey(group)
	v.mu.Lock()
	defer v.mu.Unlock()
	e := v.groups[key]
	if e == nil {
		e = &groupEntry{group: group}
		v.groups[key] = e
	}
	if local {
		e.local = appendCopy(e.local, pids)
	} else {
		e.remote = appendCopy(e.remote, pids)
	}
}

func (v *groupView) remove(group etf.Term, pids []etf.Pid, local bool) {
	if len(pids) == 0 {
		return
	}
	key := groupKey(group)
	v.mu.Lock()
	defer v.mu.Unlock()
	e := v.groups[key]
	if e == nil {
		return
	}
	if local {
		e.local = removeEach(e.local, pids)
	} else {
		e.remote = removeEach(e.remote, pids)
	}
	if len(e.local) == 0 && len(e.remote) == 0 {
		delete(v.groups, key)
	}
}

// appendCopy returns a new slice: l followed by add.
func appendCopy(l, add []etf.Pid) []etf.Pid {
	out := make([]etf.Pid, 0, len(l)+len(add))
	return append(append(out, l...), add...)
}

// removeEach returns a new slice: l without one occurrence of each pid of
// del (Erlang's l -- del), or l itself when nothing is removed.
func removeEach(l, del []etf.Pid) []etf.Pid {
	var out []etf.Pid
	for _, d := range del {
		src := l
		if out != nil {
			src = out
		}
		for i, p := range src {
			if p == d {
				next := make([]etf.Pid, 0, len(src)-1)
				out = append(append(next, src[:i]...), src[i+1:]...)
				break
			}
		}
	}
	if out == nil {
		return l
	}
	return out
}
