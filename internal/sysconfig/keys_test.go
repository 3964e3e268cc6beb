package sysconfig_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/tavernhq/tavern/internal/erlterm"
	"github.com/tavernhq/tavern/internal/sysconfig"
)

const testCookie = "test-cookie"

// env returns a lookupEnv that finds only vars.
func env(vars ...string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		for i := 0; i+1 < len(vars); i += 2 {
			if vars[i] == k {
				return vars[i+1], true
			}
		}
		return "", false
	}
}

// withCookie is the environment of most tests: the cookie, which has no
// default, comes from TAVERN_COOKIE so that files need not repeat it.
var withCookie = env(sysconfig.EnvCookie, testCookie)

// base is the Config of an empty section list with withCookie.
func base() sysconfig.Config {
	c := sysconfig.Default()
	c.Path = "t.config"
	c.Node.Cookie = testCookie
	return c
}

// entry returns a one-section file with the entries on line 2, column 1,
// so that an entry's value is at 2:len("{key, ")+1.
func entry(section, entries string) string {
	return "[{" + section + ", [\n" + entries + "]}]."
}

type keyCase struct {
	section, entries string
	// want changes base() into the expected Config; nil for a bad case.
	want func(c *sysconfig.Config)
	// errs are the expected errors, each after "t.config:" unless it
	// names an environment variable.
	errs []string
	env  func(string) (string, bool) // default withCookie
}

const secret32 = "0123456789abcdef0123456789abcdef"

