package sysconfig_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tavernhq/tavern/internal/erlterm"
	"github.com/tavernhq/tavern/internal/erlterm/erltest"
	"github.com/tavernhq/tavern/internal/sysconfig"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.golden files")

func TestDefaultIsValidWithACookie(t *testing.T) {
	c := sysconfig.Default()
	err := c.Validate()
	if err == nil || err.Error() != "node.cookie: must not be empty" {
		t.Errorf("Default().Validate() = %v, want only the missing cookie", err)
	}
	c.Node.Cookie = "x"
	if err := c.Validate(); err != nil {
		t.Errorf("Default() with a cookie: %v", err)
	}
}

func TestValidateCodeBuiltConfig(t *testing.T) {
	c := sysconfig.Default()
	c.Path = "built"
	c.Node.Cookie = "x"
	c.Node.Name = "nohost"
	c.Gateway.MaxFrame = 0 // out of range: the max_props_bytes rule is skipped
	c.Gateway.Auth = sysconfig.Auth{Mode: "jwt"}
	c.Gateway.TLS = &sysconfig.TLSFiles{Cert: "c"}
	c.Cluster.Discovery = "postgres"
	c.Cluster.Seeds = []string{"a@b", "bad"}
	err := c.Validate()
	want := []string{
		`built: node.name: must be name@host`,
		`built: gateway.auth: the jwt secret must be at least 32 bytes`,
		`built: gateway.tls: needs both cert and key`,
		`built: cluster.seeds: "bad" is not a node name`,
		`built: cluster.discovery: postgres discovery needs a postgres:// dsn, but store.dsn is not one`,
		`built: gateway.max_frame: must be between 512 and 67108864, got 0`,
	}
	var list erlterm.ErrorList
	if !errors.As(err, &list) || len(list) != len(want) {
		t.Fatalf("Validate() = %v\nwant %d errors", err, len(want))
	}
	for k, w := range want {
		if !strings.HasPrefix(list[k].Error(), w) {
			t.Errorf("error %d = %q, want %q...", k, list[k].Error(), w)
		}
	}
}

func TestStructure(t *testing.T) {
	cases := []struct {
		name, src string
		errs      []string
	}{
		{"empty file", "", []string{"t.config: the file holds no term"}},
		{"only comments", "% nothing\n", []string{"t.config: the file holds no term"}},
		{"two terms", "[].\n[].\n{x}.", []string{"t.config:2:1: a sys.config holds exactly one term", "t.config:3:1: a sys.config holds exactly one term"}},
		{"not a list", "{node, []}.", []string{"t.config:1:1: expected a list of {Section, [{Key, Value}]} tuples, got a tuple of 2 elements"}},
		{"improper list", "[{node, []} | x].", []string{"t.config:1:1: expected a list of {Section, [{Key, Value}]} tuples, got an improper list"}},
		{"section not a tuple", "[node].", []string{"t.config:1:2: expected a {Section, [{Key, Value}]} tuple, got an atom"}},
		{"section tuple of 3", "[{node, [], []}].", []string{"t.config:1:2: expected a {Section, [{Key, Value}]} tuple, got a tuple of 3 elements"}},
		{"section name not an atom", `[{"node", []}].`, []string{"t.config:1:3: expected a section name (an atom), got a string"}},
		{"unknown section", "[{gatway, []}].", []string{"t.config:1:3: gatway: unknown section; did you mean gateway? (the sections are node, gateway, store, board, cluster)"}},
		{"OTP section", "[{kernel, [{logger_level, info}]}].", []string{"t.config:1:3: kernel: unknown section (the sections are node, gateway, store, board, cluster)"}},
		{"repeated section", "[{store, []},\n {store, []}].", []string{"t.config:2:3: store: repeated section (first at 1:3)"}},
		{"section not a list", "[{store, {dsn, \"sqlite:x\"}}].", []string{"t.config:1:10: store: expected a list of {Key, Value} tuples, got a tuple of 2 elements"}},
		{"section a map", "[{store, #{dsn => \"sqlite:x\"}}].", []string{"t.config:1:10: store: expected a list of {Key, Value} tuples, got a map"}},
		{"syntax error", "[{store, [{dsn \"x\"}]}].", []string{`t.config:1:16: expected ',' or '}' in the tuple opened at 1:11, found a string`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := sysconfig.Parse("t.config", []byte(c.src), withCookie)
			if err == nil {
				t.Fatalf("Parse = %v, want errors", got)
			}
			var texts []string
			for _, e := range err.(erlterm.ErrorList) {
				texts = append(texts, e.Error())
			}
			if len(texts) != len(c.errs) {
				t.Fatalf("errors:\n  %s\nwant:\n  %s", strings.Join(texts, "\n  "), strings.Join(c.errs, "\n  "))
			}
			for k := range texts {
				if !strings.HasPrefix(texts[k], c.errs[k]) {
					t.Errorf("error %d = %q, want %q...", k, texts[k], c.errs[k])
				}
			}
		})
	}
}

