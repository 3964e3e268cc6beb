package bus

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ergo-services/ergo/etf"
)

// The wire contract, as read in OTP 25.2.3's lib/kernel/src/pg.erl (the
// abstract code in the installed pg.beam) and erlbus 0.3.0's
// src/pubsub/ebus_ps_pg.erl and ebus_ps_pg2_server.erl:
//
//	scope server, registered ScopeName on every node:
//	  {discover, PeerScopePid}                       plain message
//	  {'$gen_cast', {sync, PeerScopePid, [{Group, [Pid]}]}}  gen_server:cast
//	  {join, PeerScopePid, Group, Pid | [Pid]}       plain message
//	  {leave, PeerScopePid, Pid | [Pid], [Group]}    plain message
//	bus server, registered ServerName, the node's member of group ServerName:
//	  {forward_to_local, none | FromPid, PoolSize, TopicBinary, Msg}
//
// OTP 25's pg crashes (badarg) on any other message or call, so nothing
// else is ever sent to a scope server. erlbus's server ignores unknown
// messages and answers any call with ok, which is what makes the one Go
// extension safe: {tavern_bus_subscribers, TopicBinary} called on a bus
// server answers its local subscribers, or ok from an Erlang node.
const (
	// ScopeName is the pg scope erlbus 0.3 starts (pg:start_link(ebus_ps_pg)).
	ScopeName = "ebus_ps_pg"
	// ServerName is erlbus's default server name, registered on each node,
	// and the pg group in ScopeName its server joins.
	ServerName = "ebus_ps"
	// OverflowName is the fallback process of the bus and scope servers'
	// mailboxes.
	OverflowName = "ebus_ps_overflow"
)

var (
	atomDiscover  = etf.Atom("discover")
	atomSync      = etf.Atom("sync")
	atomJoin      = etf.Atom("join")
	atomLeave     = etf.Atom("leave")
	atomGenCast   = etf.Atom("$gen_cast")
	atomForward   = etf.Atom("forward_to_local")
	atomNone      = etf.Atom("none")
	atomOK        = etf.Atom("ok")
	atomSubsQuery = etf.Atom("tavern_bus_subscribers")

	// groupServer is the pg group of bus servers.
	groupServer = etf.Atom(ServerName)
)

// groupPids is one {Group, [Pid]} of a sync.
type groupPids struct {
	group etf.Term
	pids  []etf.Pid
}

type pgDiscover struct{ peer etf.Pid }

type pgSync struct {
	peer   etf.Pid
	groups []groupPids
}

type pgJoin struct {
	peer  etf.Pid
	group etf.Term
	pids  []etf.Pid
}

type pgLeave struct {
	peer   etf.Pid
	pids   []etf.Pid
	groups []etf.Term
}

// forward is a decoded forward_to_local.
type forward struct {
	from     etf.Pid
	hasFrom  bool
	poolSize int
	topic    string
	msg      etf.Term
}

func discoverMsg(self etf.Pid) etf.Tuple { return etf.Tuple{atomDiscover, self} }

// syncMsg is the body of the cast; send it with gen_server cast framing.
func syncMsg(self etf.Pid, groups []groupPids) etf.Tuple {
	l := make(etf.List, 0, len(groups))
	for _, g := range groups {
		l = append(l, etf.Tuple{g.group, pidList(g.pids)})
	}
	return etf.Tuple{atomSync, self, l}
}

func joinMsg(self etf.Pid, group etf.Term, pids []etf.Pid) etf.Tuple {
	return etf.Tuple{atomJoin, self, group, pidOrPids(pids)}
}

func leaveMsg(self etf.Pid, pids []etf.Pid, groups []etf.Term) etf.Tuple {
	return etf.Tuple{atomLeave, self, pidOrPids(pids), etf.List(groups)}
}

func forwardMsg(from etf.Pid, hasFrom bool, poolSize int, topic string, msg etf.Term) etf.Tuple {
	var f etf.Term = atomNone
	if hasFrom {
		f = from
	}
	return etf.Tuple{atomForward, f, poolSize, []byte(topic), msg}
}

func subsQueryMsg(topic string) etf.Tuple { return etf.Tuple{atomSubsQuery, []byte(topic)} }

