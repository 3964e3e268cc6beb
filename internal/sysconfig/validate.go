package sysconfig

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tavernhq/tavern/internal/erlterm"
)

const (
	second = 1000 // milliseconds
	minute = 60 * second
	hour   = 60 * minute
	day    = 24 * hour
)

type limit struct{ min, max int }

// intLimits are the ranges of the integer settings, inclusive.
var intLimits = map[string]limit{
	"gateway.max_frame":            {512, 64 << 20},
	"gateway.ops_burst":            {1, 1_000_000},
	"gateway.ping_interval_ms":     {100, hour},
	"gateway.ping_timeout_ms":      {100, hour},
	"gateway.hello_timeout_ms":     {100, 10 * minute},
	"gateway.answer_timeout_ms":    {100, 10 * minute},
	"gateway.handshake_timeout_ms": {100, 10 * minute},
	"gateway.outbound_queue":       {1, 1 << 20},
	"gateway.max_conns":            {1, 10_000_000},
	"gateway.max_conns_per_ip":     {1, 10_000_000},
	"store.batch_max":              {1, 100_000},
	"store.flush_ms":               {0, 10 * second},
	"store.snapshot_every":         {1, 10_000_000},
	"store.pool_size":              {1, 1000},
	"board.idle_ms":                {second, day},
	"board.max_put_entities":       {1, 1_000_000},
	"board.max_entities":           {1, 10_000_000},
	"board.max_props_bytes":        {1, 64 << 20},
	"board.replay_keep":            {1000, 10_000_000},
	"board.dedup_keep":             {10_000, 100_000_000},
	"board.max_restarts":           {0, 1000},
	"board.restart_window_ms":      {1, day},
	"board.mailbox":                {1, 65535},
	"node.epmd_port":               {0, 65535},
	"cluster.heartbeat_ms":         {10, minute},
	"cluster.down_after_ms":        {10, hour},
}

// floatMax bounds the rate settings, which must also be greater than 0.
const floatMax = 1e6

// Validate checks every setting and the rules between settings, and
// returns all problems at once as an erlterm.ErrorList (or nil). Parse and
// Load call it; call it yourself on a Config built in code. Its messages
// never show the cookie or the JWT secret.
func (c *Config) Validate() error {
	return c.validate(nil).Err()
}