// TestAllErrorsAtOnce: a file with four different mistakes produces four
// positioned errors, in file order, whatever order they were found in.
func TestAllErrorsAtOnce(t *testing.T) {
	src := `[{node,    [{name, "tavern-dev@127.0.0.1"}, {cookie, "change-me"}]},
 {gateway, [{listen, "127.0.0.1:8080"}, {max_frame, "big"}]},
 {store,   [{dsn, "sqlite:data/tavern.db"}, {pool_sise, 8}]},
 {board,   [{mailbox, 70000}]},
 {cluster, [{discovery, postgres}]}].
`
	_, err := sysconfig.Parse("sys.config", []byte(src), nil)
	want := `sys.config:2:53: gateway.max_frame: expected a positive integer, got "big"
sys.config:3:46: store.pool_sise: unknown key; did you mean pool_size? (the keys of store are dsn, batch_max, flush_ms, snapshot_every, pool_size)
sys.config:4:23: board.mailbox: must be between 1 and 65535, got 70000
sys.config:5:25: cluster.discovery: postgres discovery needs a postgres:// dsn, but store.dsn is not one`
	if err == nil || err.Error() != want {
		t.Errorf("Parse errors:\n%v\nwant:\n%s", err, want)
	}
}

func TestEnvOverrides(t *testing.T) {
	file := `[{node, [{name, "from-file@host"}, {cookie, "file-cookie"}]},
 {store, [{dsn, "sqlite:file.db"}]},
 {cluster, [{discovery, postgres}]}].`
	t.Run("override", func(t *testing.T) {
		c, err := sysconfig.Parse("t.config", []byte(file), env(
			"TAVERN_NODE", "from-env@10.0.0.9",
			"TAVERN_COOKIE", "env-cookie",
			"TAVERN_DSN", "postgres://db/tavern",
			"TAVERN_OTHER", "ignored"))
		if err != nil {
			t.Fatal(err)
		}
		if c.Node.Name != "from-env@10.0.0.9" || c.Node.Cookie.Reveal() != "env-cookie" || c.Store.DSN != "postgres://db/tavern" {
			t.Errorf("overrides not applied: %+v %+v", c.Node, c.Store)
		}
	})
	t.Run("no environment", func(t *testing.T) {
		_, err := sysconfig.Parse("t.config", []byte(file), nil)
		if err == nil || !strings.Contains(err.Error(), "postgres discovery needs a postgres:// dsn") {
			t.Errorf("want the file's sqlite dsn to fail postgres discovery, got %v", err)
		}
	})
	t.Run("bad overrides", func(t *testing.T) {
		_, err := sysconfig.Parse("t.config", []byte(file), env(
			"TAVERN_NODE", "nohost",
			"TAVERN_COOKIE", "",
			"TAVERN_DSN", "mysql://user:hunter2@db/x"))
		want := `t.config:3:25: cluster.discovery: postgres discovery needs a postgres:// dsn, but store.dsn (from TAVERN_DSN) is not one
TAVERN_NODE: must be name@host (letters, digits, _ or - before the @; a host name or IP address after it), got "nohost"
TAVERN_COOKIE: must not be empty
TAVERN_DSN: must start with sqlite:, postgres:// or postgresql://`
		if err == nil || err.Error() != want {
			t.Errorf("errors:\n%v\nwant:\n%s", err, want)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Error("an error shows the DSN's password")
		}
	})
	t.Run("override replaces a bad file value", func(t *testing.T) {
		src := `[{node, [{name, 42}, {cookie, 7}]}].`
		c, err := sysconfig.Parse("t.config", []byte(src), env("TAVERN_NODE", "a@b", "TAVERN_COOKIE", "c"))
		if err == nil {
			t.Fatalf("want the file's type errors reported, got %+v", c)
		}
		if got := strings.Count(err.Error(), "\n") + 1; got != 2 {
			t.Errorf("want the 2 type errors only, got:\n%v", err)
		}
	})
}