// pidOrPids sends one pid bare, as pg does for pg:join(Scope, G, Pid).
func pidOrPids(pids []etf.Pid) etf.Term {
	if len(pids) == 1 {
		return pids[0]
	}
	return pidList(pids)
}

func pidList(pids []etf.Pid) etf.List {
	l := make(etf.List, len(pids))
	for i, p := range pids {
		l[i] = p
	}
	return l
}

// parsePG reads a message to a scope server: pgDiscover, pgJoin, pgLeave,
// or, for the body of a '$gen_cast', pgSync. ok is false for anything
// else; err says what was wrong with a message that had a pg tag.
func parsePG(m etf.Term) (msg any, ok bool, err error) {
	t, isTuple := m.(etf.Tuple)
	if !isTuple || len(t) < 2 {
		return nil, false, nil
	}
	tag, _ := t[0].(etf.Atom)
	switch tag {
	case atomDiscover:
		// {discover, Peer}; OTP 26+ also accepts {discover, Peer, Version}.
		if len(t) != 2 && len(t) != 3 {
			return nil, false, fmt.Errorf("discover: %d elements", len(t))
		}
		peer, isPid := t[1].(etf.Pid)
		if !isPid {
			return nil, false, fmt.Errorf("discover: peer is %T", t[1])
		}
		return pgDiscover{peer: peer}, true, nil
	case atomSync:
		if len(t) != 3 {
			return nil, false, fmt.Errorf("sync: %d elements", len(t))
		}
		peer, isPid := t[1].(etf.Pid)
		if !isPid {
			return nil, false, fmt.Errorf("sync: peer is %T", t[1])
		}
		l, err := asList(t[2])
		if err != nil {
			return nil, false, fmt.Errorf("sync: groups: %w", err)
		}
		s := pgSync{peer: peer, groups: make([]groupPids, 0, len(l))}
		for _, e := range l {
			gt, isTuple := e.(etf.Tuple)
			if !isTuple || len(gt) != 2 {
				return nil, false, fmt.Errorf("sync: group entry is %T, want {Group, Pids}", e)
			}
			pids, err := asPids(gt[1], false)
			if err != nil {
				return nil, false, fmt.Errorf("sync: group %v: %w", gt[0], err)
			}
			s.groups = append(s.groups, groupPids{group: gt[0], pids: pids})
		}
		return s, true, nil
	case atomJoin:
		if len(t) != 4 {
			return nil, false, fmt.Errorf("join: %d elements", len(t))
		}
		peer, isPid := t[1].(etf.Pid)
		if !isPid {
			return nil, false, fmt.Errorf("join: peer is %T", t[1])
		}
		pids, err := asPids(t[3], true)
		if err != nil {
			return nil, false, fmt.Errorf("join: %w", err)
		}
		return pgJoin{peer: peer, group: t[2], pids: pids}, true, nil
	case atomLeave:
		if len(t) != 4 {
			return nil, false, fmt.Errorf("leave: %d elements", len(t))
		}
		peer, isPid := t[1].(etf.Pid)
		if !isPid {
			return nil, false, fmt.Errorf("leave: peer is %T", t[1])
		}
		pids, err := asPids(t[2], true)
		if err != nil {
			return nil, false, fmt.Errorf("leave: %w", err)
		}
		groups, err := asList(t[3])
		if err != nil {
			return nil, false, fmt.Errorf("leave: groups: %w", err)
		}
		return pgLeave{peer: peer, pids: pids, groups: []etf.Term(groups)}, true, nil
	}
	return nil, false, nil
}

// parseForward reads a forward_to_local; ok is false for other messages.
func parseForward(m etf.Term) (f forward, ok bool, err error) {
	t, isTuple := m.(etf.Tuple)
	if !isTuple || len(t) == 0 || t[0] != atomForward {
		return f, false, nil
	}
	if len(t) != 5 {
		return f, false, fmt.Errorf("forward_to_local: %d elements", len(t))
	}
	switch from := t[1].(type) {
	case etf.Pid:
		f.from, f.hasFrom = from, true
	case etf.Atom:
		// none, or any atom: erlbus compares it with subscriber pids only.
	default:
		return f, false, fmt.Errorf("forward_to_local: from is %T", t[1])
	}
	switch n := t[2].(type) {
	case int:
		f.poolSize = n
	case int64:
		f.poolSize = int(n)
	}
	topic, err := topicOf(t[3])
	if err != nil {
		return f, false, fmt.Errorf("forward_to_local: %w", err)
	}
	f.topic, f.msg = topic, t[4]
	return f, true, nil
}

