package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"
	"github.com/ergo-services/ergo/node"

	"github.com/tavernhq/tavern/internal/ergonode"
	"github.com/tavernhq/tavern/internal/sysconfig"
)

// DialOptions shape an attach.
type DialOptions struct {
	// Timeout bounds reaching the node: EPMD, TCP and the handshake
	// together. 0 is 5 s.
	Timeout time.Duration
	// CallTimeout bounds each request. 0 is 10 s; it is rounded up to
	// whole seconds (Ergo's unit).
	CallTimeout time.Duration
}

// Client is an attached console: a node of its own, named
// console-<random hex>@<the target's host>, connected with the target's
// cookie. It registers with no EPMD (nothing needs to find it) and is not
// a cluster member (it sends no heartbeat).
//
// Ergo 2.2.4 cannot announce a node as hidden in the handshake, so an
// Erlang peer would list the console in nodes() rather than
// nodes(hidden); Tavern nodes do not care, their cluster is the nodes
// that heartbeat.
type Client struct {
	target      string
	addr        string
	node        node.Node
	caller      gen.Process
	callTimeout time.Duration
}

// callRequest asks the caller process to gen_server:call the target.
type callRequest struct {
	to      gen.ProcessID
	msg     etf.Term
	timeout int // seconds
}

// caller makes gen_server calls on the client's behalf: Ergo calls are
// made from inside a process's callback.
type caller struct{ gen.Server }

func (c *caller) HandleDirect(process *gen.ServerProcess, ref etf.Ref, message interface{}) (interface{}, gen.DirectStatus) {
	m, ok := message.(callRequest)
	if !ok {
		return nil, lib.ErrUnsupportedRequest
	}
	return process.CallWithTimeout(m.to, m.msg, m.timeout)
}

