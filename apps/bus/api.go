package bus

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
)

// The API takes the calling process, p: its node names the bus, and it is
// the sender of what is published. Publishing never goes through the bus
// server: local subscribers are sent to from p, and each other node of
// group ebus_ps gets one forward_to_local from p, so the order of p's
// publishes is the order its subscribers see, on every node (given
// Ergo's NumHandlers = 1, see internal/ergonode).

// Sub subscribes pid, a process of p's node, to topic. It is idempotent
// (erlbus would deliver twice to a pid subscribed twice; this bus once).
// The subscription is in place when Sub returns: a publish made after it,
// on any node, reaches pid. It ends with Unsub or when pid exits.
func Sub(p gen.Process, topic string, pid etf.Pid) error {
	in, err := check(p, topic, pid)
	if err != nil {
		return err
	}
	if _, err := in.direct(&in.server, subRequest{topic: topic, pid: pid}); err != nil {
		return fmt.Errorf("bus: sub %q: %w", topic, err)
	}
	return nil
}

// Unsub ends pid's subscription to topic; it is not an error if there
// was none.
func Unsub(p gen.Process, topic string, pid etf.Pid) error {
	in, err := check(p, topic, pid)
	if err != nil {
		return err
	}
	if _, err := in.direct(&in.server, unsubRequest{topic: topic, pid: pid}); err != nil {
		return fmt.Errorf("bus: unsub %q: %w", topic, err)
	}
	return nil
}

func check(p gen.Process, topic string, pid etf.Pid) (*instance, error) {
	in, err := lookup(p)
	if err != nil {
		return nil, err
	}
	if topic == "" {
		return nil, ErrBadTopic
	}
	if string(pid.Node) != p.NodeName() {
		return nil, ErrNotLocal
	}
	return in, nil
}

// Pub sends msg to every subscriber of topic on every node, p included if
// it subscribed (erlbus's ebus:pub). Local subscribers get it now, from p;
// every other node of the group gets one forward_to_local message, however
// many subscribers it has (none included), and fans it out there. A node
// that is not connected at the moment is skipped rather than dialled (pg's
// noconnect): Pub never waits for a connection. The error reports the
// nodes a forward could not be sent to; local losses (full mailboxes) are
// counted in Stats, not returned.
func Pub(p gen.Process, topic string, msg etf.Term) error {
	return publish(p, etf.Pid{}, false, topic, msg, nil)
}

// PubExcept is Pub that skips the nodes for which skip returns true: a
// Tavern board, whose own members get its events by the board's fanout,
// publishes so for the other (Erlang) nodes only.
func PubExcept(p gen.Process, topic string, msg etf.Term, skip func(node string) bool) error {
	return publish(p, etf.Pid{}, false, topic, msg, skip)
}

// PubFrom is Pub that skips subscriber from, on every node (erlbus's
// ebus:pub_from): a process publishing on a topic it follows does not get
// its own message back.
func PubFrom(p gen.Process, from etf.Pid, topic string, msg etf.Term) error {
	return publish(p, from, true, topic, msg, nil)
}

func publish(p gen.Process, from etf.Pid, hasFrom bool, topic string, msg etf.Term, skip func(string) bool) error {
	in, err := lookup(p)
	if err != nil {
		return err
	}
	if topic == "" {
		return ErrBadTopic
	}
	in.stats.published.Add(1)
	in.deliverLocal(p, from, hasFrom, topic, msg)
	remote := in.view.remote(groupKey(groupServer))
	if len(remote) == 0 {
		return nil
	}
	var (
		fwd  etf.Term
		errs []error
	)
	for _, m := range remote {
		if skip != nil && skip(string(m.Node)) {
			continue
		}
		if fwd == nil {
			fwd = forwardMsg(from, hasFrom, in.cfg.PoolSize, topic, msg)
		}
		if !in.isConnected(m.Node) {
			in.stats.forwardErrors.Add(1)
			errs = append(errs, fmt.Errorf("bus: pub %q to %s: %w", topic, m.Node, ErrNotConnected))
			continue
		}
		if err := p.Send(m, fwd); err != nil {
			in.stats.forwardErrors.Add(1)
			errs = append(errs, fmt.Errorf("bus: pub %q to %s: %w", topic, m.Node, err))
			continue
		}
		in.stats.forwarded.Add(1)
	}
	return errors.Join(errs...)
}