// parseSubsQuery reads {tavern_bus_subscribers, Topic}.
func parseSubsQuery(m etf.Term) (topic string, ok bool) {
	t, isTuple := m.(etf.Tuple)
	if !isTuple || len(t) != 2 || t[0] != atomSubsQuery {
		return "", false
	}
	topic, err := topicOf(t[1])
	return topic, err == nil
}

// topicOf turns a topic term into the Go topic. erlbus makes every topic
// a binary (ebus_common:to_bin); a charlist or an atom is read as its
// text too, which is what to_bin would have made of it.
func topicOf(t etf.Term) (string, error) {
	switch v := t.(type) {
	case []byte:
		return string(v), nil
	case string:
		return v, nil
	case etf.String:
		return string(v), nil
	case etf.Charlist:
		return string(v), nil
	case etf.Atom:
		return string(v), nil
	case etf.List:
		var b strings.Builder
		for _, e := range v {
			var r rune
			switch c := e.(type) {
			case int:
				r = rune(c)
			case int64:
				r = rune(c)
			default:
				return "", fmt.Errorf("topic: list element %T", e)
			}
			if !utf8.ValidRune(r) {
				return "", fmt.Errorf("topic: bad character %d", r)
			}
			b.WriteRune(r)
		}
		return b.String(), nil
	}
	return "", fmt.Errorf("topic is %T, want a binary", t)
}

// asList accepts a proper list; Ergo decodes [] as an empty etf.List.
func asList(t etf.Term) (etf.List, error) {
	switch l := t.(type) {
	case etf.List:
		return l, nil
	case nil:
		return nil, nil
	}
	return nil, fmt.Errorf("%T is not a list", t)
}

// asPids reads [Pid] or, if bare, also Pid.
func asPids(t etf.Term, bare bool) ([]etf.Pid, error) {
	if p, isPid := t.(etf.Pid); isPid && bare {
		return []etf.Pid{p}, nil
	}
	l, err := asList(t)
	if err != nil {
		return nil, err
	}
	pids := make([]etf.Pid, 0, len(l))
	for _, e := range l {
		p, isPid := e.(etf.Pid)
		if !isPid {
			return nil, fmt.Errorf("%T in a list of pids", e)
		}
		pids = append(pids, p)
	}
	return pids, nil
}

// groupKey maps a pg group (any Erlang term) to a map key: two keys are
// equal exactly when the terms are. Atoms, the common case, are cheap.
func groupKey(g etf.Term) string {
	if a, isAtom := g.(etf.Atom); isAtom {
		return "a" + string(a)
	}
	var b strings.Builder
	termKey(&b, g)
	return b.String()
}

// termKey writes a type-tagged, length-prefixed rendering of t; maps are
// rendered in the order of their keys' renderings.
func termKey(b *strings.Builder, t etf.Term) {
	str := func(tag byte, s string) {
		b.WriteByte(tag)
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	seq := func(tag byte, l []etf.Term) {
		b.WriteByte(tag)
		b.WriteString(strconv.Itoa(len(l)))
		b.WriteByte('(')
		for _, e := range l {
			termKey(b, e)
		}
		b.WriteByte(')')
	}
	switch v := t.(type) {
	case etf.Atom:
		str('a', string(v))
	case []byte:
		str('b', string(v))
	case string:
		str('s', v)
	case etf.Tuple:
		seq('T', v)
	case etf.List:
		seq('L', v)
	case etf.Map:
		keys := make([]string, 0, len(v))
		byKey := make(map[string]etf.Term, len(v))
		for k, e := range v {
			var kb strings.Builder
			termKey(&kb, k)
			keys = append(keys, kb.String())
			byKey[kb.String()] = e
		}
		sort.Strings(keys)
		b.WriteString("M(")
		for _, k := range keys {
			b.WriteString(k)
			termKey(b, byKey[k])
		}
		b.WriteByte(')')
	default:
		str('x', fmt.Sprintf("%T:%#v", v, v))
	}
}
