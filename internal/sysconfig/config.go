// Package sysconfig owns Tavern's configuration: the typed Config with its
// defaults, loading it from a sys.config file (Erlang term text, one
// {Section, [{Key, Value}]} per application) with environment overrides,
// validating it with every problem reported at once as file:line:col, and
// rendering it back (Render). Secrets in it never reach logs or errors.
package sysconfig

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
)

// Config is a node's whole configuration. Default returns the defaults;
// Parse and Load read it from a sys.config.
type Config struct {
	// Path is the file the configuration was read from ("" if none).
	Path    string
	Node    Node
	Gateway Gateway
	Store   Store
	Board   Board
	Cluster Cluster
}

// Node is the {node, [...]} section: the node's identity in Erlang
// distribution.
type Node struct {
	// Name (name) is the node name, name@host. Default
	// "tavern-dev@127.0.0.1". TAVERN_NODE overrides it.
	Name string
	// Cookie (cookie) is the distribution cookie; nodes connect only with
	// the same cookie. No default: it must be set, in the file or by
	// TAVERN_COOKIE. At most 255 characters. It never appears in output.
	Cookie Secret
	// DistListen (dist_listen) is the host:port Erlang distribution
	// listens on, a private address; port 0 picks a free one. Default
	// "127.0.0.1:25100".
	DistListen string
	// EPMDPort (epmd_port) is the port of this host's EPMD, which maps
	// node names to distribution ports for peers and for `erl`. The first
	// node on a host serves it on 127.0.0.1 only, later ones register
	// with it. 0 turns EPMD off: peers are then found by static routes
	// only (seeds with their dist address, or the nodes table). Default
	// 4369, Erlang's.
	EPMDPort int
	// DistTLS (dist_tls) enables TLS for distribution: false (the
	// default, nil), true (a self-signed certificate: a TLSFiles with
	// empty paths) or [{cert, Path}, {key, Path}].
	DistTLS *TLSFiles
	// LogLevel (log_level) is debug, info, warn or error. Default info.
	LogLevel string
	// AllowInsecureConfig (allow_insecure_config) lets Load accept a
	// config file that gives other users access (mode wider than 0600).
	// For development only: the repository's sys.config, checked out
	// 0644, sets it; `make release` writes 0600 without it. Default false.
	AllowInsecureConfig bool
}

// TLSFiles names a PEM certificate chain and its private key.
type TLSFiles struct {
	Cert string
	Key  string
}

// Gateway is the {gateway, [...]} section: the public HTTP and WebSocket
// listener and the limits it enforces on clients.
type Gateway struct {
	// Listen (listen) is the host:port of the WebSocket listener.
	// Default "127.0.0.1:8080".
	Listen string
	// Auth (auth) is how clients authenticate: dev (the default) or
	// {jwt, Secret}.
	Auth Auth
	// MaxFrame (max_frame) is the largest frame a client may send, in
	// bytes, 512 to 64 MiB. Default 65536.
	MaxFrame int
	// OpsPerSec (ops_per_sec) is each client's sustained op rate (an
	// integer or a float). Default 200.
	OpsPerSec float64
	// OpsBurst (ops_burst) is how many ops a client may send at once
	// above that rate. Default 200.
	OpsBurst int
	// PingIntervalMs (ping_interval_ms) is how often the server pings a
	// client. Default 10000.
	PingIntervalMs int
	// PingTimeoutMs (ping_timeout_ms) closes a client silent for this
	// long; it must exceed PingIntervalMs. Default 30000.
	PingTimeoutMs int
	// HelloTimeoutMs (hello_timeout_ms) is how long a new connection
	// has to send its hello. Default 10000.
	HelloTimeoutMs int
	// AnswerTimeoutMs (answer_timeout_ms) is how long a session waits
	// for a board's answer to a join or an op before it answers the client
	// "unavailable" (an op is then retried with the same id). Default 10000.
	AnswerTimeoutMs int
	// HandshakeTimeoutMs (handshake_timeout_ms) bounds the HTTP and
	// WebSocket handshake. Default 10000.
	HandshakeTimeoutMs int
	// OutboundQueue (outbound_queue) is how many messages are buffered
	// for a client before it is closed with 1013 (try again later).
	// Default 1024.
	OutboundQueue int
	// TLS (tls) serves HTTPS and wss from [{cert, Path}, {key, Path}],
	// TLS 1.2 or later; plain HTTP is then off. The files are looked at
	// again at most every 2 s and a renewed pair is served without a
	// restart. Default none (nil).
	TLS *TLSFiles
	// RedirectHTTP (redirect_http) is the listen address of a plain-HTTP
	// server that redirects to the TLS listener; it needs TLS. Default
	// "" (none).
	RedirectHTTP string
	// Origins (origins) are the browser origins allowed to connect,
	// like "https://play.example", compared exactly (no wildcards); the
	// node's own page is always allowed, any other Origin gets 403.
	// Default none.
	Origins []string
	// AllowNoOrigin (allow_no_origin) admits clients that send no Origin
	// header (non-browser clients). Default true.
	AllowNoOrigin bool
	// MaxConns (max_conns) caps the node's WebSocket connections.
	// Default 10000.
	MaxConns int
	// MaxConnsPerIP (max_conns_per_ip) caps connections from one IP
	// address; at most MaxConns. Default 256.
	MaxConnsPerIP int
	// ConnRatePerIP (conn_rate_per_ip) is the new connections per second
	// one IP address may open. Default 50.
	ConnRatePerIP float64
}

