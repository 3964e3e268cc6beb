package bus

import (
	"errors"
	"fmt"
	"sync"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
)

// queryServer is a short-lived process that makes one call for a caller
// that may not be a gen.Server (only a gen.Server can Call in Ergo) or
// must not wait on the network in its own mailbox loop.
type queryServer struct{ gen.Server }

type queryRequest struct {
	to      etf.Pid
	msg     etf.Term
	timeout int // seconds
}

func (q *queryServer) HandleDirect(sp *gen.ServerProcess, ref etf.Ref, message interface{}) (interface{}, gen.DirectStatus) {
	r, ok := message.(queryRequest)
	if !ok {
		return nil, fmt.Errorf("bus: query: unexpected %T", message)
	}
	v, err := sp.CallWithTimeout(r.to, r.msg, r.timeout)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// remoteSubscribers asks every other node's bus server, in parallel, for
// its local subscribers of topic. An erlbus node answers ok: it is
// skipped, its subscribers are unknown here (erlbus itself asks with
// rpc:multicall, which Ergo does not serve). The pids of the nodes that
// answered are returned with an error naming the ones that did not.
func (in *instance) remoteSubscribers(p gen.Process, topic string) ([]etf.Pid, error) {
	var members []etf.Pid
	for _, m := range in.view.remote(groupKey(groupServer)) {
		if in.isConnected(m.Node) {
			members = append(members, m)
		}
	}
	if len(members) == 0 {
		return nil, nil
	}
	secs := in.cfg.querySeconds()
	out := make([][]etf.Pid, len(members))
	errs := make([]error, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = querySubscribers(p, m, topic, secs)
		}()
	}
	wg.Wait()
	var pids []etf.Pid
	for _, l := range out {
		pids = append(pids, l...)
	}
	return pids, errors.Join(errs...)
}

func querySubscribers(p gen.Process, member etf.Pid, topic string, secs int) ([]etf.Pid, error) {
	h, err := p.Spawn("", gen.ProcessOptions{MailboxSize: 16}, &queryServer{})
	if err != nil {
		return nil, fmt.Errorf("bus: subscribers of %s: %w", member.Node, err)
	}
	defer h.Kill()
	v, err := h.DirectWithTimeout(queryRequest{to: member, msg: subsQueryMsg(topic), timeout: secs}, secs+1)
	if err != nil {
		return nil, fmt.Errorf("bus: subscribers of %s: %w", member.Node, err)
	}
	l, isList := v.(etf.List)
	if !isList {
		return nil, nil // erlbus: ok
	}
	pids := make([]etf.Pid, 0, len(l))
	for _, e := range l {
		// A node reports its own processes only.
		if pid, isPid := e.(etf.Pid); isPid && pid.Node == member.Node {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
