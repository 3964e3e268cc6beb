package bus

import (
	"errors"
	"fmt"
	"time"
)

// Config is what a node may tune of its bus. The names of the scope
// (ebus_ps_pg), the bus server and its group (ebus_ps) are erlbus 0.3's
// defaults and are fixed: they are the wire contract.
type Config struct {
	// PoolSize is the PoolSize field of the forward_to_local messages this
	// node sends. An Erlang node running erlbus fans a forwarded message
	// out over the shards 0..PoolSize-1 of its own pool, so this must equal
	// the erlbus pool_size of the Erlang nodes in the cluster (erlbus's
	// default is 1). Go nodes ignore the field. 1 to 1024.
	PoolSize int
	// Mailbox is the mailbox size of the bus server, the one process that
	// receives every publish from every other node. When it is full, Ergo
	// hands further messages to the fallback process, which counts them as
	// Shed. At the maximum, 65535, a full burst of ~300k msg/s between two
	// nodes is absorbed for ~200 ms; the three queues Ergo sizes after it
	// cost about 10 MB. 16 to 65535.
	Mailbox int
	// Directbox is the queue of Sub and Unsub requests to the bus server;
	// when it is full Sub returns ErrBusy at once. 16 to 65535.
	Directbox int
	// QueryTimeout bounds each remote node's answer to Subscribers (and
	// Dispatch when no local subscriber exists); nodes are asked in
	// parallel. Ergo counts call timeouts in whole seconds, so this is
	// rounded up to one. 1s to 60s.
	QueryTimeout time.Duration
}

// DefaultConfig returns the settings a node runs with unless told
// otherwise.
func DefaultConfig() Config {
	return Config{
		PoolSize:     1,     // erlbus's default pool_size
		Mailbox:      65535, // Ergo's maximum: the node's only ingress of remote publishes
		Directbox:    4096,  // a burst of 4096 concurrent Sub/Unsub before ErrBusy
		QueryTimeout: 2 * time.Second,
	}
}

// Validate lists every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	check := func(name string, v, lo, hi int) {
		if v < lo || v > hi {
			errs = append(errs, fmt.Errorf("bus.%s: must be between %d and %d, got %d", name, lo, hi, v))
		}
	}
	check("pool_size", c.PoolSize, 1, 1024)
	check("mailbox", c.Mailbox, 16, 65535)
	check("directbox", c.Directbox, 16, 65535)
	if c.QueryTimeout < time.Second || c.QueryTimeout > time.Minute {
		errs = append(errs, fmt.Errorf("bus.query_timeout: must be between 1s and 60s, got %v", c.QueryTimeout))
	}
	return errors.Join(errs...)
}

// querySeconds is QueryTimeout in Ergo's whole seconds, rounded up.
func (c Config) querySeconds() int {
	s := int((c.QueryTimeout + time.Second - 1) / time.Second)
	return max(s, 1)
}