var keyCases = []keyCase{
	// node
	{"node", `{name, "tavern-a@10.0.0.1"}`, func(c *sysconfig.Config) { c.Node.Name = "tavern-a@10.0.0.1" }, nil, nil},
	{"node", `{name, <<"a_b-c@host.example">>}`, func(c *sysconfig.Config) { c.Node.Name = "a_b-c@host.example" }, nil, nil},
	{"node", `{name, 42}`, nil, []string{`2:8: node.name: expected a string, got 42`}, nil},
	{"node", `{name, tavern@host}`, nil, []string{`2:8: node.name: expected a string, got tavern@host`}, nil},
	{"node", `{name, "nohost"}`, nil, []string{`2:8: node.name: must be name@host (letters, digits, _ or - before the @; a host name or IP address after it), got "nohost"`}, nil},
	{"node", `{name, "a@b@c"}`, nil, []string{`2:8: node.name: must be name@host`}, nil},
	{"node", `{name, "a b@c"}`, nil, []string{`2:8: node.name: must be name@host`}, nil},
	{"node", `{name, "@c"}`, nil, []string{`2:8: node.name: must be name@host`}, nil},
	{"node", `{cookie, "s3cret"}`, func(c *sysconfig.Config) { c.Node.Cookie = "s3cret" }, nil, env()},
	{"node", `{cookie, <<"s3cret">>}`, func(c *sysconfig.Config) { c.Node.Cookie = "s3cret" }, nil, env()},
	{"node", `{cookie, 's3cret'}`, func(c *sysconfig.Config) { c.Node.Cookie = "s3cret" }, nil, env()},
	{"node", `{cookie, ""}`, nil, []string{`2:10: node.cookie: must not be empty`}, env()},
	{"node", `{cookie, 42}`, nil, []string{`2:10: node.cookie: expected a string, got an integer`}, env()},
	{"node", `{cookie, ["a"]}`, nil, []string{`2:10: node.cookie: expected a string, got a list of 1 elements`}, env()},
	{"node", `{cookie, "` + strings.Repeat("x", 256) + `"}`, nil, []string{`2:10: node.cookie: must be at most 255 characters`}, env()},
	{"node", `{epmd_port, 0}`, func(c *sysconfig.Config) { c.Node.EPMDPort = 0 }, nil, nil},
	{"node", `{epmd_port, 14369}`, func(c *sysconfig.Config) { c.Node.EPMDPort = 14369 }, nil, nil},
	{"node", `{epmd_port, 70000}`, nil, []string{`2:13: node.epmd_port:`}, nil},
	{"node", `{dist_listen, "0.0.0.0:0"}`, func(c *sysconfig.Config) { c.Node.DistListen = "0.0.0.0:0" }, nil, nil},
	{"node", `{dist_listen, ":25100"}`, func(c *sysconfig.Config) { c.Node.DistListen = ":25100" }, nil, nil},
	{"node", `{dist_listen, "[::1]:25100"}`, func(c *sysconfig.Config) { c.Node.DistListen = "[::1]:25100" }, nil, nil},
	{"node", `{dist_listen, "localhost"}`, nil, []string{`2:15: node.dist_listen: must be host:port with a port from 0 to 65535, got "localhost"`}, nil},
	{"node", `{dist_listen, "h:65536"}`, nil, []string{`2:15: node.dist_listen: must be host:port`}, nil},
	{"node", `{dist_listen, "h:http"}`, nil, []string{`2:15: node.dist_listen: must be host:port`}, nil},
	{"node", `{dist_listen, "h:-1"}`, nil, []string{`2:15: node.dist_listen: must be host:port`}, nil},
	{"node", `{dist_tls, false}`, func(c *sysconfig.Config) {}, nil, nil},
	{"node", `{dist_tls, true}`, func(c *sysconfig.Config) { c.Node.DistTLS = &sysconfig.TLSFiles{} }, nil, nil},
	{"node", `{dist_tls, [{key, "k.pem"}, {cert, <<"c.pem">>}]}`,
		func(c *sysconfig.Config) { c.Node.DistTLS = &sysconfig.TLSFiles{Cert: "c.pem", Key: "k.pem"} }, nil, nil},
	{"node", `{dist_tls, none}`, nil, []string{`2:12: node.dist_tls: expected false, true or [{cert, Path}, {key, Path}], got none`}, nil},
	{"node", `{dist_tls, [{cert, "c"}]}`, nil, []string{`2:12: node.dist_tls: missing {key, Path}`}, nil},
	{"node", `{dist_tls, [{cert, "c"}, {key, "k"}, {ca, "a"}]}`, nil, []string{`2:38: node.dist_tls: expected {cert, Path} or {key, Path}, got {ca, "a"}`}, nil},
	{"node", `{dist_tls, [{cert, "c"}, {cert, "d"}, {key, "k"}]}`, nil, []string{`2:26: node.dist_tls: repeated cert (first at 2:13)`}, nil},
	{"node", `{dist_tls, [{cert, 1}, {key, "k"}]}`, nil, []string{`2:20: node.dist_tls.cert: expected a string, got 1`}, nil},
	{"node", `{dist_tls, [{cert, ""}, {key, ""}]}`, nil, []string{`2:20: node.dist_tls.cert: must not be empty`, `2:31: node.dist_tls.key: must not be empty`}, nil},
	{"node", `{log_level, debug}`, func(c *sysconfig.Config) { c.Node.LogLevel = "debug" }, nil, nil},
	{"node", `{log_level, warn}`, func(c *sysconfig.Config) { c.Node.LogLevel = "warn" }, nil, nil},
	{"node", `{log_level, error}`, func(c *sysconfig.Config) { c.Node.LogLevel = "error" }, nil, nil},
	{"node", `{log_level, warning}`, nil, []string{`2:13: node.log_level: expected one of the atoms debug, info, warn, error, got warning`}, nil},
	{"node", `{log_level, "debug"}`, nil, []string{`2:13: node.log_level: expected one of the atoms debug, info, warn, error, got "debug"`}, nil},
	{"node", `{allow_insecure_config, true}`, func(c *sysconfig.Config) { c.Node.AllowInsecureConfig = true }, nil, nil},
	{"node", `{allow_insecure_config, yes}`, nil, []string{`2:25: node.allow_insecure_config: expected true or false, got yes`}, nil},

	// gateway
	{"gateway", `{listen, "0.0.0.0:443"}`, func(c *sysconfig.Config) { c.Gateway.Listen = "0.0.0.0:443" }, nil, nil},
	{"gateway", `{listen, 8080}`, nil, []string{`2:10: gateway.listen: expected a string, got 8080`}, nil},
	{"gateway", `{listen, "8080"}`, nil, []string{`2:10: gateway.listen: must be host:port with a port from 0 to 65535, got "8080"`}, nil},
	{"gateway", `{auth, dev}`, func(c *sysconfig.Config) {}, nil, nil},
	{"gateway", `{auth, {jwt, "` + secret32 + `"}}`, func(c *sysconfig.Config) { c.Gateway.Auth = sysconfig.Auth{Mode: "jwt", Secret: secret32} }, nil, nil},
	{"gateway", `{auth, {jwt, <<"` + secret32 + `">>}}`, func(c *sysconfig.Config) { c.Gateway.Auth = sysconfig.Auth{Mode: "jwt", Secret: secret32} }, nil, nil},
	{"gateway", `{auth, jwt}`, nil, []string{`2:8: gateway.auth: jwt needs a secret: write {auth, {jwt, <<"...">>}}`}, nil},
	{"gateway", `{auth, {jwt, "short"}}`, nil, []string{`2:8: gateway.auth: the jwt secret must be at least 32 bytes`}, nil},
	{"gateway", `{auth, {jwt, 42}}`, nil, []string{`2:14: gateway.auth: the jwt secret must be a string, got an integer`}, nil},
	{"gateway", `{auth, {oauth, "x"}}`, nil, []string{`2:8: gateway.auth: expected dev or {jwt, Secret}, got a tuple of 2 elements`}, nil},
	{"gateway", `{auth, "dev"}`, nil, []string{`2:8: gateway.auth: expected dev or {jwt, Secret}, got a string`}, nil},
	{"gateway", `{max_frame, 1048576}`, func(c *sysconfig.Config) { c.Gateway.MaxFrame = 1048576 }, nil, nil},
	{"gateway", `{max_frame, 1024}`, nil, []string{`2:13: board.max_props_bytes: must not exceed gateway.max_frame (1024): props travel in one frame, got 65536`}, nil},
	{"gateway", `{max_frame, "big"}`, nil, []string{`2:13: gateway.max_frame: expected a positive integer, got "big"`}, nil},
	{"gateway", `{max_frame, 1.5}`, nil, []string{`2:13: gateway.max_frame: expected a positive integer, got 1.5`}, nil},
	{"gateway", `{max_frame, 0}`, nil, []string{`2:13: gateway.max_frame: must be between 512 and 67108864, got 0`}, nil},
	{"gateway", `{max_frame, 99999999999999999999}`, nil, []string{`2:13: gateway.max_frame: must be between 512 and 67108864, got 99999999999999999999`}, nil},
	{"gateway", `{ops_per_sec, 100}`, func(c *sysconfig.Config) { c.Gateway.OpsPerSec = 100 }, nil, nil},
	{"gateway", `{ops_per_sec, 2.5}`, func(c *sysconfig.Config) { c.Gateway.OpsPerSec = 2.5 }, nil, nil},
	{"gateway", `{ops_per_sec, 0}`, nil, []string{`2:15: gateway.ops_per_sec: must be greater than 0 and at most 1e+06, got 0`}, nil},
	{"gateway", `{ops_per_sec, -1.0}`, nil, []string{`2:15: gateway.ops_per_sec: must be greater than 0`}, nil},
	{"gateway", `{ops_per_sec, fast}`, nil, []string{`2:15: gateway.ops_per_sec: expected a positive number, got fast`}, nil},
	{"gateway", `{ops_burst, 1}`, func(c *sysconfig.Config) { c.Gateway.OpsBurst = 1 }, nil, nil},
	{"gateway", `{ops_burst, 0}`, nil, []string{`2:13: gateway.ops_burst: must be between 1 and 1000000, got 0`}, nil},
	{"gateway", `{ping_interval_ms, 5000}`, func(c *sysconfig.Config) { c.Gateway.PingIntervalMs = 5000 }, nil, nil},
	{"gateway", `{ping_interval_ms, 50}`, nil, []string{`2:20: gateway.ping_interval_ms: must be between 100 and 3600000, got 50`}, nil},
	{"gateway", `{ping_interval_ms, "10s"}`, nil, []string{`2:20: gateway.ping_interval_ms: expected a positive integer of milliseconds, got "10s"`}, nil},
	{"gateway", `{ping_interval_ms, 40000}`, nil, []string{`2:20: gateway.ping_timeout_ms: must be greater than gateway.ping_interval_ms (40000), got 30000`}, nil},
	{"gateway", `{ping_timeout_ms, 60000}`, func(c *sysconfig.Config) { c.Gateway.PingTimeoutMs = 60000 }, nil, nil},
	{"gateway", `{ping_timeout_ms, 5000}`, nil, []string{`2:19: gateway.ping_timeout_ms: must be greater than gateway.ping_interval_ms (10000), got 5000`}, nil},
	{"gateway", `{hello_timeout_ms, 2000}`, func(c *sysconfig.Config) { c.Gateway.HelloTimeoutMs = 2000 }, nil, nil},
	{"gateway", `{answer_timeout_ms, 2000}`, func(c *sysconfig.Config) { c.Gateway.AnswerTimeoutMs = 2000 }, nil, nil},
	{"gateway", `{answer_timeout_ms, 50}`, nil, []string{`2:21: gateway.answer_timeout_ms: must be between 100 and 600000, got 50`}, nil},
	{"gateway", `{hello_timeout_ms, 0}`, nil, []string{`2:20: gateway.hello_timeout_ms: must be between 100 and 600000, got 0`}, nil},
	{"gateway", `{handshake_timeout_ms, 3000}`, func(c *sysconfig.Config) { c.Gateway.HandshakeTimeoutMs = 3000 }, nil, nil},
	{"gateway", `{handshake_timeout_ms, 600001}`, nil, []string{`2:24: gateway.handshake_timeout_ms: must be between 100 and 600000, got 600001`}, nil},
	{"gateway", `{outbound_queue, 16}`, func(c *sysconfig.Config) { c.Gateway.OutboundQueue = 16 }, nil, nil},
	{"gateway", `{outbound_queue, 0}`, nil, []string{`2:18: gateway.outbound_queue: must be between 1 and 1048576, got 0`}, nil},
	{"gateway", `{tls, [{cert, "c.pem"}, {key, "k.pem"}]}`, func(c *sysconfig.Config) { c.Gateway.TLS = &sysconfig.TLSFiles{Cert: "c.pem", Key: "k.pem"} }, nil, nil},
	{"gateway", `{tls, none}`, func(c *sysconfig.Config) {}, nil, nil},
	{"gateway", `{tls, false}`, func(c *sysconfig.Config) {}, nil, nil},
	{"gateway", `{tls, true}`, nil, []string{`2:7: gateway.tls: expected [{cert, Path}, {key, Path}] or none, got true`}, nil},
	{"gateway", `{tls, [{cert, "c.pem"}, {key, ""}]}`, nil, []string{`2:31: gateway.tls.key: must not be empty`}, nil},
	{"gateway", `{tls, [{key, "k"}]}`, nil, []string{`2:7: gateway.tls: missing {cert, Path}`}, nil},
	{"gateway", `{tls, [{cert, "c"}, {key, "k"}]}, {redirect_http, "0.0.0.0:80"}`,
		func(c *sysconfig.Config) {
			c.Gateway.TLS = &sysconfig.TLSFiles{Cert: "c", Key: "k"}
			c.Gateway.RedirectHTTP = "0.0.0.0:80"
		}, nil, nil},
	{"gateway", `{redirect_http, ""}`, func(c *sysconfig.Config) {}, nil, nil},
	{"gateway", `{redirect_http, "0.0.0.0:80"}`, nil, []string{`2:17: gateway.redirect_http: needs gateway.tls: it redirects plain HTTP to the TLS listener`}, nil},
	{"gateway", `{redirect_http, "80"}`, nil, []string{`2:17: gateway.redirect_http: must be host:port`, `2:17: gateway.redirect_http: needs gateway.tls`}, nil},
	{"gateway", `{tls, [{cert, "c"}, {key, "k"}]}, {redirect_http, "127.0.0.1:8080"}`, nil, []string{`2:51: gateway.redirect_http: must differ from gateway.listen`}, nil},
	{"gateway", `{origins, ["https://play.example", <<"http://localhost:3000">>]}`,
		func(c *sysconfig.Config) {
			c.Gateway.Origins = []string{"https://play.example", "http://localhost:3000"}
		}, nil, nil},
	{"gateway", `{origins, []}`, func(c *sysconfig.Config) {}, nil, nil},
	{"gateway", `{origins, "https://play.example"}`, nil, []string{`2:11: gateway.origins: expected a list of strings, got "https://play.example"`}, nil},
	{"gateway", `{origins, ["https://a.example", foo]}`, nil, []string{`2:33: gateway.origins: expected a list of strings, but element 2 is foo`}, nil},
	{"gateway", `{origins, ["https://a.example", "https://b.example/"]}`, nil, []string{`2:33: gateway.origins: "https://b.example/" is not an origin like https://play.example (scheme and host, no path)`}, nil},
	{"gateway", `{origins, ["play.example"]}`, nil, []string{`2:12: gateway.origins: "play.example" is not an origin`}, nil},
	{"gateway", `{origins, ["ftp://play.example"]}`, nil, []string{`2:12: gateway.origins: "ftp://play.example" is not an origin`}, nil},
	{"gateway", `{allow_no_origin, false}`, func(c *sysconfig.Config) { c.Gateway.AllowNoOrigin = false }, nil, nil},
	{"gateway", `{allow_no_origin, "false"}`, nil, []string{`2:19: gateway.allow_no_origin: expected true or false, got "false"`}, nil},
	{"gateway", `{max_conns, 500}`, func(c *sysconfig.Config) { c.Gateway.MaxConns = 500 }, nil, nil},
	{"gateway", `{max_conns, 100}`, nil, []string{`2:13: gateway.max_conns_per_ip: must not exceed gateway.max_conns (100), got 256`}, nil},
	{"gateway", `{max_conns_per_ip, 1}`, func(c *sysconfig.Config) { c.Gateway.MaxConnsPerIP = 1 }, nil, nil},
	{"gateway", `{max_conns_per_ip, 20000}`, nil, []string{`2:20: gateway.max_conns_per_ip: must not exceed gateway.max_conns (10000), got 20000`}, nil},
	{"gateway", `{conn_rate_per_ip, 0.5}`, func(c *sysconfig.Config) { c.Gateway.ConnRatePerIP = 0.5 }, nil, nil},
	{"gateway", `{conn_rate_per_ip, 2000000}`, nil, []string{`2:20: gateway.conn_rate_per_ip: must be greater than 0 and at most 1e+06, got 2e+06`}, nil},

	// store
	{"store", `{dsn, "sqlite:/var/lib/tavern.db"}`, func(c *sysconfig.Config) { c.Store.DSN = "sqlite:/var/lib/tavern.db" }, nil, nil},
	{"store", `{dsn, "postgres://u:pw@db:5432/tavern"}`, func(c *sysconfig.Config) { c.Store.DSN = "postgres://u:pw@db:5432/tavern" }, nil, nil},
	{"store", `{dsn, <<"postgresql:///tavern">>}`, func(c *sysconfig.Config) { c.Store.DSN = "postgresql:///tavern" }, nil, nil},
	{"store", `{dsn, "mysql://u:pw@db/tavern"}`, nil, []string{`2:7: store.dsn: must start with sqlite:, postgres:// or postgresql://`}, nil},
	{"store", `{dsn, "sqlite:"}`, nil, []string{`2:7: store.dsn: needs a path after sqlite:, like sqlite:data/tavern.db`}, nil},
	{"store", `{dsn, "postgres://db:port/x"}`, nil, []string{`2:7: store.dsn: is not a valid postgres URL`}, nil},
	{"store", `{batch_max, 64}`, func(c *sysconfig.Config) { c.Store.BatchMax = 64 }, nil, nil},
	{"store", `{batch_max, 0}`, nil, []string{`2:13: store.batch_max: must be between 1 and 100000, got 0`}, nil},
	{"store", `{flush_ms, 0}`, func(c *sysconfig.Config) { c.Store.FlushMs = 0 }, nil, nil},
	{"store", `{flush_ms, -1}`, nil, []string{`2:12: store.flush_ms: must be between 0 and 10000, got -1`}, nil},
	{"store", `{flush_ms, 1.0}`, nil, []string{`2:12: store.flush_ms: expected a non-negative integer of milliseconds, got 1.0`}, nil},
	{"store", `{snapshot_every, 100}`, func(c *sysconfig.Config) { c.Store.SnapshotEvery = 100 }, nil, nil},
	{"store", `{snapshot_every, 0}`, nil, []string{`2:18: store.snapshot_every: must be between 1 and 10000000, got 0`}, nil},
	{"store", `{pool_size, 1}`, func(c *sysconfig.Config) { c.Store.PoolSize = 1 }, nil, nil},
	{"store", `{pool_size, 1001}`, nil, []string{`2:13: store.pool_size: must be between 1 and 1000, got 1001`}, nil},

	// board
	{"board", `{idle_ms, 60000}`, func(c *sysconfig.Config) { c.Board.IdleMs = 60000 }, nil, nil},
	{"board", `{idle_ms, 10}`, nil, []string{`2:11: board.idle_ms: must be between 1000 and 86400000, got 10`}, nil},
	{"board", `{max_put_entities, 50}`, func(c *sysconfig.Config) { c.Board.MaxPutEntities = 50 }, nil, nil},
	{"board", `{max_put_entities, 200000}`, nil, []string{`2:20: board.max_put_entities: must not exceed board.max_entities (100000), got 200000`}, nil},
	{"board", `{max_entities, 5000}`, func(c *sysconfig.Config) { c.Board.MaxEntities = 5000 }, nil, nil},
	{"board", `{max_entities, 10}`, nil, []string{`2:16: board.max_put_entities: must not exceed board.max_entities (10), got 1000`}, nil},
	{"board", `{max_props_bytes, 4096}`, func(c *sysconfig.Config) { c.Board.MaxPropsBytes = 4096 }, nil, nil},
	{"board", `{max_props_bytes, 70000}`, nil, []string{`2:19: board.max_props_bytes: must not exceed gateway.max_frame (65536): props travel in one frame, got 70000`}, nil},
	{"board", `{replay_keep, 5000}`, func(c *sysconfig.Config) { c.Board.ReplayKeep = 5000 }, nil, nil},
	{"board", `{replay_keep, 999}`, nil, []string{`2:15: board.replay_keep: must be between 1000 and 10000000, got 999`}, nil},
	{"board", `{dedup_keep, 20000}`, func(c *sysconfig.Config) { c.Board.DedupKeep = 20000 }, nil, nil},
	{"board", `{dedup_keep, 9999}`, nil, []string{`2:14: board.dedup_keep: must be between 10000 and 100000000, got 9999`}, nil},
	{"board", `{max_restarts, 0}`, func(c *sysconfig.Config) { c.Board.MaxRestarts = 0 }, nil, nil},
	{"board", `{max_restarts, -1}`, nil, []string{`2:16: board.max_restarts: must be between 0 and 1000, got -1`}, nil},
	{"board", `{restart_window_ms, 60000}`, func(c *sysconfig.Config) { c.Board.RestartWindowMs = 60000 }, nil, nil},
	{"board", `{restart_window_ms, 0}`, nil, []string{`2:21: board.restart_window_ms: must be between 1 and 86400000, got 0`}, nil},
	{"board", `{mailbox, 1}`, func(c *sysconfig.Config) { c.Board.Mailbox = 1 }, nil, nil},
	{"board", `{mailbox, 65536}`, nil, []string{`2:11: board.mailbox: must be between 1 and 65535, got 65536`}, nil},

	// cluster
	{"cluster", `{seeds, ["tavern-b@10.0.0.2", <<"tavern-c@10.0.0.3">>]}`,
		func(c *sysconfig.Config) { c.Cluster.Seeds = []string{"tavern-b@10.0.0.2", "tavern-c@10.0.0.3"} }, nil, nil},
	{"cluster", `{seeds, []}`, func(c *sysconfig.Config) {}, nil, nil},
	{"cluster", `{seeds, ["a@b", "nope"]}`, nil, []string{`2:17: cluster.seeds: "nope" is not a node name like tavern@10.0.0.2`}, nil},
	{"cluster", `{seeds, ["a@b", "a@b"]}`, nil, []string{`2:17: cluster.seeds: "a@b" is listed twice`}, nil},
	{"cluster", `{seeds, ['a@b']}`, nil, []string{`2:10: cluster.seeds: expected a list of strings, but element 1 is a@b`}, nil},
	{"cluster", `{discovery, none}`, func(c *sysconfig.Config) {}, nil, nil},
	{"cluster", `{discovery, postgres}`, nil, []string{`2:13: cluster.discovery: postgres discovery needs a postgres:// dsn, but store.dsn is not one`}, nil},
	{"cluster", `{discovery, postgres}`, func(c *sysconfig.Config) {
		c.Cluster.Discovery = "postgres"
		c.Store.DSN = "postgres://db/tavern"
	}, nil, env(sysconfig.EnvCookie, testCookie, sysconfig.EnvDSN, "postgres://db/tavern")},
	{"cluster", `{discovery, etcd}`, nil, []string{`2:13: cluster.discovery: expected one of the atoms none, postgres, got etcd`}, nil},
	{"cluster", `{heartbeat_ms, 500}`, func(c *sysconfig.Config) { c.Cluster.HeartbeatMs = 500 }, nil, nil},
	{"cluster", `{heartbeat_ms, 5000}`, nil, []string{`2:16: cluster.down_after_ms: must be greater than cluster.heartbeat_ms (5000), got 5000`}, nil},
	{"cluster", `{down_after_ms, 3000}`, func(c *sysconfig.Config) { c.Cluster.DownAfterMs = 3000 }, nil, nil},
	{"cluster", `{down_after_ms, 1000}`, nil, []string{`2:17: cluster.down_after_ms: must be greater than cluster.heartbeat_ms (1000), got 1000`}, nil},

	// keys
	{"gateway", `{max_frames, 1}`, nil, []string{`2:2: gateway.max_frames: unknown key; did you mean max_frame? (the keys of gateway are listen, auth, max_frame,`}, nil},
	{"store", `{'DSN', "sqlite:x"}`, nil, []string{`2:2: store.'DSN': unknown key (the keys of store are dsn, batch_max, flush_ms, snapshot_every, pool_size)`}, nil},
	{"gateway", `{listen, "a:1"}, {listen, "b:2"}`, nil, []string{`2:19: gateway.listen: repeated key (first at 2:2)`}, nil},
	{"gateway", `{"listen", "a:1"}`, nil, []string{`2:2: gateway: expected a key (an atom), got a string`}, nil},
	{"gateway", `{listen, "a:1", extra}`, nil, []string{`2:1: gateway: expected a {Key, Value} tuple, got a tuple of 3 elements`}, nil},
	{"gateway", `listen`, nil, []string{`2:1: gateway: expected a {Key, Value} tuple, got an atom`}, nil},
}

