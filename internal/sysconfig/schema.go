package sysconfig

import (
	"math/big"

	"github.com/tavernhq/tavern/internal/erlterm"
)

// The schema lists every section and key of a sys.config, in the order
// Render writes them. Decoding, rendering and the lists of known keys in
// error messages all come from it. Key names are a contract: tools outside
// the project write these files.

type section struct {
	name string
	doc  string
	keys []key
}

type key struct {
	name string
	doc  string // Render writes it as a comment above the key
	// decode sets the field from v, reporting any error; it returns
	// false if it did.
	decode func(d *decoder, field string, v erlterm.Term, c *Config) bool
	// render returns the field's value as a term.
	render func(c *Config) erlterm.Term
}

var schema = []section{
	{"node", "This node's identity in Erlang distribution.", []key{
		strKey("name", "name@host of this node (TAVERN_NODE overrides it).",
			func(c *Config) *string { return &c.Node.Name }),
		{name: "cookie", doc: "Distribution cookie; nodes connect only with the same one (TAVERN_COOKIE overrides it).",
			decode: func(d *decoder, f string, v erlterm.Term, c *Config) bool { return d.secret(f, v, &c.Node.Cookie) },
			render: func(c *Config) erlterm.Term { return erlterm.String{Value: c.Node.Cookie.Reveal()} }},
		strKey("dist_listen", "host:port for Erlang distribution, a private address (port 0: any free port).",
			func(c *Config) *string { return &c.Node.DistListen }),
		intKey("epmd_port", "Port of this host's EPMD (bound to 127.0.0.1; the first node serves it). 0: no EPMD, peers by static route only.",
			func(c *Config) *int { return &c.Node.EPMDPort }),
		{name: "dist_tls", doc: "TLS for distribution: false, true (self-signed) or [{cert, Path}, {key, Path}].",
			decode: func(d *decoder, f string, v erlterm.Term, c *Config) bool { return d.tls(f, v, &c.Node.DistTLS, true) },
			render: func(c *Config) erlterm.Term { return renderTLS(c.Node.DistTLS, true) }},
		enumKey("log_level", "Least severe level logged: debug, info, warn or error.",
			func(c *Config) *string { return &c.Node.LogLevel }, logLevels...),
		boolKey("allow_insecure_config", "Start even if this file is readable by other users.",
			func(c *Config) *bool { return &c.Node.AllowInsecureConfig }),
	}},
	{"gateway", "The public HTTP and WebSocket listener and its limits on clients.", []key{
		strKey("listen", "host:port of the WebSocket listener.",
			func(c *Config) *string { return &c.Gateway.Listen }),
		{name: "auth", doc: "Client authentication: dev (clients name themselves) or {jwt, Secret}.",
			decode: func(d *decoder, f string, v erlterm.Term, c *Config) bool { return d.auth(f, v, &c.Gateway.Auth) },
			render: func(c *Config) erlterm.Term { return renderAuth(c.Gateway.Auth) }},
		intKey("max_frame", "Largest frame a client may send, in bytes.",
			func(c *Config) *int { return &c.Gateway.MaxFrame }),
		floatKey("ops_per_sec", "Sustained ops per second per client.",
			func(c *Config) *float64 { return &c.Gateway.OpsPerSec }),
		intKey("ops_burst", "Ops a client may send at once above that rate.",
			func(c *Config) *int { return &c.Gateway.OpsBurst }),
		intKey("ping_interval_ms", "How often the server pings a client.",
			func(c *Config) *int { return &c.Gateway.PingIntervalMs }),
		intKey("ping_timeout_ms", "Close a client silent for this long (more than ping_interval_ms).",
			func(c *Config) *int { return &c.Gateway.PingTimeoutMs }),
		intKey("hello_timeout_ms", "Time a new connection has to send its hello.",
			func(c *Config) *int { return &c.Gateway.HelloTimeoutMs }),
		intKey("answer_timeout_ms", "Time a join or an op waits for its board's answer before \"unavailable\".",
			func(c *Config) *int { return &c.Gateway.AnswerTimeoutMs }),
		intKey("handshake_timeout_ms", "Time limit of the HTTP and WebSocket handshake.",
			func(c *Config) *int { return &c.Gateway.HandshakeTimeoutMs }),
		intKey("outbound_queue", "Messages buffered per client before it is closed with 1013.",
			func(c *Config) *int { return &c.Gateway.OutboundQueue }),
		{name: "tls", doc: "HTTPS and wss: [{cert, Path}, {key, Path}], or none.",
			decode: func(d *decoder, f string, v erlterm.Term, c *Config) bool { return d.tls(f, v, &c.Gateway.TLS, false) },
			render: func(c *Config) erlterm.Term { return renderTLS(c.Gateway.TLS, false) }},
		strKey("redirect_http", "host:port of a plain-HTTP server redirecting to TLS (needs tls), or \"\".",
			func(c *Config) *string { return &c.Gateway.RedirectHTTP }),
		strListKey("origins", "Browser origins allowed to connect, like \"https://play.example\".",
			func(c *Config) *[]string { return &c.Gateway.Origins }),
		boolKey("allow_no_origin", "Admit clients that send no Origin header (non-browser clients).",
			func(c *Config) *bool { return &c.Gateway.AllowNoOrigin }),
		intKey("max_conns", "Most WebSocket connections on this node.",
			func(c *Config) *int { return &c.Gateway.MaxConns }),
		intKey("max_conns_per_ip", "Most connections from one IP address.",
			func(c *Config) *int { return &c.Gateway.MaxConnsPerIP }),
		floatKey("conn_rate_per_ip", "New connections per second from one IP address.",
			func(c *Config) *float64 { return &c.Gateway.ConnRatePerIP }),
	}},
	{"store", "The database.", []key{
		strKey("dsn", "sqlite:Path or a postgres:// URL (TAVERN_DSN overrides it).",
			func(c *Config) *string { return &c.Store.DSN }),
		intKey("batch_max", "Most ops in one group commit.",
			func(c *Config) *int { return &c.Store.BatchMax }),
		intKey("flush_ms", "Longest an op waits for its group commit.",
			func(c *Config) *int { return &c.Store.FlushMs }),
		intKey("snapshot_every", "Ops between two snapshots of a board.",
			func(c *Config) *int { return &c.Store.SnapshotEvery }),
		intKey("pool_size", "Database connections.",
			func(c *Config) *int { return &c.Store.PoolSize }),
	}},
	{"board", "The board actors.", []key{
		intKey("idle_ms", "Passivate a board idle for this long.",
			func(c *Config) *int { return &c.Board.IdleMs }),
		intKey("max_put_entities", "Most entities one op may put.",
			func(c *Config) *int { return &c.Board.MaxPutEntities }),
		intKey("max_entities", "Most entities on a board.",
			func(c *Config) *int { return &c.Board.MaxEntities }),
		intKey("max_props_bytes", "Largest encoded props of one entity.",
			func(c *Config) *int { return &c.Board.MaxPropsBytes }),
		intKey("replay_keep", "Recent ops kept in memory for join-since.",
			func(c *Config) *int { return &c.Board.ReplayKeep }),
		intKey("dedup_keep", "Op ids remembered to drop duplicates.",
			func(c *Config) *int { return &c.Board.DedupKeep }),
		intKey("max_restarts", "A board crashing more often than this within restart_window_ms stays down.",
			func(c *Config) *int { return &c.Board.MaxRestarts }),
		intKey("restart_window_ms", "The window of max_restarts.",
			func(c *Config) *int { return &c.Board.RestartWindowMs }),
		intKey("mailbox", "Size of a board actor's mailbox.",
			func(c *Config) *int { return &c.Board.Mailbox }),
	}},
	{"cluster", "Finding the other nodes.", []key{
		strListKey("seeds", "Node names to connect to at start.",
			func(c *Config) *[]string { return &c.Cluster.Seeds }),
		enumKey("discovery", "none (seeds only) or postgres (a nodes table; needs a postgres dsn).",
			func(c *Config) *string { return &c.Cluster.Discovery }, discoveries...),
		intKey("heartbeat_ms", "How often a node reports itself alive.",
			func(c *Config) *int { return &c.Cluster.HeartbeatMs }),
		intKey("down_after_ms", "Declare a node down after this long without a heartbeat.",
			func(c *Config) *int { return &c.Cluster.DownAfterMs }),
	}},
}

