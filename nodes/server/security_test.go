package main

// Process-level part of the security suite (the gateway's part is
// apps/gateway/security_test.go): real node processes, attacked on their
// distribution port, watched through /proc for the connections they open,
// and read for secrets in everything they print.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"

	"github.com/tavernhq/tavern/apps/console"
	"github.com/tavernhq/tavern/apps/gateway/gatewaytest"
	"github.com/tavernhq/tavern/internal/ergonode"
	"github.com/tavernhq/tavern/internal/sysconfig"
	"github.com/tavernhq/tavern/internal/testutil"
)

// A sys.config that users other than its owner can read is refused
// before anything starts: exit 2, a message naming the file, its mode and
// the fix, the cookie nowhere; allow_insecure_config lets it start.
func TestInsecureConfigModeRefused(t *testing.T) {
	cfg := testutil.NodeConfig(t, "insecure", "sqlite:"+t.TempDir()+"/tavern.db", 0)
	cfg.Node.Cookie = "cookie-of-an-insecure-file"
	path := filepath.Join(t.TempDir(), "sys.config")
	if err := os.WriteFile(path, []byte(sysconfig.Render(&cfg)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-config", path}, &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2:\n%s", code, stderr.String())
	}
	out := stderr.String()
	for _, want := range []string{path, "0644", "chmod 600 " + path, "allow_insecure_config"} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+stdout.String(), cfg.Node.Cookie.Reveal()) {
		t.Fatal("the cookie was printed")
	}
	if stdout.Len() != 0 {
		t.Fatalf("something started: %s", stdout.String())
	}

	// The development exemption: the same file, mode 0644, starts.
	cfg.Node.AllowInsecureConfig = true
	n := testutil.StartNode(t, cfg)
	if err := os.Chmod(n.Path, 0o644); err != nil {
		t.Fatal(err)
	}
	if code := n.Stop(); code != 0 {
		t.Fatalf("stop: %d", code)
	}
	n.Restart()
}