// validate checks c. With an origin (from Parse) each error points where
// the setting came from: a position in the file, or the environment
// variable that set it; settings that failed to decode are skipped.
func (c *Config) validate(o *origin) erlterm.ErrorList {
	v := &validator{c: c, o: o, invalid: map[string]bool{}}

	n := &c.Node
	if !validNodeName(n.Name) {
		v.errorf("node.name", "must be name@host (letters, digits, _ or - before the @; a host name or IP address after it), got %q", n.Name)
	}
	switch {
	case n.Cookie == "":
		v.errorf("node.cookie", "must not be empty")
	case utf8.RuneCountInString(n.Cookie.Reveal()) > 255:
		v.errorf("node.cookie", "must be at most 255 characters")
	}
	v.addr("node.dist_listen", n.DistListen)
	if t := n.DistTLS; t != nil && (t.Cert == "") != (t.Key == "") {
		v.errorf("node.dist_tls", "needs both cert and key (or neither, for a self-signed certificate)")
	}
	v.oneOf("node.log_level", n.LogLevel, logLevels)

	g := &c.Gateway
	v.addr("gateway.listen", g.Listen)
	switch g.Auth.Mode {
	case "dev":
		if g.Auth.Secret != "" {
			v.errorf("gateway.auth", "dev mode takes no secret")
		}
	case "jwt":
		if len(g.Auth.Secret) < 32 {
			v.errorf("gateway.auth", "the jwt secret must be at least 32 bytes")
		}
	default:
		v.errorf("gateway.auth", "mode must be dev or jwt, got %q", g.Auth.Mode)
	}
	v.rate("gateway.ops_per_sec", g.OpsPerSec)
	v.rate("gateway.conn_rate_per_ip", g.ConnRatePerIP)
	if t := g.TLS; t != nil && (t.Cert == "" || t.Key == "") {
		v.errorf("gateway.tls", "needs both cert and key")
	}
	if g.RedirectHTTP != "" {
		v.addr("gateway.redirect_http", g.RedirectHTTP)
		if g.TLS == nil {
			v.errorf2("gateway.redirect_http", "gateway.tls", "needs gateway.tls: it redirects plain HTTP to the TLS listener")
		}
		if g.RedirectHTTP == g.Listen {
			v.errorf2("gateway.redirect_http", "gateway.listen", "must differ from gateway.listen")
		}
	}
	for k, origin := range g.Origins {
		if !validOrigin(origin) {
			v.errorAt("gateway.origins", k, "%q is not an origin like https://play.example (scheme and host, no path)", origin)
		}
	}

	s := &c.Store
	switch {
	case strings.HasPrefix(s.DSN, "sqlite:"):
		if s.DSN == "sqlite:" {
			v.errorf("store.dsn", "needs a path after sqlite:, like sqlite:data/tavern.db")
		}
	case isPostgresDSN(s.DSN):
		if _, err := url.Parse(s.DSN); err != nil {
			v.errorf("store.dsn", "is not a valid postgres URL")
		}
	default: // the DSN may hold a password: do not show it
		v.errorf("store.dsn", "must start with sqlite:, postgres:// or postgresql://")
	}

	cl := &c.Cluster
	seen := map[string]bool{}
	for k, seed := range cl.Seeds {
		switch {
		case !validNodeName(seed):
			v.errorAt("cluster.seeds", k, "%q is not a node name like tavern@10.0.0.2", seed)
		case seen[seed]:
			v.errorAt("cluster.seeds", k, "%q is listed twice", seed)
		}
		seen[seed] = true
	}
	v.oneOf("cluster.discovery", cl.Discovery, discoveries)
	if cl.Discovery == "postgres" && !isPostgresDSN(s.DSN) && !v.skip("store.dsn") {
		v.errorf2("cluster.discovery", "store.dsn", "postgres discovery needs a postgres:// dsn, but %s is not one", v.source("store.dsn"))
	}

	for _, f := range intFields(c) {
		lim := intLimits[f.field]
		if *f.p < lim.min || *f.p > lim.max {
			v.errorf(f.field, "must be between %d and %d, got %d", lim.min, lim.max, *f.p)
			v.invalid[f.field] = true
		}
	}
	// Rules between settings, skipped where a setting is already wrong.
	if g.PingTimeoutMs <= g.PingIntervalMs {
		v.errorf2("gateway.ping_timeout_ms", "gateway.ping_interval_ms",
			"must be greater than gateway.ping_interval_ms (%d), got %d", g.PingIntervalMs, g.PingTimeoutMs)
	}
	if g.MaxConnsPerIP > g.MaxConns {
		v.errorf2("gateway.max_conns_per_ip", "gateway.max_conns",
			"must not exceed gateway.max_conns (%d), got %d", g.MaxConns, g.MaxConnsPerIP)
	}
	b := &c.Board
	if b.MaxPutEntities > b.MaxEntities {
		v.errorf2("board.max_put_entities", "board.max_entities",
			"must not exceed board.max_entities (%d), got %d", b.MaxEntities, b.MaxPutEntities)
	}
	if b.MaxPropsBytes > g.MaxFrame {
		v.errorf2("board.max_props_bytes", "gateway.max_frame",
			"must not exceed gateway.max_frame (%d): props travel in one frame, got %d", g.MaxFrame, b.MaxPropsBytes)
	}
	if cl.DownAfterMs <= cl.HeartbeatMs {
		v.errorf2("cluster.down_after_ms", "cluster.heartbeat_ms",
			"must be greater than cluster.heartbeat_ms (%d), got %d", cl.HeartbeatMs, cl.DownAfterMs)
	}
	return v.errs
}

type intField struct {
	field string
	p     *int
}

// intFields returns every integer setting of c, by schema order.
func intFields(c *Config) []intField {
	return []intField{
		{"gateway.max_frame", &c.Gateway.MaxFrame},
		{"gateway.ops_burst", &c.Gateway.OpsBurst},
		{"gateway.ping_interval_ms", &c.Gateway.PingIntervalMs},
		{"gateway.ping_timeout_ms", &c.Gateway.PingTimeoutMs},
		{"gateway.hello_timeout_ms", &c.Gateway.HelloTimeoutMs},
		{"gateway.answer_timeout_ms", &c.Gateway.AnswerTimeoutMs},
		{"gateway.handshake_timeout_ms", &c.Gateway.HandshakeTimeoutMs},
		{"gateway.outbound_queue", &c.Gateway.OutboundQueue},
		{"gateway.max_conns", &c.Gateway.MaxConns},
		{"gateway.max_conns_per_ip", &c.Gateway.MaxConnsPerIP},
		{"store.batch_max", &c.Store.BatchMax},
		{"store.flush_ms", &c.Store.FlushMs},
		{"store.snapshot_every", &c.Store.SnapshotEvery},
		{"store.pool_size", &c.Store.PoolSize},
		{"board.idle_ms", &c.Board.IdleMs},
		{"board.max_put_entities", &c.Board.MaxPutEntities},
		{"board.max_entities", &c.Board.MaxEntities},
		{"board.max_props_bytes", &c.Board.MaxPropsBytes},
		{"board.replay_keep", &c.Board.ReplayKeep},
		{"board.dedup_keep", &c.Board.DedupKeep},
		{"board.max_restarts", &c.Board.MaxRestarts},
		{"board.restart_window_ms", &c.Board.RestartWindowMs},
		{"board.mailbox", &c.Board.Mailbox},
		{"node.epmd_port", &c.Node.EPMDPort},
		{"cluster.heartbeat_ms", &c.Cluster.HeartbeatMs},
		{"cluster.down_after_ms", &c.Cluster.DownAfterMs},
	}
}