var (
	logLevels   = []string{"debug", "info", "warn", "error"}
	discoveries = []string{"none", "postgres"}
)

func strKey(name, doc string, p func(*Config) *string) key {
	return key{name: name, doc: doc,
		decode: func(d *decoder, f string, v erlterm.Term, c *Config) bool { return d.str(f, v, p(c)) },
		render: func(c *Config) erlterm.Term { return erlterm.String{Value: *p(c)} }}
}

func intKey(name, doc string, p func(*Config) *int) key {
	return key{name: name, doc: doc,
		decode: func(d *decoder, f string, v erlterm.Term, c *Config) bool { return d.int(f, v, p(c)) },
		render: func(c *Config) erlterm.Term { return erlterm.Integer{Value: big.NewInt(int64(*p(c)))} }}
}

func floatKey(name, doc string, p func(*Config) *float64) key {
	return key{name: name, doc: doc,
		decode: func(d *decoder, f string, v erlterm.Term, c *Config) bool { return d.float(f, v, p(c)) },
		render: func(c *Config) erlterm.Term { return erlterm.Float{Value: *p(c)} }}
}

func boolKey(name, doc string, p func(*Config) *bool) key {
	return key{name: name, doc: doc,
		decode: func(d *decoder, f string, v erlterm.Term, c *Config) bool { return d.bool(f, v, p(c)) },
		render: func(c *Config) erlterm.Term {
			if *p(c) {
				return erlterm.Atom{Name: "true"}
			}
			return erlterm.Atom{Name: "false"}
		}}
}

