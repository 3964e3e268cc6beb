package gateway

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/tavernhq/tavern/internal/metrics"
)

// clientKey is the address that the per-client limits count by: the IPv4
// address, or the /64 prefix of an IPv6 address (one subscriber usually
// holds a whole /64, so counting single IPv6 addresses would let one
// client open as many connections as it likes). remote is the TCP peer's
// ip:port; no proxy header is trusted.
func clientKey(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.WithZone("").Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, err := ip.Prefix(64)
	if err != nil {
		return ip.String()
	}
	return p.String()
}

// connGuard caps the TCP connections the gateway's listeners hold open,
// in all and per client (clientKey), whatever state they are in: a TLS
// handshake, HTTP headers arriving slowly, an idle keep-alive, a
// WebSocket. The WebSocket limits (max_conns, max_conns_per_ip) answer an
// upgrade over them with a clear 503 or 429; this guard is the backstop
// behind them against sockets that never get that far: a connection
// beyond it is reset as soon as it is accepted. Its caps leave headroom
// above the WebSocket limits (see rawCap) so that clients at those limits
// still get their status code, and plain HTTP requests still work.
type connGuard struct {
	maxTotal, maxPerIP int

	mu    sync.Mutex
	total int
	perIP map[string]int
}

// rawCap is the guard's cap for a WebSocket limit n.
func rawCap(n int) int { return n + n/4 + 16 }

func newConnGuard(maxConns, maxConnsPerIP int) *connGuard {
	return &connGuard{maxTotal: rawCap(maxConns), maxPerIP: rawCap(maxConnsPerIP), perIP: make(map[string]int)}
}

// Refusal reasons of the guard, as counted in
// tavern_connections_refused_total.
const (
	refusedTCPTotal = "tcp_max_conns"
	refusedTCPPerIP = "tcp_max_conns_per_ip"
)

func (g *connGuard) take(key string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.total >= g.maxTotal {
		return refusedTCPTotal
	}
	if g.perIP[key] >= g.maxPerIP {
		return refusedTCPPerIP
	}
	g.total++
	g.perIP[key]++
	return ""
}

func (g *connGuard) release(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total--
	if n := g.perIP[key] - 1; n > 0 {
		g.perIP[key] = n
	} else {
		delete(g.perIP, key)
	}
}

// open is how many connections the guard counts.
func (g *connGuard) open() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.total
}

// guardListener accepts the connections its guard admits.
type guardListener struct {
	net.Listener
	g *connGuard
}

func (l guardListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := clientKey(c.RemoteAddr().String())
		if reason := l.g.take(key); reason != "" {
			metrics.ConnectionsRefused.WithLabelValues(reason).Inc()
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // a reset: no TIME_WAIT kept for a flood
			}
			_ = c.Close()
			continue
		}
		return &guardedConn{Conn: c, g: l.g, key: key}, nil
	}
}

// guardedConn gives its slot back when it is closed, once.
type guardedConn struct {
	net.Conn
	g      *connGuard
	key    string
	closed atomic.Bool
}

func (c *guardedConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.g.release(c.key)
	}
	return err
}
