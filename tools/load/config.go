package load

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"
)

// Config shapes a load run.
type Config struct {
	// URLs are the nodes' WebSocket endpoints (ws://host:port/ws or
	// wss://...). Client i connects first to URLs[i%len(URLs)], so the
	// members of every board are spread evenly over the nodes; after a
	// lost connection it tries the next one.
	URLs []string
	// Clients is the number of clients (one connection and one user each).
	Clients int
	// BoardSize is the number of members of each board: clients
	// 0..BoardSize-1 share the first board, and so on.
	BoardSize int
	// Prefix starts every board and user name, so runs against the same
	// database do not meet. Default "lg".
	Prefix string
	// Kind is the op the clients send: chat (the default), put, or mix
	// (put, move and chat, so board state changes).
	Kind string
	// Window is the most ops a client has in flight (sent, not acked);
	// an open-loop send that finds it full is shed and counted. Default 64.
	Window int
	// StallTimeout drops a connection on which an op or a join has waited
	// this long for its answer (a hung node), and reconnects elsewhere.
	// Default 10s.
	StallTimeout time.Duration
	// StepSettle bounds the wait after each phase of Fixed, Saturate and
	// FindMax for its ops to be acknowledged and delivered (what is late
	// counts against the phase). Default 5s.
	StepSettle time.Duration
	// DialTimeout bounds connecting and the hello. Default 5s.
	DialTimeout time.Duration
	// ConnectConcurrency is how many clients dial at once while the run
	// connects. Default 64.
	ConnectConcurrency int
	// Record keeps every client's history of every board and every ack,
	// for the chaos checker (memory grows with the run).
	Record bool
	// TLS is used for wss:// URLs (nil: the system roots).
	TLS *tls.Config
	// Log receives reconnects and protocol violations (nil: discarded).
	Log *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Prefix == "" {
		c.Prefix = "lg"
	}
	if c.Kind == "" {
		c.Kind = "chat"
	}
	if c.Window <= 0 {
		c.Window = 64
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = 10 * time.Second
	}
	if c.StepSettle <= 0 {
		c.StepSettle = 5 * time.Second
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.ConnectConcurrency <= 0 {
		c.ConnectConcurrency = 64
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Validate reports every problem of the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	if len(c.URLs) == 0 {
		errs = append(errs, errors.New("no node URL"))
	}
	for _, u := range c.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "ws" && p.Scheme != "wss") || p.Host == "" {
			errs = append(errs, fmt.Errorf("url %q: want ws://host:port/ws or wss://", u))
		}
	}
	if c.Clients < 1 {
		errs = append(errs, errors.New("clients must be at least 1"))
	}
	if c.BoardSize < 1 {
		errs = append(errs, errors.New("board size must be at least 1"))
	}
	switch c.Kind {
	case "", "chat", "put", "mix":
	default:
		errs = append(errs, fmt.Errorf("kind %q: want chat, put or mix", c.Kind))
	}
	if len(c.Prefix) > 40 {
		errs = append(errs, errors.New("prefix longer than 40 bytes"))
	}
	return errors.Join(errs...)
}

// BoardOf is the board client i joins.
func (c *Config) BoardOf(i int) string { return fmt.Sprintf("%s-b%d", c.Prefix, i/c.BoardSize) }

// UserOf is client i's user name.
func (c *Config) UserOf(i int) string { return fmt.Sprintf("%s-u%d", c.Prefix, i) }

// membersOf is the number of members of client i's board.
func (c *Config) membersOf(i int) int {
	first := i / c.BoardSize * c.BoardSize
	return min(c.BoardSize, c.Clients-first)
}