func enumKey(name, doc string, p func(*Config) *string, values ...string) key {
	return key{name: name, doc: doc,
		decode: func(d *decoder, f string, v erlterm.Term, c *Config) bool { return d.enum(f, v, p(c), values) },
		render: func(c *Config) erlterm.Term { return erlterm.Atom{Name: *p(c)} }}
}

func strListKey(name, doc string, p func(*Config) *[]string) key {
	return key{name: name, doc: doc,
		decode: func(d *decoder, f string, v erlterm.Term, c *Config) bool { return d.strList(f, v, p(c)) },
		render: func(c *Config) erlterm.Term {
			var l erlterm.List
			for _, s := range *p(c) {
				l.Elems = append(l.Elems, erlterm.String{Value: s})
			}
			return l
		}}
}

func renderTLS(t *TLSFiles, allowBool bool) erlterm.Term {
	switch {
	case t == nil && allowBool:
		return erlterm.Atom{Name: "false"}
	case t == nil:
		return erlterm.Atom{Name: "none"}
	case allowBool && t.Cert == "" && t.Key == "":
		return erlterm.Atom{Name: "true"}
	}
	return erlterm.List{Elems: []erlterm.Term{
		erlterm.Tuple{Elems: []erlterm.Term{erlterm.Atom{Name: "cert"}, erlterm.String{Value: t.Cert}}},
		erlterm.Tuple{Elems: []erlterm.Term{erlterm.Atom{Name: "key"}, erlterm.String{Value: t.Key}}},
	}}
}

func renderAuth(a Auth) erlterm.Term {
	if a.Mode == "jwt" {
		return erlterm.Tuple{Elems: []erlterm.Term{erlterm.Atom{Name: "jwt"}, erlterm.String{Value: a.Secret.Reveal()}}}
	}
	return erlterm.Atom{Name: a.Mode}
}

func findSection(name string) *section {
	for k := range schema {
		if schema[k].name == name {
			return &schema[k]
		}
	}
	return nil
}

func (s *section) findKey(name string) *key {
	for k := range s.keys {
		if s.keys[k].name == name {
			return &s.keys[k]
		}
	}
	return nil
}