type validator struct {
	c       *Config
	o       *origin
	errs    erlterm.ErrorList
	invalid map[string]bool // fields found out of range
}

// skip reports whether field failed to decode, and so was reported already.
func (v *validator) skip(field string) bool { return v.o != nil && v.o.bad[field] }

// source names where field's value came from, for messages.
func (v *validator) source(field string) string {
	if v.o != nil && v.o.env[field] != "" {
		return field + " (from " + v.o.env[field] + ")"
	}
	return field
}

// errorf reports a problem with field.
func (v *validator) errorf(field, format string, args ...any) {
	v.report(field, "", -1, format, args...)
}

// errorf2 reports a problem with field that involves other: it points at
// field if it was set in the file, else at other.
func (v *validator) errorf2(field, other, format string, args ...any) {
	v.report(field, other, -1, format, args...)
}

// errorAt reports a problem with element k of the list field.
func (v *validator) errorAt(field string, k int, format string, args ...any) {
	v.report(field, "", k, format, args...)
}

func (v *validator) report(field, other string, elem int, format string, args ...any) {
	if other != "" && (v.invalid[field] || v.invalid[other] || v.skip(other)) || v.skip(field) {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if v.o == nil {
		v.errs = append(v.errs, &erlterm.Error{File: v.c.Path, Msg: field + ": " + msg})
		return
	}
	if env := v.o.env[field]; env != "" {
		v.errs = append(v.errs, &erlterm.Error{Msg: env + ": " + msg})
		return
	}
	pos, ok := v.o.pos[field]
	if elem >= 0 {
		if p, found := v.o.pos[fmt.Sprintf("%s#%d", field, elem)]; found {
			pos, ok = p, true
		}
	}
	if !ok && other != "" {
		pos = v.o.pos[other] // zero (no position) when other is not in the file either
	}
	v.errs = append(v.errs, &erlterm.Error{File: v.o.file, Pos: pos, Msg: field + ": " + msg})
}

func (v *validator) addr(field, addr string) {
	if !validAddr(addr) {
		v.errorf(field, "must be host:port with a port from 0 to 65535, got %q", addr)
	}
}

func (v *validator) oneOf(field, value string, values []string) {
	for _, x := range values {
		if value == x {
			return
		}
	}
	v.errorf(field, "must be one of %s, got %q", strings.Join(values, ", "), value)
}

func (v *validator) rate(field string, r float64) {
	if !(r > 0 && r <= floatMax) { // also catches NaN
		v.errorf(field, "must be greater than 0 and at most %g, got %g", floatMax, r)
	}
}

// validNodeName reports whether s is an Erlang node name, name@host.
func validNodeName(s string) bool {
	name, host, ok := strings.Cut(s, "@")
	if !ok || name == "" || host == "" || len(s) > 255 {
		return false
	}
	for _, r := range name {
		if !isAlnum(r) && r != '_' && r != '-' {
			return false
		}
	}
	for _, r := range host {
		if !isAlnum(r) && r != '.' && r != '-' && r != '_' {
			return false
		}
	}
	return true
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// validAddr reports whether s is host:port with a numeric port, as
// net.Listen takes it; the host may be empty (all interfaces).
func validAddr(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || port == "" || strings.ContainsAny(host, " \t\r\n/") {
		return false
	}
	for _, r := range port {
		if r < '0' || r > '9' {
			return false
		}
	}
	n, err := strconv.Atoi(port)
	return err == nil && n <= 65535
}

// validOrigin reports whether s is a browser origin: http or https, a
// host and an optional port, nothing else.
func validOrigin(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.User == nil && u.Path == "" && u.RawQuery == "" && u.Fragment == "" && u.Opaque == "" &&
		!strings.HasSuffix(s, "?") && !strings.HasSuffix(s, "#")
}