func TestLoad(t *testing.T) {
	for _, k := range []string{sysconfig.EnvNode, sysconfig.EnvCookie, sysconfig.EnvDSN} {
		t.Setenv(k, "") // restored after the test
		os.Unsetenv(k)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "sys.config")
	if err := os.WriteFile(path, []byte(`[{node, [{cookie, "c"}]}].`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := sysconfig.Load(path)
	if err != nil || c.Path != path || c.Node.Cookie.Reveal() != "c" {
		t.Fatalf("Load = %+v, %v", c, err)
	}
	t.Setenv(sysconfig.EnvNode, "env-node@127.0.0.1")
	if c, err := sysconfig.Load(path); err != nil || c.Node.Name != "env-node@127.0.0.1" {
		t.Errorf("Load does not read the environment: %+v, %v", c, err)
	}
	missing := filepath.Join(dir, "nope.config")
	_, err = sysconfig.Load(missing)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load(missing) = %v, want a not-exist error naming %s", err, missing)
	}
}

// TestLoadRefusesInsecureMode: a file that other users may read (or
// write) is refused with a message that names the file, its mode and the
// fix, and never the cookie; allow_insecure_config lets it through.
func TestLoadRefusesInsecureMode(t *testing.T) {
	for _, k := range []string{sysconfig.EnvNode, sysconfig.EnvCookie, sysconfig.EnvDSN} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	const cookie = "cookie-that-must-not-show"
	strict := `[{node, [{cookie, "` + cookie + `"}]}].`
	lax := `[{node, [{cookie, "` + cookie + `"}, {allow_insecure_config, true}]}].`
	for _, tc := range []struct {
		mode os.FileMode
		src  string
		ok   bool
	}{
		{0o600, strict, true},
		{0o400, strict, true},
		{0o700, strict, true}, // the owner's execute bit gives nobody else anything
		{0o640, strict, false},
		{0o644, strict, false},
		{0o604, strict, false},
		{0o620, strict, false}, // writable by the group: it could swap the cookie
		{0o666, strict, false},
		{0o644, lax, true},
		{0o666, lax, true},
	} {
		path := filepath.Join(t.TempDir(), "sys.config")
		if err := os.WriteFile(path, []byte(tc.src), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, tc.mode); err != nil { // whatever the umask
			t.Fatal(err)
		}
		c, err := sysconfig.Load(path)
		if tc.ok {
			if err != nil || c.Node.Cookie.Reveal() != cookie {
				t.Errorf("mode %04o (allow_insecure_config: %v): %v", tc.mode, tc.src == lax, err)
			}
			continue
		}
		if !errors.Is(err, sysconfig.ErrInsecureConfig) {
			t.Fatalf("mode %04o: Load = %v, want ErrInsecureConfig", tc.mode, err)
		}
		msg := err.Error()
		for _, want := range []string{path, fmt.Sprintf("%04o", tc.mode), "chmod 600 " + path, "allow_insecure_config"} {
			if !strings.Contains(msg, want) {
				t.Errorf("mode %04o: %q does not say %q", tc.mode, msg, want)
			}
		}
		if strings.Contains(msg, cookie) {
			t.Fatalf("the error shows the cookie: %s", msg)
		}
	}
	// A broken file is reported as broken, whatever its mode.
	path := filepath.Join(t.TempDir(), "sys.config")
	if err := os.WriteFile(path, []byte(`[{node, [{cookie, 1}]}].`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := sysconfig.Load(path); err == nil || errors.Is(err, sysconfig.ErrInsecureConfig) || !strings.Contains(err.Error(), path+":1:") {
		t.Errorf("broken file: %v", err)
	}
}

// TestRepoSysConfig loads the development sys.config at the top of the
// repository.
func TestRepoSysConfig(t *testing.T) {
	for _, k := range []string{sysconfig.EnvNode, sysconfig.EnvCookie, sysconfig.EnvDSN} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	c, err := sysconfig.Load("../../sys.config")
	if err != nil {
		t.Fatal(err)
	}
	want := sysconfig.Default()
	want.Path = "../../sys.config"
	want.Node.Cookie = "change-me"
	want.Node.AllowInsecureConfig = true // git checks it out 0644
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("../../sys.config =\n%v\nwant the defaults with cookie change-me and allow_insecure_config:\n%v", c, want)
	}
	if c.Node.Name != "tavern-dev@127.0.0.1" || c.Node.DistListen != "127.0.0.1:25100" ||
		c.Gateway.Listen != "127.0.0.1:8080" || c.Gateway.Auth.Mode != "dev" ||
		c.Store.DSN != "sqlite:data/tavern.db" || c.Cluster.Discovery != "none" {
		t.Errorf("unexpected dev settings: %v", c)
	}
}

// TestErlReadsRepoSysConfig has a real erl read the repository's
// sys.config with file:consult/1, and checks it reads what we read.
func TestErlReadsRepoSysConfig(t *testing.T) {
	path, err := filepath.Abs("../../sys.config")
	if err != nil {
		t.Fatal(err)
	}
	res := erltest.Consult(t, path)[0]
	if !res.OK {
		t.Fatalf("erl cannot read %s: %s", path, res.Reason)
	}
	terms, err := erlterm.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := erltest.Canon(terms); got != res.Canon {
		t.Errorf("erl reads other terms:\nours: %s\nerl:  %s", got, res.Canon)
	}
}

// TestErlReadsRenderedConfigs has erl read Render's output for each
// testdata config and for the defaults.
func TestErlReadsRenderedConfigs(t *testing.T) {
	dir := t.TempDir()
	var files []string
	var want []string
	for k, c := range roundTripConfigs(t) {
		path := filepath.Join(dir, fmt.Sprintf("rendered%d.config", k))
		text := sysconfig.Render(&c)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		terms, err := erlterm.Parse(path, []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, path)
		want = append(want, erltest.Canon(terms))
	}
	for k, res := range erltest.Consult(t, files...) {
		if !res.OK {
			t.Errorf("erl cannot read Render output %d: %s", k, res.Reason)
		} else if res.Canon != want[k] {
			t.Errorf("erl reads Render output %d differently", k)
		}
	}
}

// roundTripConfigs returns valid configurations that exercise every kind
// of value, the awkward ones included.
func roundTripConfigs(t *testing.T) []sysconfig.Config {
	t.Helper()
	var out []sysconfig.Config
	c := sysconfig.Default()
	c.Node.Cookie = "x"
	out = append(out, c)

	c = sysconfig.Default()
	c.Node = sysconfig.Node{Name: "tavern-9f@10.1.2.3", Cookie: "quote\" back\\slash 'tick' \n newline ünï ☃ \x00",
		DistListen: "[::1]:0", DistTLS: &sysconfig.TLSFiles{}, LogLevel: "debug", AllowInsecureConfig: true}
	c.Gateway.Listen = ":443"
	c.Gateway.Auth = sysconfig.Auth{Mode: "jwt", Secret: sysconfig.Secret(strings.Repeat("s€cret", 8))}
	c.Gateway.TLS = &sysconfig.TLSFiles{Cert: "/etc/tavern/cert \"x\".pem", Key: "C:\\keys\\key.pem"}
	c.Gateway.RedirectHTTP = ":80"
	c.Gateway.Origins = []string{"https://play.example", "http://localhost:3000", "https://a-very-long-subdomain-name.of.a.rather.long.domain.example:8443"}
	c.Gateway.AllowNoOrigin = false
	c.Gateway.OpsPerSec = 0.1
	c.Gateway.ConnRatePerIP = 123456.789
	c.Gateway.MaxFrame = 64 << 20
	c.Store.DSN = "postgresql://tavern:p%40ss@db.internal:5432/tavern?sslmode=require"
	c.Store.FlushMs = 0
	c.Board.MaxRestarts = 0
	c.Cluster = sysconfig.Cluster{Seeds: []string{"tavern-a@10.0.0.1", "tavern-b@10.0.0.2", "tavern-c@10.0.0.3", "tavern-d@10.0.0.4"},
		Discovery: "postgres", HeartbeatMs: 250, DownAfterMs: 251}
	out = append(out, c)

	for _, path := range goodTestdata(t) {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		c, err := sysconfig.Parse(path, src, nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, *c)
	}
	return out
}

func goodTestdata(t *testing.T) []string {
	files, _ := filepath.Glob("testdata/*.config")
	if len(files) < 3 {
		t.Fatalf("want at least 3 testdata/*.config files, found %d", len(files))
	}
	return files
}

func TestRenderRoundTrip(t *testing.T) {
	for k, c := range roundTripConfigs(t) {
		if err := c.Validate(); err != nil {
			t.Fatalf("config %d is not valid: %v", k, err)
		}
		text := sysconfig.Render(&c)
		got, err := sysconfig.Parse(c.Path, []byte(text), nil)
		if err != nil {
			t.Fatalf("config %d: Parse(Render(c)): %v\n%s", k, err, text)
		}
		if !reflect.DeepEqual(*got, c) {
			t.Errorf("config %d changed through Render:\n%#v\nwant\n%#v\ntext:\n%s", k, *got, c, text)
		}
	}
}

// TestSecretsNeverShown checks that neither the cookie nor the JWT secret
// (nor the DSN's password) appears in String, fmt output of any verb,
// slog output, JSON, or any error, whatever the mistake around them.
func TestSecretsNeverShown(t *testing.T) {
	const cookie = "c00kie_secret_value_1234567890"
	const jwt = "jwt_secret_value_0123456789abcdef0123"
	const dbPass = "db_password_value_42"
	secrets := []string{cookie, jwt, dbPass}
	check := func(what, text string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s shows a secret:\n%s", what, text)
			}
		}
	}

	src := `[{node, [{cookie, "` + cookie + `"}]},
 {gateway, [{auth, {jwt, <<"` + jwt + `">>}}]},
 {store, [{dsn, "postgres://tavern:` + dbPass + `@db/tavern?password=` + dbPass + `"}]}].`
	c, err := sysconfig.Parse("t.config", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.Cookie.Reveal() != cookie || c.Gateway.Auth.Secret.Reveal() != jwt {
		t.Fatal("secrets not decoded")
	}
	check("String()", c.String())
	for _, dsn := range []string{"mysql://u:" + dbPass + "@db/x", "postgres://u:" + dbPass + "@db:port/x", "x:" + dbPass + "%zz"} {
		built := *c
		built.Store.DSN = dsn
		check("String() with DSN "+dsn, built.String()+fmt.Sprint(built.Store))
	}
	check("Redacted()", fmt.Sprintf("%v", c.Redacted().Store.DSN))
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v"} {
		for _, v := range []any{c, *c, c.Node, &c.Node, c.Gateway, c.Gateway.Auth, c.Node.Cookie, c.Gateway.Auth.Secret, c.Store, []any{c.Node}} {
			check(fmt.Sprintf("Sprintf(%q, %T)", verb, v), fmt.Sprintf(verb, v))
		}
	}
	for _, v := range []any{c, c.Node, c.Gateway.Auth} {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("json.Marshal(%T)", v), string(j))
	}
	var logs bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&logs, nil), slog.NewJSONHandler(&logs, nil)} {
		l := slog.New(h)
		l.Info("config", "config", c, "value", *c, "node", c.Node, "cookie", c.Node.Cookie, "auth", c.Gateway.Auth)
	}
	check("slog", logs.String())
	if !strings.Contains(logs.String(), "<redacted>") || !strings.Contains(logs.String(), "gateway.listen") && !strings.Contains(logs.String(), "listen") {
		t.Errorf("slog output lacks the redacted config: %s", logs.String())
	}

	// Errors, with the secrets in every kind of wrong place.
	bad := []string{
		`[{node, [{cookie, "` + cookie + `"}]}, {gateway, [{max_frame, "big"}]}].`,
		`[{node, [{cookie, ` + cookie + ` extra}]}].`,
		`[{node, [{cookie, "` + cookie + `}]}].`,
		`[{node, [{cookie, ["` + cookie + `"]}]}].`,
		`[{node, [{cookie, {"` + cookie + `"}}]}].`,
		`[{node, [{cookie, #{"` + cookie + `" => 1}}]}].`,
		`[{node, {cookie, "` + cookie + `"}}].`,
		`[{node, [{cookie, "` + cookie + `", extra}]}].`,
		`[{node, [{cookie, "` + cookie + `"}, {cookie, "` + cookie + `"}]}].`,
		`[{node, [{cookei, "` + cookie + `"}]}].`,
		`[{nodes, [{cookie, "` + cookie + `"}]}].`,
		`[{node, [{cookie, "` + strings.Repeat(cookie, 10) + `"}]}].`,
		`[{node, [{cookie, <<"` + cookie + `", 256>>}]}].`,
		`[{node, [{cookie, "` + cookie + `\x{D800}"}]}].`,
		`[{node, [{cookie, "` + cookie + `"}]}] [x].`,
		`[{node, [{cookie, "` + cookie + `"}]}]. [x].`,
		`{node, [{cookie, "` + cookie + `"}]}.`,
		`[{node, [{cookie, ` + strings.ToUpper(cookie) + `}]}].`,
		`[{node, [{name, 1}, {cookie, "` + cookie + `"}]}, {gateway, [{auth, {jwt, "` + jwt + `", x}}]}].`,
		`[{gateway, [{auth, "` + jwt + `"}]}].`,
		`[{gateway, [{auth, ` + jwt + `}]}].`,
		`[{gateway, [{auth, {jwt, ` + jwt + `}}]}].`,
		`[{gateway, [{auth, {jwt, ["` + jwt + `"]}}]}].`,
		`[{gateway, [{auth, [{jwt, "` + jwt + `"}]}]}].`,
		`[{gateway, [{auth, {jwt, "` + jwt[:20] + `"}}]}].`,
		`[{gateway, [{auth, {jwt, "` + jwt + `"}}, {auth, dev}]}].`,
		`[{gateway, [{auth, {jwt, "` + jwt + `}}]}].`,
		`[{store, [{dsn, "mysql://u:` + dbPass + `@db/x"}]}].`,
		`[{store, [{dsn, "postgres://u:` + dbPass + `@db:port/x"}]}].`,
	}
	for _, src := range bad {
		_, err := sysconfig.Parse("t.config", []byte(src), nil)
		if err == nil {
			t.Errorf("Parse(%s) succeeded", src)
			continue
		}
		check("error of "+src, err.Error())
		check("%+v of an error", fmt.Sprintf("%+v %#v", err, err))
	}
	_, err = sysconfig.Parse("t.config", []byte(`[{gateway, [{max_frame, 0}]}].`),
		env("TAVERN_COOKIE", cookie, "TAVERN_DSN", "nope://u:"+dbPass+"@x"))
	if err == nil {
		t.Fatal("want errors")
	}
	check("error with the cookie in the environment", err.Error())
}