// Auth is how clients authenticate.
type Auth struct {
	// Mode is "dev" (clients name themselves; for development) or
	// "jwt" (clients present a JWT signed with Secret).
	Mode string
	// Secret is the JWT signing key (at least 32 bytes) in jwt mode,
	// empty in dev mode. It never appears in output.
	Secret Secret
}

// Store is the {store, [...]} section: the database.
type Store struct {
	// DSN (dsn) is "sqlite:" followed by a file path, or a
	// postgres:// (or postgresql://) URL. TAVERN_DSN overrides it.
	// Default "sqlite:data/tavern.db".
	DSN string
	// BatchMax (batch_max) is the most ops in one group commit. Default
	// 512.
	BatchMax int
	// FlushMs (flush_ms) is the longest an op waits for its group
	// commit. Default 1 (at 1,900 ops/s on 2 cores it gave a lower p50
	// and p99 than 2 or 0).
	FlushMs int
	// SnapshotEvery (snapshot_every) is the ops between two snapshots of
	// a board. Default 500.
	SnapshotEvery int
	// PoolSize (pool_size) is the number of database connections.
	// Default 8.
	PoolSize int
}

// Board is the {board, [...]} section: the per-board actors.
type Board struct {
	// IdleMs (idle_ms) passivates a board with no activity for this
	// long. Default 300000.
	IdleMs int
	// MaxPutEntities (max_put_entities) is the most entities one op may
	// put; at most MaxEntities. Default 1000.
	MaxPutEntities int
	// MaxEntities (max_entities) is the most entities on a board.
	// Default 100000.
	MaxEntities int
	// MaxPropsBytes (max_props_bytes) is the largest encoded props of
	// one entity; at most Gateway.MaxFrame. Default 65536.
	MaxPropsBytes int
	// ReplayKeep (replay_keep) is how many recent ops a board keeps in
	// memory to answer join-since; at least 1000. Default 1000.
	ReplayKeep int
	// DedupKeep (dedup_keep) is how many op ids a board remembers to
	// drop duplicates; at least 10000. Default 10000.
	DedupKeep int
	// MaxRestarts (max_restarts) and RestartWindowMs
	// (restart_window_ms) are the crash limit: a board that crashes more
	// than MaxRestarts times within RestartWindowMs stays down, as in
	// OTP's restart intensity. Defaults 5 and 10000.
	MaxRestarts     int
	RestartWindowMs int
	// Mailbox (mailbox) is the size of a board actor's mailbox, 1 to
	// 65535. Default 2048: a Go channel allocates all of it up front
	// (about 48 bytes a slot), so 65535 would cost 3 MB per board. A
	// local sender that finds it full is told so and answers
	// "unavailable"; nothing is dropped silently.
	Mailbox int
}

// Cluster is the {cluster, [...]} section: finding the other nodes.
type Cluster struct {
	// Seeds (seeds) are node names to connect to at start. Default none.
	Seeds []string
	// Discovery (discovery) is none (the default: seeds only) or
	// postgres (a nodes table in the store's database, which must then
	// be Postgres).
	Discovery string
	// HeartbeatMs (heartbeat_ms) is how often a node reports itself
	// alive. Default 1000.
	HeartbeatMs int
	// DownAfterMs (down_after_ms) declares a node down after this long
	// without a heartbeat; it must exceed HeartbeatMs. Default 5000.
	DownAfterMs int
}