func TestKeys(t *testing.T) {
	for _, tc := range keyCases {
		t.Run(tc.section+"/"+tc.entries, func(t *testing.T) {
			lookup := tc.env
			if lookup == nil {
				lookup = withCookie
			}
			src := entry(tc.section, tc.entries)
			got, err := sysconfig.Parse("t.config", []byte(src), lookup)
			if tc.want != nil {
				if err != nil {
					t.Fatalf("Parse(%s): %v", src, err)
				}
				want := base()
				tc.want(&want)
				if !reflect.DeepEqual(*got, want) {
					t.Errorf("Parse(%s) =\n%+v\nwant\n%+v", src, *got, want)
				}
				return
			}
			checkErrs(t, src, got, err, tc.errs)
		})
	}
}

// TestEveryKeyIsTested checks that the table has a good and a bad case
// for every key of every section.
func TestEveryKeyIsTested(t *testing.T) {
	good, bad := map[string]bool{}, map[string]bool{}
	for _, tc := range keyCases {
		name, _, _ := strings.Cut(strings.TrimPrefix(tc.entries, "{"), ",")
		field := tc.section + "." + name
		if tc.want != nil {
			good[field] = true
		} else {
			bad[field] = true
		}
	}
	for _, sec := range []string{"node", "gateway", "store", "board", "cluster"} {
		for _, k := range keysOf(t, sec) {
			if !good[sec+"."+k] {
				t.Errorf("no good case for %s.%s", sec, k)
			}
			if !bad[sec+"."+k] {
				t.Errorf("no bad case for %s.%s", sec, k)
			}
		}
	}
}