// Dial attaches to the node that cfg (its sys.config) describes: it finds
// the node's distribution port (through the node's EPMD, or the fixed
// port of its dist_listen), starts the console's own node with the same
// cookie and connects. Failures wrap ErrUnreachable or ErrRefused and say
// what to check; none shows the cookie.
func Dial(ctx context.Context, cfg *sysconfig.Config, o DialOptions) (*Client, error) {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	target := cfg.Node.Name
	_, host, ok := strings.Cut(target, "@")
	if !ok || host == "" {
		return nil, fmt.Errorf("node name %q: want name@host", target)
	}
	addr, err := locate(ctx, cfg, host)
	if err != nil {
		return nil, err
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	tls := cfg.Node.DistTLS
	o2 := ergonode.Options{
		Name:       "console-" + hex.EncodeToString(rnd[:]) + "@" + host,
		Cookie:     cfg.Node.Cookie.Reveal(),
		DistListen: "127.0.0.1:0",
		EPMDPort:   0, // register nowhere; the target is reached by a static route
	}
	if tls != nil {
		o2.SelfSignedTLS = tls.Cert == ""
		o2.TLSCert, o2.TLSKey = tls.Cert, tls.Key
	}
	n, err := ergonode.Start(context.Background(), o2)
	if err != nil {
		return nil, fmt.Errorf("start the console's node: %w", err)
	}
	c := &Client{target: target, addr: addr, node: n, callTimeout: o.CallTimeout}
	ahost, aport, _ := net.SplitHostPort(addr)
	port, _ := strconv.ParseUint(aport, 10, 16)
	if err := n.AddStaticRoute(target, ahost, uint16(port), node.RouteOptions{}); err != nil {
		c.Close()
		return nil, fmt.Errorf("route to %s: %w", target, err)
	}
	if c.caller, err = n.Spawn("", gen.ProcessOptions{}, &caller{}); err != nil {
		c.Close()
		return nil, fmt.Errorf("start the console's caller: %w", err)
	}
	if err := c.connect(ctx, cfg); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// locate returns host:port of the target's distribution listener.
func locate(ctx context.Context, cfg *sysconfig.Config, host string) (string, error) {
	alive, _, _ := strings.Cut(cfg.Node.Name, "@")
	lhost, lport, err := net.SplitHostPort(cfg.Node.DistListen)
	if err != nil {
		return "", fmt.Errorf("dist_listen %q: %w", cfg.Node.DistListen, err)
	}
	if ip := net.ParseIP(lhost); lhost == "" || (ip != nil && ip.IsUnspecified()) {
		lhost = host
	}
	fixed := lport != "0"
	if cfg.Node.EPMDPort == 0 {
		if !fixed {
			return "", fmt.Errorf("%w: %s has no EPMD (epmd_port 0) and no fixed dist_listen port", ErrUnreachable, cfg.Node.Name)
		}
		return net.JoinHostPort(lhost, lport), nil
	}
	epmd := net.JoinHostPort(host, strconv.Itoa(cfg.Node.EPMDPort))
	port, err := epmdPort(ctx, epmd, alive)
	switch {
	case err == nil:
		return net.JoinHostPort(host, strconv.Itoa(int(port))), nil
	case errors.Is(err, errNotRegistered):
		return "", fmt.Errorf("%w: %s is not running: it is not registered with the EPMD at %s", ErrUnreachable, cfg.Node.Name, epmd)
	case fixed:
		// No EPMD answering: try the configured address.
		return net.JoinHostPort(lhost, lport), nil
	}
	return "", fmt.Errorf("%w: %s: EPMD at %s: %v", ErrUnreachable, cfg.Node.Name, epmd, err)
}

// connect connects to the target within ctx, and explains a failure.
func (c *Client) connect(ctx context.Context, cfg *sysconfig.Config) error {
	done := make(chan error, 1)
	go func() { done <- c.node.Connect(c.target) }()
	select {
	case err := <-done:
		if err == nil {
			return nil
		}
	case <-ctx.Done():
		return fmt.Errorf("%w: no answer from %s at %s in time", ErrUnreachable, c.target, c.addr)
	}
	// Ergo says only "no route to node": find out whether anything
	// listens there at all.
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(context.WithoutCancel(ctx), "tcp", c.addr)
	if err != nil {
		return fmt.Errorf("%w: %s at %s: %v", ErrUnreachable, c.target, c.addr, err)
	}
	conn.Close()
	where := "the configuration"
	if cfg.Path != "" {
		where = cfg.Path
	}
	return fmt.Errorf("%w: %s at %s refused the handshake: the cookie in %s is not the node's (or another node listens there)",
		ErrRefused, c.target, c.addr, where)
}

// Target is the name of the node the client is attached to.
func (c *Client) Target() string { return c.target }

// Name is the console's own node name.
func (c *Client) Name() string { return c.node.Name() }

// Call sends req to the target's tavern_console and returns its reply as
// is.
func (c *Client) Call(req etf.Term) (etf.Term, error) {
	secs := int((c.callTimeout + time.Second - 1) / time.Second)
	v, err := c.caller.DirectWithTimeout(callRequest{
		to: gen.ProcessID{Name: ServerName, Node: c.target}, msg: req, timeout: secs,
	}, secs+1)
	switch {
	case err == nil:
		return v, nil
	case errors.Is(err, lib.ErrTimeout):
		return nil, fmt.Errorf("%w: %s did not answer within %ds", ErrTimeout, c.target, secs)
	case errors.Is(err, lib.ErrNoRoute):
		return nil, fmt.Errorf("%w: connection to %s lost", ErrUnreachable, c.target)
	}
	return nil, fmt.Errorf("call %s: %w", c.target, err)
}

// Do runs a console command: it builds the request, calls, and returns
// the reply's value (nil for ok, X for {ok, X}); an {error, Reason} reply
// is a *ReplyError.
func (c *Client) Do(command string, args []string) (etf.Term, error) {
	req, err := Build(command, args)
	if err != nil {
		return nil, err
	}
	v, err := c.Call(req)
	if err != nil {
		return nil, err
	}
	return Interpret(v)
}

// Interpret reads a reply of tavern_console: ok is (nil, nil), {ok, X} is
// (X, nil), {error, Reason} is a *ReplyError; anything else is returned as
// is.
func Interpret(reply etf.Term) (etf.Term, error) {
	if reply == atomOK {
		return nil, nil
	}
	if t, ok := reply.(etf.Tuple); ok && len(t) == 2 {
		switch t[0] {
		case atomOK:
			return t[1], nil
		case atomError:
			r, ok := text(t[1])
			if !ok {
				r = fmt.Sprint(Plain(t[1]))
			}
			return nil, &ReplyError{Reason: r}
		}
	}
	return reply, nil
}

// Close stops the console's node, which closes its connection.
func (c *Client) Close() {
	c.node.Stop()
	c.node.Wait()
}