// Default returns the default configuration. It has no cookie, which
// every real configuration must set, so it does not Validate as is.
func Default() Config {
	return Config{
		Node: Node{
			Name:       "tavern-dev@127.0.0.1",
			DistListen: "127.0.0.1:25100",
			EPMDPort:   4369,
			LogLevel:   "info",
		},
		Gateway: Gateway{
			Listen:             "127.0.0.1:8080",
			Auth:               Auth{Mode: "dev"},
			MaxFrame:           65536,
			OpsPerSec:          200,
			OpsBurst:           200,
			PingIntervalMs:     10000,
			PingTimeoutMs:      30000,
			HelloTimeoutMs:     10000,
			HandshakeTimeoutMs: 10000,
			AnswerTimeoutMs:    10000,
			OutboundQueue:      1024,
			AllowNoOrigin:      true,
			MaxConns:           10000,
			MaxConnsPerIP:      256,
			ConnRatePerIP:      50,
		},
		Store: Store{
			DSN:           "sqlite:data/tavern.db",
			BatchMax:      512,
			FlushMs:       1,
			SnapshotEvery: 500,
			PoolSize:      8,
		},
		Board: Board{
			IdleMs:          300000,
			MaxPutEntities:  1000,
			MaxEntities:     100000,
			MaxPropsBytes:   65536,
			ReplayKeep:      1000,
			DedupKeep:       10000,
			MaxRestarts:     5,
			RestartWindowMs: 10000,
			Mailbox:         2048,
		},
		Cluster: Cluster{
			Discovery:   "none",
			HeartbeatMs: 1000,
			DownAfterMs: 5000,
		},
	}
}

const redacted = "<redacted>"

// Secret is a string that is never printed: fmt (every verb, %#v too),
// slog and encoding.TextMarshaler (so JSON) all see "<redacted>". Reveal
// returns the value. Config and Store also keep the password of a DSN out
// of fmt, slog and JSON output.
type Secret string

// Reveal returns the secret's value, for the code that uses it.
func (s Secret) Reveal() string { return string(s) }

// String returns "<redacted>".
func (s Secret) String() string { return redacted }

// GoString returns "<redacted>", for %#v.
func (s Secret) GoString() string { return redacted }

// Format writes "<redacted>" whatever the verb.
func (s Secret) Format(f fmt.State, _ rune) { io.WriteString(f, redacted) }

// LogValue returns "<redacted>", for log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText returns "<redacted>", for encoding/json and others.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// String renders the whole configuration on one line, as section.key=value
// pairs in sys.config syntax, with secrets redacted (see Redacted).
func (c Config) String() string { return renderLine(c.Redacted()) }

// Format writes String whatever the verb, so that no fmt verb (%#v
// included) prints the configuration unredacted.
func (c Config) Format(f fmt.State, _ rune) { io.WriteString(f, c.String()) }

// LogValue renders the configuration for log/slog, as a group per
// section, with secrets redacted.
func (c Config) LogValue() slog.Value { return logValue(c.Redacted()) }

// MarshalJSON encodes the configuration with secrets redacted.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config // without the methods, so no recursion
	return json.Marshal(plain(c.Redacted()))
}

// MarshalJSON encodes the section with the DSN's password redacted.
func (s Store) MarshalJSON() ([]byte, error) {
	type plain Store
	p := plain(s)
	p.DSN = RedactDSN(s.DSN)
	return json.Marshal(p)
}

// Format writes the section with the DSN's password redacted, whatever
// the verb.
func (s Store) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "{DSN:%s BatchMax:%d FlushMs:%d SnapshotEvery:%d PoolSize:%d}",
		RedactDSN(s.DSN), s.BatchMax, s.FlushMs, s.SnapshotEvery, s.PoolSize)
}

// Redacted returns a copy of c that is safe to log: the cookie and the
// JWT secret replaced with "<redacted>", and any password in the DSN
// with "xxxxx".
func (c Config) Redacted() Config {
	r := c
	if r.Node.Cookie != "" {
		r.Node.Cookie = redacted
	}
	if r.Gateway.Auth.Secret != "" {
		r.Gateway.Auth.Secret = redacted
	}
	r.Store.DSN = RedactDSN(c.Store.DSN)
	return r
}

// RedactDSN returns dsn with any password in it (the URL's, or a
// password= parameter) replaced with "xxxxx". A sqlite: DSN is returned as
// is; anything but a sqlite: DSN or a valid postgres URL is replaced whole,
// since there is no telling what in it is secret.
func RedactDSN(dsn string) string {
	if strings.HasPrefix(dsn, "sqlite:") {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil || !isPostgresDSN(dsn) {
		return "<redacted: not a sqlite: or postgres:// DSN>"
	}
	q := u.Query()
	changed := false
	for k := range q {
		if strings.Contains(strings.ToLower(k), "password") {
			q.Set(k, "xxxxx")
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

func isPostgresDSN(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}
