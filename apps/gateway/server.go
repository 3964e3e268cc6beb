package gateway

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
)

// server is tavern_gateway: it owns the HTTP server (through the hub) and
// answers the operator's requests about this node's clients.
type server struct {
	gen.Server
}

// Requests tavern_gateway answers (gen.Server calls).
type (
	noticeRequest  struct{ Text string }
	clientsRequest struct{}
	drainRequest   struct{}
)

// ClientInfo describes one connected client that said hello.
type ClientInfo struct {
	Session     string    // the session id on this node, as in the logs
	User        string    // the authenticated user
	RemoteAddr  string    // ip:port the client connects from
	Boards      []string  // boards joined, sorted
	ConnectedAt time.Time // when the WebSocket opened
}

func (s *server) Init(process *gen.ServerProcess, args ...etf.Term) error {
	h := args[0].(*hub)
	sup := process.ProcessByName(SessionSupName)
	if sup == nil {
		return fmt.Errorf("gateway: %s is not running", SessionSupName)
	}
	if err := h.start(sup); err != nil {
		return err
	}
	process.State = h
	return nil
}

// HandleDirect answers the package's API functions, which may be called
// from any process (or goroutine) of the node.
func (s *server) HandleDirect(process *gen.ServerProcess, ref etf.Ref, message interface{}) (interface{}, gen.DirectStatus) {
	h := process.State.(*hub)
	switch m := message.(type) {
	case noticeRequest:
		return h.notice(m.Text), gen.DirectStatusOK
	case clientsRequest:
		list := h.clients()
		sort.Slice(list, func(i, j int) bool { return list[i].ConnectedAt.Before(list[j].ConnectedAt) })
		return list, gen.DirectStatusOK
	case drainRequest:
		n := h.drain()
		h.log.Info("draining: clients closed with 1012", "clients", n)
		return n, gen.DirectStatusOK
	}
	return nil, fmt.Errorf("gateway: unknown request %T", message)
}

func (s *server) Terminate(process *gen.ServerProcess, reason string) {
	h, ok := process.State.(*hub)
	if !ok {
		return
	}
	if reason == "panic" {
		// A crash of this process alone: its supervisor restarts it and it
		// listens again; the clients stay connected.
		h.stopListening()
		h.mu.Lock()
		h.draining = false
		h.mu.Unlock()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopBound)
	defer cancel()
	_ = h.shutdown(ctx, closeGoingAway, "server going away")
	h.log.Info("gateway stopped")
}

// Notice sends {"t":"notice","text":text} to every client of this node that
// said hello. process is any process of the node.
func Notice(process gen.Process, text string) error {
	_, err := call(process, noticeRequest{Text: text})
	return err
}

// Clients lists this node's clients that said hello, oldest first.
func Clients(process gen.Process) ([]ClientInfo, error) {
	v, err := call(process, clientsRequest{})
	if err != nil {
		return nil, err
	}
	list, _ := v.([]ClientInfo)
	return list, nil
}

// Drain stops taking clients on this node (/ws and /readyz answer 503)
// and closes every client with 1012, so they reconnect elsewhere before a
// deploy. It returns how many clients it closed. /healthz and /metrics
// keep answering until the node stops.
func Drain(process gen.Process) (int, error) {
	v, err := call(process, drainRequest{})
	if err != nil {
		return 0, err
	}
	n, _ := v.(int)
	return n, nil
}

func call(process gen.Process, req any) (any, error) {
	p := process.ProcessByName(ServerName)
	if p == nil {
		return nil, ErrNotRunning
	}
	v, err := p.Direct(req)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	return v, nil
}

// The running gateways of this OS process, for SetOpsRate.
var gateways struct {
	sync.Mutex
	hubs map[*hub]struct{}
}

func register(h *hub) {
	gateways.Lock()
	defer gateways.Unlock()
	if gateways.hubs == nil {
		gateways.hubs = make(map[*hub]struct{})
	}
	gateways.hubs[h] = struct{}{}
}

func unregister(h *hub) {
	gateways.Lock()
	defer gateways.Unlock()
	delete(gateways.hubs, h)
}

// SetOpsRate changes the op rate limit (a token bucket of burst, refilled
// at perSec per second) of every session, current and new, of every
// gateway in this OS process (a node runs one). Sessions pick it up on
// their next op. Welcome messages announce the new values.
func SetOpsRate(perSec float64, burst int) error {
	gateways.Lock()
	defer gateways.Unlock()
	for h := range gateways.hubs {
		if err := h.setOpsRate(perSec, burst); err != nil {
			return err
		}
	}
	return nil
}