// PubLocal sends msg to the subscribers of topic on p's node only, and
// returns how many mailboxes took it.
func PubLocal(p gen.Process, topic string, msg etf.Term) (int, error) {
	in, err := lookup(p)
	if err != nil {
		return 0, err
	}
	return in.deliverLocal(p, etf.Pid{}, false, topic, msg), nil
}

// Dispatch sends msg to one subscriber of topic: a random local one if
// there is any whose mailbox takes it, else a random one of another Go
// node (found as Subscribers does, which costs a call per node), else
// ErrNoSubscribers. erlbus's ebus:dispatch with its default local scope
// fails where this one looks further.
func Dispatch(p gen.Process, topic string, msg etf.Term) error {
	in, err := lookup(p)
	if err != nil {
		return err
	}
	var lastErr error
	if local := in.topics.get(topic); len(local) > 0 {
		start := rand.IntN(len(local))
		for i := range local {
			pid := local[(start+i)%len(local)]
			if lastErr = p.Send(pid, msg); lastErr == nil {
				in.stats.dispatched.Add(1)
				return nil
			}
		}
	}
	remote, qerr := in.remoteSubscribers(p, topic)
	if len(remote) == 0 {
		switch {
		case lastErr != nil:
			return fmt.Errorf("bus: dispatch %q: %w", topic, lastErr)
		case qerr != nil:
			return fmt.Errorf("bus: dispatch %q: %w: %w", topic, ErrNoSubscribers, qerr)
		}
		return ErrNoSubscribers
	}
	if err := p.Send(remote[rand.IntN(len(remote))], msg); err != nil {
		return fmt.Errorf("bus: dispatch %q: %w", topic, err)
	}
	in.stats.dispatched.Add(1)
	return nil
}

// Subscribers returns the subscribers of topic on every Go node of the
// cluster, asking the other nodes in parallel (one call each, bounded by
// Config.QueryTimeout). Subscribers on Erlang nodes are not included:
// erlbus learns them with rpc:multicall, which Ergo cannot serve. With the
// pids it could gather, it returns an error naming the nodes that did not
// answer. p may be any process; the calls are made by short-lived helper
// processes.
func Subscribers(p gen.Process, topic string) ([]etf.Pid, error) {
	in, err := lookup(p)
	if err != nil {
		return nil, err
	}
	local := in.topics.get(topic)
	remote, err := in.remoteSubscribers(p, topic)
	out := make([]etf.Pid, 0, len(local)+len(remote))
	return append(append(out, local...), remote...), err
}

// LocalSubscribers returns the subscribers of topic on p's node; it reads
// the table and sends nothing.
func LocalSubscribers(p gen.Process, topic string) []etf.Pid {
	in, err := lookup(p)
	if err != nil {
		return nil
	}
	return append([]etf.Pid(nil), in.topics.get(topic)...)
}

// Members returns the members of group ebus_ps in the scope ebus_ps_pg as
// p's node sees them, its own bus server first: one pid per node whose bus
// (Go or erlbus) it exchanges with.
func Members(p gen.Process) []etf.Pid {
	in, err := lookup(p)
	if err != nil {
		return nil
	}
	return in.view.members(groupKey(groupServer))
}

// ReadStats returns the counters of p's node's bus.
func ReadStats(p gen.Process) (Stats, error) {
	in, err := lookup(p)
	if err != nil {
		return Stats{}, err
	}
	return in.snapshot(), nil
}