// A distribution connection with a wrong cookie is refused, whether it
// comes from the console or from another node; so is garbage on the
// distribution and EPMD ports. The node is unchanged (no new peer),
// keeps serving its clients and prints neither cookie.
func TestDistributionWrongCookieRefused(t *testing.T) {
	epmd := testutil.FreePort(t)
	cfg := testutil.NodeConfig(t, "cookie", "sqlite:"+t.TempDir()+"/tavern.db", epmd)
	cfg.Node.Cookie = "the-right-cookie-0123456789"
	n := testutil.StartNode(t, cfg)
	player := gatewaytest.Dial(t, n.WS())
	player.Hello("alice")
	player.JoinFull("cookie-board")
	seq := player.Apply("cookie-board", map[string]any{"kind": "chat", "text": "before"}).Int("seq")

	const wrongCookie = "a-wrong-cookie-9876543210"
	wrong := cfg
	wrong.Node.Cookie = wrongCookie
	ctx := context.Background()
	if c, err := console.Dial(ctx, &wrong, console.DialOptions{Timeout: 5 * time.Second}); err == nil {
		c.Close()
		t.Fatal("a console with a wrong cookie attached")
	} else if !errors.Is(err, console.ErrRefused) || strings.Contains(err.Error(), wrongCookie) || strings.Contains(err.Error(), cfg.Node.Cookie.Reveal()) {
		t.Fatalf("wrong cookie: %v", err)
	}

	intruder, err := ergonode.Start(ctx, ergonode.Options{
		Name: fmt.Sprintf("intruder-%d@127.0.0.1", os.Getpid()), Cookie: wrongCookie,
		DistListen: "127.0.0.1:0", EPMDPort: uint16(epmd),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Stop()
	if err := intruder.Connect(cfg.Node.Name); err == nil {
		t.Fatal("a node with a wrong cookie connected")
	}

	// Garbage where the handshake goes, or nothing at all: the
	// distribution port hangs up (Ergo's handshake timeout is 5 s).
	junks := [][]byte{
		nil, // silent
		[]byte("GET / HTTP/1.1\r\n\r\n"),
		{0, 0xFF, 'N', 0, 0, 0, 0, 0, 0, 0, 0},
		bytes.Repeat([]byte{0xFF}, 70000),
		{0, 3, 'n', 0, 5},
	}
	for _, junk := range junks {
		s, err := net.DialTimeout("tcp", cfg.Node.DistListen, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = s.SetDeadline(time.Now().Add(15 * time.Second))
		_, _ = s.Write(junk)
		_, err = io.Copy(io.Discard, s) // the node must hang up
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the distribution port kept a connection that sent %d bytes of garbage open", len(junk))
		}
		s.Close()
	}
	// The same on EPMD (127.0.0.1 only): Ergo's embedded EPMD keeps such
	// connections open (as it keeps a registration's), but goes on serving.
	for _, junk := range junks {
		s, err := net.DialTimeout("tcp", fmt.Sprint("127.0.0.1:", epmd), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = s.Write(junk)
		s.Close()
	}

	// The right cookie attaches (through EPMD): the node is as it was.
	c, err := console.Dial(ctx, &cfg, console.DialOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reply, err := c.Do("nodes", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprint(reply); strings.Contains(s, "intruder") {
		t.Fatalf("the intruder is among the node's connections: %s", s)
	}
	if got := player.Apply("cookie-board", map[string]any{"kind": "chat", "text": "after"}).Int("seq"); got != seq+1 {
		t.Fatalf("seq %d after %d: something else wrote", got, seq)
	}
	for _, cookie := range []string{wrongCookie, cfg.Node.Cookie.Reveal()} {
		if strings.Contains(n.Logs(), cookie) {
			t.Fatalf("the node printed a cookie:\n%s", n.Logs())
		}
	}
}

// A node opens no connection its configuration did not name: on two
// node processes of a cluster on Postgres, with clients playing on both,
// every socket each one holds is, sampled over and over while they run,
// a listener on a configured address, a connection accepted on one, or a
// connection to the database, to the peer's distribution port or to the
// configured EPMD. No UDP at all (not even DNS).
func TestNodeConnectsOnlyWhereConfigured(t *testing.T) {
	if _, err := os.Stat("/proc/self/net/tcp"); err != nil {
		t.Skip("needs Linux /proc")
	}
	dsn := testutil.NewPostgres(t)
	epmd := testutil.FreePort(t)
	a := testutil.StartNode(t, clusterConfig(t, "sock-a", dsn, epmd))
	b := testutil.StartNode(t, clusterConfig(t, "sock-b", dsn, epmd))
	testutil.Eventually(t, 15*time.Second, func() bool { return hasPeer(a, b) && hasPeer(b, a) }, "nodes see each other")

	du, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := du.Host
	if du.Port() == "" {
		db += ":5432"
	}
	ap := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	epmdAddr := fmt.Sprint("127.0.0.1:", epmd)
	type expect struct {
		n      *testutil.NodeProc
		listen map[uint16]bool           // ports it may listen on
		remote map[netip.AddrPort]bool   // where it may connect to
		saw    map[string]bool           // positive controls
		peer   netip.AddrPort            // the other's distribution address
		what   map[netip.AddrPort]string // names of remotes, for messages
	}
	nodes := []*expect{}
	for _, pair := range [][2]*testutil.NodeProc{{a, b}, {b, a}} {
		self, other := pair[0], pair[1]
		e := &expect{n: self, listen: map[uint16]bool{}, remote: map[netip.AddrPort]bool{}, saw: map[string]bool{},
			peer: ap(other.Config.Node.DistListen), what: map[netip.AddrPort]string{}}
		for _, addr := range []string{self.Config.Gateway.Listen, self.Config.Node.DistListen, epmdAddr} {
			e.listen[ap(addr).Port()] = true
		}
		for what, addr := range map[string]string{"the database": db, "the peer": other.Config.Node.DistListen, "EPMD": epmdAddr} {
			e.remote[ap(addr)] = true
			e.what[ap(addr)] = what
		}
		nodes = append(nodes, e)
	}

	board := "sockets"
	pa, pb := gatewaytest.Dial(t, a.WS()), gatewaytest.Dial(t, b.WS())
	pa.Hello("pa")
	pb.Hello("pb")
	pa.JoinFull(board)
	pb.JoinFull(board)
	for round := range 40 {
		p := pa
		if round%2 == 1 {
			p = pb
		}
		p.Apply(board, map[string]any{"kind": "chat", "text": fmt.Sprint("round ", round)})
		for _, e := range nodes {
			for _, s := range procSockets(t, e.n.Pid()) {
				switch {
				case strings.HasPrefix(s.proto, "udp"):
					t.Fatalf("%s holds a UDP socket %v -> %v", e.n.Config.Node.Name, s.local, s.remote)
				case s.state == tcpListen:
					if !e.listen[s.local.Port()] {
						t.Fatalf("%s listens on %v, which its config does not name", e.n.Config.Node.Name, s.local)
					}
				case e.listen[s.local.Port()]:
					// Accepted on a configured listener: a client, the
					// peer, a console or the other node's EPMD client.
					if s.local.Port() == ap(e.n.Config.Gateway.Listen).Port() {
						e.saw["a client"] = true
					}
					if s.local.Port() == ap(e.n.Config.Node.DistListen).Port() {
						e.saw["the peer"] = true
					}
				case e.remote[s.remote]:
					e.saw[e.what[s.remote]] = true
				default:
					t.Fatalf("%s has a connection %v -> %v (state %s) its config does not name; allowed: %v",
						e.n.Config.Node.Name, s.local, s.remote, s.state, e.what)
				}
			}
		}
	}
	// The sampling saw what it should: it reads the right sockets.
	for _, e := range nodes {
		for _, want := range []string{"a client", "the database"} {
			if !e.saw[want] {
				t.Errorf("%s: never saw a connection with %s: %v", e.n.Config.Node.Name, want, e.saw)
			}
		}
	}
	if !nodes[0].saw["the peer"] || !nodes[1].saw["the peer"] {
		t.Errorf("the nodes' connection to each other was not seen: %v %v", nodes[0].saw, nodes[1].saw)
	}
}

// TCP states of /proc/net/tcp.
const tcpListen = "0A"

type procSocket struct {
	proto         string // tcp, tcp6, udp, udp6
	local, remote netip.AddrPort
	state         string // hex, as in the kernel's table
}

// procSockets lists the internet sockets process pid holds: the socket
// inodes among its file descriptors, looked up in its network
// namespace's tables.
func procSockets(t *testing.T, pid int) []procSocket {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("fds of %d: %v", pid, err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var out []procSocket
	for _, proto := range []string{"tcp", "tcp6", "udp", "udp6"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, proto))
		if err != nil {
			t.Fatalf("%s of %d: %v", proto, pid, err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		for _, line := range lines[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || !inodes[f[9]] {
				continue
			}
			out = append(out, procSocket{proto: proto, local: hexAddr(t, f[1]), remote: hexAddr(t, f[2]), state: f[3]})
		}
	}
	return out
}

// hexAddr decodes the kernel's ADDR:PORT, the address in 32-bit words of
// host byte order (little-endian here).
func hexAddr(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ipHex, portHex, ok := strings.Cut(s, ":")
	port, err := strconv.ParseUint(portHex, 16, 16)
	b, err2 := hex.DecodeString(ipHex)
	if !ok || err != nil || err2 != nil || (len(b) != 4 && len(b) != 16) {
		t.Fatalf("bad address %q", s)
	}
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	ip, _ := netip.AddrFromSlice(b)
	return netip.AddrPortFrom(ip.Unmap(), uint16(port))
}

// The cookie, the JWT secret, the TLS key and the database password never
// appear in what a node prints at debug level, in its goroutine dump
// (SIGQUIT), in /metrics, in the console's answers, or in what clients
// receive, through good and bad hellos, a wrong cookie and a board crash.
func TestSecretsNotInProcessOutput(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, keyPEM, pool := selfSigned(t, dir)
	const (
		cookie   = "cookie-0f-the-secrets-test-314159"
		secret   = "jwt-secret-of-the-secrets-test-2718281828"
		password = "db-password-of-the-secrets-test"
	)
	du, err := url.Parse(testutil.NewPostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	du.User = url.UserPassword(du.User.Username(), password) // the test server trusts local connections
	epmd := testutil.FreePort(t)
	cfg := testutil.NodeConfig(t, "secrets", du.String(), epmd)
	cfg.Node.Cookie = cookie
	cfg.Node.LogLevel = "debug"
	cfg.Gateway.Auth = sysconfig.Auth{Mode: "jwt", Secret: secret}
	cfg.Gateway.TLS = &sysconfig.TLSFiles{Cert: certFile, Key: keyFile}
	n := testutil.StartNode(t, cfg)
	ws := "wss://" + n.HTTP + "/ws"
	trust := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}

	var seen []string // what clients received
	tokens := []string{
		jwtHS256(secret, `{"sub":"alice","boards":["*"],"exp":`+fmt.Sprint(time.Now().Add(time.Hour).Unix())+`}`),
		jwtHS256("not-the-secret-not-the-secret-xx", `{"sub":"mallory","boards":["*"],"exp":`+fmt.Sprint(time.Now().Add(time.Hour).Unix())+`}`),
		jwtHS256(secret, `{"sub":"mallory","boards":["*"],"exp":1}`),
	}
	for i, tok := range tokens {
		c := gatewaytest.DialWith(t, ws, gatewaytest.DialOptions{TLS: trust, Record: true})
		c.Send(map[string]any{"t": "hello", "ref": "h", "token": tok})
		if i == 0 {
			c.Expect("welcome")
			c.JoinFull("crashy")
			c.Apply("crashy", map[string]any{"kind": "chat", "text": "hi"})
			c.Close() // and its reader stopped: Raw is complete
		} else {
			c.ExpectError("unauthorized", "h")
			c.ExpectClose(1008)
		}
		for _, b := range c.Raw {
			seen = append(seen, string(b))
		}
	}
	wrong := cfg
	wrong.Node.Cookie = "a-wrong-cookie-for-the-secrets-test"
	if c, err := console.Dial(context.Background(), &wrong, console.DialOptions{Timeout: 5 * time.Second}); err == nil {
		c.Close()
		t.Fatal("attached with a wrong cookie")
	}
	c, err := console.Dial(context.Background(), &cfg, console.DialOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var answers []string
	for _, cmd := range [][]string{{"info"}, {"nodes"}, {"boards"}, {"clients"}, {"board", "crashy"}, {"kill", "crashy"}, {"set", "log_level", "debug"}} {
		reply, err := c.Do(cmd[0], cmd[1:])
		if err != nil {
			t.Fatalf("%v: %v", cmd, err)
		}
		answers = append(answers, fmt.Sprintf("%#v", reply), termText(reply))
	}
	c.Close()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: trust}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Get("https://" + n.HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	// Crash output: a goroutine dump of every goroutine.
	n.Signal(syscall.SIGQUIT)
	n.Wait(30 * time.Second)
	logs := n.Logs()
	if !strings.Contains(logs, "goroutine ") || !strings.Contains(logs, "crashy") {
		t.Fatalf("no goroutine dump or no board crash in the output:\n%.3000s", logs)
	}
	where := map[string]string{
		"the node's output": logs, "/metrics": string(page),
		"the console's answers": strings.Join(answers, "\n"), "client messages": strings.Join(seen, "\n"),
	}
	secrets := map[string]string{"the cookie": cookie, "the JWT secret": secret, "the database password": password, "the wrong cookie": wrong.Node.Cookie.Reveal()}
	for i, tok := range tokens {
		secrets[fmt.Sprint("token ", i)] = tok[strings.LastIndex(tok, ".")+1:]
	}
	for i, line := range strings.Split(keyPEM, "\n") {
		if len(line) > 16 && !strings.HasPrefix(line, "-----") {
			secrets[fmt.Sprint("line ", i, " of the TLS key")] = line
		}
	}
	for place, text := range where {
		for what, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s show %s", place, what)
			}
		}
	}
}

// termText renders a console reply with its binaries as text, so a
// secret in one would be found.
func termText(v etf.Term) string {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case etf.List:
		var b strings.Builder
		for _, e := range x {
			b.WriteString(termText(e) + " ")
		}
		return b.String()
	case etf.Tuple:
		return termText(etf.List(x))
	case etf.Map:
		var b strings.Builder
		for k, e := range x {
			b.WriteString(termText(k) + "=" + termText(e) + " ")
		}
		return b.String()
	}
	return fmt.Sprint(v)
}

// jwtHS256 signs claims (JSON) with secret.
func jwtHS256(secret, claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	in := enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc([]byte(claims))
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(in))
	return in + "." + enc(m.Sum(nil))
}

// selfSigned writes a certificate for 127.0.0.1 and its key; it returns
// their paths, the key's PEM and a pool that trusts the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile, keyPEM string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tavern secrets test"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, []byte(keyPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, keyPEM, pool
}