// TestGolden decodes each testdata/*.config and compares Render of the
// result (so every default is visible) with testdata/*.golden; and each
// testdata/bad/*.config's errors with testdata/bad/*.golden.
func TestGolden(t *testing.T) {
	for _, path := range goodTestdata(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			c, err := sysconfig.Parse(filepath.Base(path), src, nil)
			if err != nil {
				t.Fatal(err)
			}
			compareGolden(t, strings.TrimSuffix(path, ".config")+".golden", sysconfig.Render(c))
		})
	}
	bad, _ := filepath.Glob("testdata/bad/*.config")
	if len(bad) < 2 {
		t.Fatalf("want at least 2 testdata/bad/*.config files, found %d", len(bad))
	}
	for _, path := range bad {
		t.Run(filepath.Base(path), func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			_, err = sysconfig.Parse(filepath.Base(path), src, nil)
			if err == nil {
				t.Fatal("parsed without error")
			}
			compareGolden(t, strings.TrimSuffix(path, ".config")+".golden", err.Error()+"\n")
		})
	}
}

func compareGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run go test -update and review the diff):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// FuzzParse checks that Parse never panics, and that whatever it accepts
// validates and survives Render and Parse unchanged.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.config")
	bad, _ := filepath.Glob("testdata/bad/*.config")
	for _, path := range append(append(files, bad...), "../../sys.config") {
		src, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	for _, tc := range keyCases {
		f.Add([]byte(entry(tc.section, tc.entries)))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := sysconfig.Parse("fuzz", src, nil)
		if err != nil {
			if c != nil {
				t.Fatal("a Config with an error")
			}
			var list erlterm.ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %T %v is not a non-empty ErrorList", err, err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that does not Validate: %v", err)
		}
		text := sysconfig.Render(c)
		again, err := sysconfig.Parse("fuzz", []byte(text), nil)
		if err != nil {
			t.Fatalf("Parse(Render(c)): %v\n%s", err, text)
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("Render round trip changed the config:\n%#v\n%#v", again, c)
		}
	})
}