// keysOf lists the keys of a section as the unknown-key error does.
func keysOf(t *testing.T, section string) []string {
	_, err := sysconfig.Parse("t", []byte(entry(section, "{no_such_key_at_all, 1}")), withCookie)
	_, list, ok := strings.Cut(err.Error(), "the keys of "+section+" are ")
	if !ok {
		t.Fatalf("unexpected error: %v", err)
	}
	return strings.Split(strings.TrimSuffix(list, ")"), ", ")
}

func checkErrs(t *testing.T, src string, got *sysconfig.Config, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Parse(%s) = %v, want errors %q", src, got, want)
	}
	if got != nil {
		t.Errorf("Parse(%s) returned a Config with its error", src)
	}
	var list erlterm.ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("Parse(%s) error %T is not an erlterm.ErrorList", src, err)
	}
	var texts []string
	for _, e := range list {
		texts = append(texts, e.Error())
	}
	if len(texts) != len(want) {
		t.Fatalf("Parse(%s) errors:\n  %s\nwant %d:\n  %s", src, strings.Join(texts, "\n  "), len(want), strings.Join(want, "\n  "))
	}
	for k, w := range want {
		if !strings.HasPrefix(w, "TAVERN_") {
			w = "t.config:" + w
		}
		if !strings.HasPrefix(texts[k], w) {
			t.Errorf("error %d = %q\nwant it to start with %q", k, texts[k], w)
		}
	}
}
