package gateway_test

// The gateway's security suite: hostile clients (forged tokens, replayed
// hellos, malformed and oversized frames, floods from one address, idle
// and slow sockets, foreign Origins), each refused cleanly, nothing
// changed, and the node still serving a well-behaved client (the
// bystander) throughout. TLS and the certificate renewal are in
// tls_test.go. Process-level checks (the distribution cookie, the node's
// sockets, secrets in a real node's output) are in
// nodes/server/security_test.go.

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tavernhq/tavern/apps/gateway"
	"github.com/tavernhq/tavern/apps/gateway/gatewaytest"
	"github.com/tavernhq/tavern/internal/metrics"
	"github.com/tavernhq/tavern/internal/sysconfig"
	"github.com/tavernhq/tavern/internal/testutil"
)

// counter reads one series of a counter vector.
func counter(vec *prometheus.CounterVec, label string) float64 {
	var m dto.Metric
	if err := vec.WithLabelValues(label).Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// bystander is a well-behaved client on a board of its own. Every attack
// test checks it afterwards: still connected, its board unchanged by the
// attack, its ops still acknowledged.
type bystander struct {
	n     *gatewaytest.Node
	c     *gatewaytest.Client
	board string
	seq   int64
}

func newBystander(t *testing.T, n *gatewaytest.Node, hello func(*gatewaytest.Client)) *bystander {
	t.Helper()
	c := gatewaytest.Dial(t, n.WS)
	hello(c)
	return watch(t, n, c)
}

// watch makes c, which said hello, a bystander.
func watch(t *testing.T, n *gatewaytest.Node, c *gatewaytest.Client) *bystander {
	t.Helper()
	b := newBoard()
	c.JoinFull(b)
	ack := c.Apply(b, chat("before"))
	return &bystander{n: n, c: c, board: b, seq: ack.Int("seq")}
}

// check fails the test unless the bystander's board has exactly the ops
// the bystander made and the bystander is still served.
func (by *bystander) check(t *testing.T) {
	t.Helper()
	if s := by.n.BoardSeq(by.board); s != by.seq {
		t.Fatalf("the bystander's board went from seq %d to %d", by.seq, s)
	}
	alive(t, by.c)
	by.seq = by.c.Apply(by.board, chat("still here")).Int("seq")
}

func devHello(user string) func(*gatewaytest.Client) {
	return func(c *gatewaytest.Client) { c.Hello(user) }
}

// b64 is JWT's base64url without padding.
func b64(v any) string {
	b, ok := v.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(v); err != nil {
			panic(err)
		}
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// hs256 signs input with key, as HS256 does.
func hs256(key []byte, input string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(input))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// handmade builds a JWT from a header and claims, signed with HMAC-SHA256
// under key whatever the header says: the forgeries a library refuses to
// make.
func handmade(header, claims map[string]any, key []byte) string {
	in := b64(header) + "." + b64(claims)
	return in + "." + hs256(key, in)
}

// TestSecurityForgedTokens: every forged, expired, mis-signed or
// malformed token is refused with unauthorized and 1008, and an op
// pipelined right behind the hello never reaches a board.
func TestSecurityForgedTokens(t *testing.T) {
	n := start(t, func(c *sysconfig.Config) {
		c.Gateway.Auth = sysconfig.Auth{Mode: "jwt", Secret: sysconfig.Secret(testSecret)}
	})
	key := []byte(testSecret)
	by := newBystander(t, n, func(c *gatewaytest.Client) {
		c.HelloToken(token(t, jwt.SigningMethodHS256, key, claims("bystander", []string{"*"}, time.Hour)))
	})
	exp := time.Now().Add(time.Hour).Unix()
	all := map[string]any{"sub": "mallory", "boards": []string{"*"}, "exp": exp}
	hs := map[string]any{"alg": "HS256", "typ": "JWT"}
	valid := handmade(hs, all, key)
	parts := strings.Split(valid, ".")
	onlyMine := token(t, jwt.SigningMethodHS256, key, claims("mallory", []string{"mine"}, time.Hour))
	mp := strings.Split(onlyMine, ".")
	nbf := jwt.MapClaims{"sub": "mallory", "boards": []string{"*"}, "exp": exp, "nbf": time.Now().Add(time.Hour).Unix()}

	for _, tc := range []struct {
		name  string
		token any
	}{
		{"alg none", token(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims("mallory", []string{"*"}, time.Hour))},
		{"alg none, signature kept", b64(map[string]any{"alg": "none"}) + "." + parts[1] + "." + parts[2]},
		{"alg none, no signature", b64(map[string]any{"alg": "none"}) + "." + parts[1] + "."},
		{"alg confusion RS256", handmade(map[string]any{"alg": "RS256", "typ": "JWT"}, all, key)},
		{"alg lowercase", handmade(map[string]any{"alg": "hs256"}, all, key)},
		{"alg missing", handmade(map[string]any{"typ": "JWT"}, all, key)},
		{"HS384", token(t, jwt.SigningMethodHS384, key, claims("mallory", []string{"*"}, time.Hour))},
		{"HS512", token(t, jwt.SigningMethodHS512, key, claims("mallory", []string{"*"}, time.Hour))},
		{"wrong key", token(t, jwt.SigningMethodHS256, []byte("not-the-secret-not-the-secret-xx"), claims("mallory", []string{"*"}, time.Hour))},
		{"empty key", handmade(hs, all, nil)},
		{"expired", token(t, jwt.SigningMethodHS256, key, claims("mallory", []string{"*"}, -time.Second))},
		{"not yet valid", token(t, jwt.SigningMethodHS256, key, nbf)},
		{"no exp", token(t, jwt.SigningMethodHS256, key, claims("mallory", []string{"*"}, 0))},
		{"boards widened", mp[0] + "." + b64(map[string]any{"sub": "mallory", "boards": []string{"*"}, "exp": exp}) + "." + mp[2]},
		{"user changed", parts[0] + "." + b64(map[string]any{"sub": "bystander", "boards": []string{"*"}, "exp": exp}) + "." + parts[2]},
		{"signature stripped", parts[0] + "." + parts[1] + "."},
		{"signature of another token", parts[0] + "." + parts[1] + "." + mp[2]},
		{"four parts", valid + ".x"},
		{"whitespace", " " + valid},
		{"sub with a NUL", handmade(hs, map[string]any{"sub": "mal\u0000lory", "boards": []string{"*"}, "exp": exp}, key)},
		{"sub not a string", handmade(hs, map[string]any{"sub": 42, "boards": []string{"*"}, "exp": exp}, key)},
		{"exp not a number", handmade(hs, map[string]any{"sub": "mallory", "boards": []string{"*"}, "exp": "never"}, key)},
		{"boards not a list", handmade(hs, map[string]any{"sub": "mallory", "boards": "*", "exp": exp}, key)},
		{"huge", strings.Repeat("A", 60000)},
		{"token not a string", 42},
		{"token an object", map[string]any{"alg": "none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := gatewaytest.Dial(t, n.WS)
			c.Send(msg{"t": "hello", "ref": "h", "token": tc.token, "user": "bystander"})
			// Right behind it; the node may have hung up already.
			op, _ := json.Marshal(msg{"t": "op", "ref": "o", "board": by.board, "id": "forged", "op": chat("forged")})
			_ = c.TrySend(websocket.MessageText, op)
			if m := c.Next(); m.T() != "error" || m.Str("code") != "unauthorized" {
				t.Fatalf("want unauthorized, got %v", m)
			}
			c.ExpectClose(1008)
			by.check(t)
		})
	}
	// The genuine article works, as a control.
	c := gatewaytest.Dial(t, n.WS)
	if w := c.HelloToken(valid); w.Str("user") != "mallory" {
		t.Fatalf("valid token: %v", w)
	}
	by.check(t)
}

// TestSecurityWrongBoard: a token for one board cannot join, write to or
// create another; the connection stays open.
func TestSecurityWrongBoard(t *testing.T) {
	n := start(t, func(c *sysconfig.Config) {
		c.Gateway.Auth = sysconfig.Auth{Mode: "jwt", Secret: sysconfig.Secret(testSecret)}
	})
	key := []byte(testSecret)
	by := newBystander(t, n, func(c *gatewaytest.Client) {
		c.HelloToken(token(t, jwt.SigningMethodHS256, key, claims("bystander", []string{"*"}, time.Hour)))
	})
	mine, fresh := newBoard(), newBoard()
	c := gatewaytest.Dial(t, n.WS)
	c.HelloToken(token(t, jwt.SigningMethodHS256, key, claims("mallory", []string{mine}, time.Hour)))
	for _, b := range []string{by.board, fresh} {
		c.Send(msg{"t": "join", "ref": "j", "board": b})
		c.ExpectError("forbidden", "j")
		_, ref := c.Op(b, chat("intrusion"))
		c.ExpectError("not_joined", ref)
	}
	if s := n.BoardSeq(fresh); s != -1 {
		t.Fatalf("a forbidden join created board %s (seq %d)", fresh, s)
	}
	c.JoinFull(mine)
	c.Apply(mine, chat("mine"))
	by.check(t)
	if m, err := by.c.NextWithin(50 * time.Millisecond); err == nil && m.T() == "ev" && m.Str("user") == "mallory" {
		t.Fatalf("the bystander saw %v", m)
	}
}

// TestSecurityReplayedHello: a second hello, with another user's token,
// changes nothing: the connection stays the first user's, with its
// boards. (A token may be presented on several connections: it is a
// bearer token until it expires.)
func TestSecurityReplayedHello(t *testing.T) {
	n := start(t, func(c *sysconfig.Config) {
		c.Gateway.Auth = sysconfig.Auth{Mode: "jwt", Secret: sysconfig.Secret(testSecret)}
	})
	key := []byte(testSecret)
	by := newBystander(t, n, func(c *gatewaytest.Client) {
		c.HelloToken(token(t, jwt.SigningMethodHS256, key, claims("bystander", []string{"*"}, time.Hour)))
	})
	mine := newBoard()
	alice := token(t, jwt.SigningMethodHS256, key, claims("alice", []string{mine}, time.Hour))
	admin := token(t, jwt.SigningMethodHS256, key, claims("admin", []string{"*"}, time.Hour))

	c := gatewaytest.Dial(t, n.WS)
	// Pipelined: both hellos leave before the first welcome.
	c.Send(msg{"t": "hello", "ref": "1", "token": alice})
	c.Send(msg{"t": "hello", "ref": "2", "token": admin})
	if w := c.Expect("welcome"); w.Str("user") != "alice" || w.Str("ref") != "1" {
		t.Fatalf("welcome: %v", w)
	}
	c.ExpectError("bad_request", "2")
	c.Send(msg{"t": "hello", "ref": "3", "token": alice})
	c.ExpectError("bad_request", "3")
	c.Send(msg{"t": "join", "ref": "j", "board": by.board})
	c.ExpectError("forbidden", "j")
	c.JoinFull(mine)
	ack := c.Apply(mine, chat("still alice"))
	ev := c.Until("ev", func(m msg) bool { return m.Int("seq") == ack.Int("seq") })
	if ev.Str("user") != "alice" {
		t.Fatalf("the op was made as %q", ev.Str("user"))
	}
	// The same token on a second connection: the same user.
	c2 := gatewaytest.Dial(t, n.WS)
	if w := c2.HelloToken(alice); w.Str("user") != "alice" {
		t.Fatalf("second connection: %v", w)
	}
	by.check(t)
}

// TestSecurityMalformedFrames: protocol violations at the frame level
// close the connection with the code RFC 6455 gives them, before and
// after hello; malformed messages inside valid frames are answered and
// the connection stays open. Nothing reaches a board.
func TestSecurityMalformedFrames(t *testing.T) {
	n := start(t, func(c *sysconfig.Config) {
		c.Gateway.MaxFrame = 4096
		c.Gateway.PingIntervalMs = 50
		c.Gateway.PingTimeoutMs = 500
	})
	by := newBystander(t, n, devHello("bystander"))
	addr := strings.TrimPrefix(n.URL, "http://")
	ping := []byte(`{"t":"ping","ref":"p"}`)
	for _, tc := range []struct {
		name  string
		b     []byte
		codes []int // acceptable close codes; -1: cut without a close frame
	}{
		{"unmasked", frame(true, 0, opText, false, ping), []int{1002, -1}},
		{"reserved bit 1", frame(true, 4, opText, true, ping), []int{1002}},
		{"reserved bit 3", frame(true, 1, opText, true, ping), []int{1002}},
		{"reserved opcode 3", frame(true, 0, 0x3, true, ping), []int{1002}},
		{"reserved opcode 0xB", frame(true, 0, 0xB, true, nil), []int{1002}},
		{"ping over 125 bytes", frame(true, 0, opPing, true, make([]byte, 126)), []int{1002}},
		{"fragmented ping", frame(false, 0, opPing, true, []byte("x")), []int{1002}},
		{"continuation first", frame(true, 0, opCont, true, ping), []int{1002}},
		{"text inside a text message", append(frame(false, 0, opText, true, []byte("{")), frame(true, 0, opText, true, []byte("}"))...), []int{1002}},
		{"close code 999", frame(true, 0, opClose, true, []byte{0x03, 0xE7}), []int{1002}},
		{"close of 1 byte", frame(true, 0, opClose, true, []byte{0x03}), []int{1002}},
		{"binary", frame(true, 0, opBin, true, ping), []int{1003}},
		{"invalid UTF-8", frame(true, 0, opText, true, []byte{'"', 0xff, 0xfe, '"'}), []int{1007}},
		{"over max_frame", frame(true, 0, opText, true, bytes.Repeat([]byte(" "), 4097)), []int{1009}},
		{"over max_frame in fragments", append(frame(false, 0, opText, true, bytes.Repeat([]byte(" "), 3000)), frame(true, 0, opCont, true, bytes.Repeat([]byte(" "), 3000))...), []int{1009}},
		// A length of 2^62 with no payload behind it: read until max_frame
		// bytes came (1009), or cut by the message timeout.
		{"length 2^62", header(true, opText, 1<<62), []int{1009, -1}},
		{"length 2^63 (negative)", header(true, opText, 1<<63), []int{1002, 1009, -1}},
	} {
		for _, afterHello := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/hello=%v", tc.name, afterHello), func(t *testing.T) {
				r := dialRaw(t, addr, nil, nil)
				if afterHello {
					r.hello("mallory")
				}
				_ = r.write(tc.b) // the server may cut before all is written
				_ = r.send(msg{"t": "op", "ref": "o", "board": by.board, "id": "x", "op": chat("x")})
				code := r.closeCode(10 * time.Second)
				ok := false
				for _, c := range tc.codes {
					ok = ok || c == code
				}
				if !ok {
					t.Fatalf("closed with %d, want one of %v", code, tc.codes)
				}
				by.check(t)
			})
		}
	}

	// Malformed messages in valid frames: an error, the connection open.
	c := gatewaytest.Dial(t, n.WS)
	c.Hello("mallory")
	deep := strings.Repeat("[", 2000) + strings.Repeat("]", 2000)
	for _, m := range []string{
		`not json`, `[]`, `"hello"`, `null`, `{}`, `{"t":42}`, `{"t":"nope"}`,
		deep, `{"t":` + deep + `}`, `{"t":"ping","ref":` + deep + `}`,
		`{"t":"op","ref":"r","board":"` + by.board + `","id":"x","op":` + deep + `}`,
		`{"t":"join","board":"../../etc/passwd"}`, `{"t":"join","board":"` + strings.Repeat("b", 65) + `"}`,
		`{"t":"join","board":"a\u0000b"}`, `{"t":"join","board":"` + by.board + `","since":1e400}`,
		`{"t":"op","board":"` + by.board + `","id":"x","op":{"kind":"chat","text":"x"}}`,
		`{"t":"ping","ref":"` + strings.Repeat("r", 65) + `"}`, `{"t":"ping","t":"hello"}`,
		"{\"t\":\"ping\",\"ref\":\"\\ud800\"}", `{"t":"leave","board":{"$ne":1}}`,
	} {
		c.Send(m)
		if r := c.Next(); r.T() != "error" && r.T() != "pong" && r.T() != "left" {
			t.Fatalf("%.60s: %v", m, r)
		}
		pingNext(t, c)
	}
	by.check(t)
}

// TestSecurityConnectionFlood: one address opening too many connections,
// or opening them too fast, is refused (429 at the upgrade; raw sockets
// beyond the guard's cap reset at once) and counted; another address is
// served meanwhile; every slot comes back when the flood ends.
func TestSecurityConnectionFlood(t *testing.T) {
	t.Run("per address", func(t *testing.T) {
		n := start(t, func(c *sysconfig.Config) {
			c.Gateway.MaxConnsPerIP = 4
			c.Gateway.HandshakeTimeoutMs = 5000
		})
		by := newBystander(t, n, devHello("bystander")) // one of the 4
		for i := range 3 {
			hello(t, n, fmt.Sprint("u", i))
		}
		base := counter(metrics.ConnectionsRefused, "max_conns_per_ip")
		for range 20 {
			_, resp, err := gatewaytest.TryDial(n.WS, nil)
			if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("over max_conns_per_ip: %v %v", err, resp)
			}
		}
		if got := counter(metrics.ConnectionsRefused, "max_conns_per_ip") - base; got != 20 {
			t.Fatalf("refusals counted: %v", got)
		}
		// Another address is served.
		other := gatewaytest.DialWith(t, n.WS, gatewaytest.DialOptions{LocalIP: "127.0.0.2"})
		other.Hello("other")
		other.JoinFull(by.board)

		// Raw sockets that never send a request: the guard takes
		// rawCap(4) = 21 from one address, 4 are the WebSockets (and
		// the refused upgrades' keep-alive connections are closed).
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		open := 5 // the 4 and other's
		testutil.Eventually(t, 5*time.Second, func() bool { return gateway.OpenTCP(n.Gateway) == open },
			"open TCP connections: %d, want %d", gateway.OpenTCP(n.Gateway), open)
		tcpBase := counter(metrics.ConnectionsRefused, "tcp_max_conns_per_ip")
		var socks []net.Conn
		for range 60 {
			s, err := net.Dial("tcp", n.Gateway.Addr())
			if errors.Is(err, syscall.ECONNRESET) {
				continue // reset before the dial returned: refused all the same
			}
			if err != nil {
				t.Fatal(err)
			}
			socks = append(socks, s)
		}
		testutil.Eventually(t, 5*time.Second, func() bool {
			return counter(metrics.ConnectionsRefused, "tcp_max_conns_per_ip")-tcpBase == 60-17
		}, "raw refusals: %v, open %d", counter(metrics.ConnectionsRefused, "tcp_max_conns_per_ip")-tcpBase, gateway.OpenTCP(n.Gateway))
		if got := gateway.OpenTCP(n.Gateway); got != open+17 {
			t.Fatalf("open TCP connections: %d, want %d", got, open+17)
		}
		// Still, another address gets in, and the bystander is served.
		late := gatewaytest.DialWith(t, n.WS, gatewaytest.DialOptions{LocalIP: "127.0.0.3"})
		late.Hello("late")
		by.check(t)
		for _, s := range socks {
			s.Close()
		}
		testutil.Eventually(t, 5*time.Second, func() bool { return gateway.OpenTCP(n.Gateway) == open+1 },
			"slots back: %d open, want %d", gateway.OpenTCP(n.Gateway), open+1)
	})
	t.Run("rate per address", func(t *testing.T) {
		n := start(t, func(c *sysconfig.Config) { c.Gateway.ConnRatePerIP = 5 })
		by := newBystander(t, n, devHello("bystander"))
		base := counter(metrics.ConnectionsRefused, "conn_rate_per_ip")
		refused := 0
		for range 30 {
			c, resp, err := gatewaytest.TryDial(n.WS, nil)
			if err == nil {
				_ = c.CloseNow()
				continue
			}
			if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("%v %v", err, resp)
			}
			refused++
		}
		// A burst of 5 a second: most of 30 quick dials are refused.
		if refused < 15 || counter(metrics.ConnectionsRefused, "conn_rate_per_ip")-base != float64(refused) {
			t.Fatalf("refused %d of 30 (counted %v)", refused, counter(metrics.ConnectionsRefused, "conn_rate_per_ip")-base)
		}
		other := gatewaytest.DialWith(t, n.WS, gatewaytest.DialOptions{LocalIP: "127.0.0.2"})
		other.Hello("other")
		by.check(t)
	})
	t.Run("per node", func(t *testing.T) {
		n := start(t, func(c *sysconfig.Config) { c.Gateway.MaxConns = 3; c.Gateway.MaxConnsPerIP = 3 })
		by := newBystander(t, n, devHello("bystander"))
		hello(t, n, "a")
		hello(t, n, "b")
		base := counter(metrics.ConnectionsRefused, "max_conns")
		_, resp, err := gatewaytest.TryDialWith(n.WS, gatewaytest.DialOptions{LocalIP: "127.0.0.2"})
		if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("over max_conns: %v %v", err, resp)
		}
		if counter(metrics.ConnectionsRefused, "max_conns")-base != 1 {
			t.Fatal("not counted")
		}
		by.check(t)
	})
}

// TestSecurityIdleAndSlowClients: every way of holding a connection
// without using it ends within its timeout, is counted, and gives its
// slot back: a socket that says nothing, headers sent byte by byte, an
// upgraded socket without hello, a client that answers no ping, one
// message trickled byte by byte, and one trickled in fragments with
// pongs between them.
func TestSecurityIdleAndSlowClients(t *testing.T) {
	n := start(t, func(c *sysconfig.Config) {
		c.Gateway.HandshakeTimeoutMs = 300
		c.Gateway.HelloTimeoutMs = 300
		c.Gateway.PingIntervalMs = 50
		c.Gateway.PingTimeoutMs = 400
	})
	by := newBystander(t, n, devHello("bystander"))
	addr := n.Gateway.Addr()
	open := gateway.OpenTCP(n.Gateway)
	// bound is how long any of these may hold its connection: its timeout
	// and a generous margin for a loaded machine.
	const bound = 5 * time.Second
	ended := func(t *testing.T, s net.Conn) time.Duration {
		t.Helper()
		begin := time.Now()
		_ = s.SetReadDeadline(begin.Add(bound))
		_, err := io.Copy(io.Discard, s)
		if isTimeout(err) {
			t.Fatalf("connection still open after %v", bound)
		}
		return time.Since(begin)
	}
	// trickle writes b one byte every d until the socket fails.
	trickle := func(s net.Conn, mu *sync.Mutex, b []byte, d time.Duration) {
		for i := 0; ; i++ {
			mu.Lock()
			_, err := s.Write(b[i%len(b) : i%len(b)+1])
			mu.Unlock()
			if err != nil {
				return
			}
			time.Sleep(d) // the attacker's pace
		}
	}

	t.Run("silent socket", func(t *testing.T) {
		s, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		t.Logf("cut after %v", ended(t, s))
	})
	t.Run("slow headers", func(t *testing.T) {
		s, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := io.WriteString(s, "GET /ws HTTP/1.1\r\nHost: x\r\n"); err != nil {
			t.Fatal(err)
		}
		go trickle(s, &sync.Mutex{}, []byte("X-Slow: yes\r\n"), 20*time.Millisecond)
		t.Logf("cut after %v", ended(t, s))
	})
	t.Run("no hello", func(t *testing.T) {
		base := counter(metrics.ConnectionsDropped, "hello_timeout")
		r := dialRaw(t, addr, nil, nil)
		m, err := r.next(bound)
		if err != nil || m["t"] != "error" || m["code"] != "unauthorized" {
			t.Fatalf("want unauthorized, got %v %v", m, err)
		}
		if code := r.closeCode(bound); code != 1008 {
			t.Fatalf("close %d", code)
		}
		if counter(metrics.ConnectionsDropped, "hello_timeout") <= base {
			t.Fatal("not counted")
		}
	})
	t.Run("no pong", func(t *testing.T) {
		base := counter(metrics.ConnectionsDropped, "idle")
		r := dialRaw(t, addr, nil, nil)
		r.hello("sleepy")
		t.Logf("cut after %v", ended(t, r.c)) // reads nothing: answers no ping
		testutil.Eventually(t, bound, func() bool { return counter(metrics.ConnectionsDropped, "idle") > base }, "not counted")
	})
	t.Run("message trickled", func(t *testing.T) {
		base := counter(metrics.ConnectionsDropped, "slow_message")
		r := dialRaw(t, addr, nil, nil)
		r.hello("trickler")
		body := []byte(`{"t":"ping","ref":"slow"}` + strings.Repeat(" ", 175))
		if err := r.write(header(true, opText, uint64(len(body)))); err != nil {
			t.Fatal(err)
		}
		go trickle(r.c, &r.wm, body, 20*time.Millisecond) // 4 s for all of it
		begin := time.Now()
		for {
			m, err := r.next(bound)
			if err != nil {
				break
			}
			if m["ref"] == "slow" {
				t.Fatalf("the trickled message was served after %v", time.Since(begin))
			}
		}
		t.Logf("cut after %v", time.Since(begin))
		testutil.Eventually(t, bound, func() bool { return counter(metrics.ConnectionsDropped, "slow_message") > base }, "not counted")
	})
	t.Run("fragments with pongs", func(t *testing.T) {
		base := counter(metrics.ConnectionsDropped, "slow_message")
		r := dialRaw(t, addr, nil, nil)
		r.hello("fragmenter")
		if err := r.write(frame(false, 0, opText, true, []byte("{"))); err != nil {
			t.Fatal(err)
		}
		go func() {
			for r.write(frame(false, 0, opCont, true, []byte(" "))) == nil {
				time.Sleep(20 * time.Millisecond) // the attacker's pace
			}
		}()
		begin := time.Now()
		for {
			// next answers every ping: the client looks alive.
			if _, err := r.next(bound); err != nil {
				if isTimeout(err) {
					t.Fatalf("still open after %v", bound)
				}
				break
			}
		}
		t.Logf("cut after %v", time.Since(begin))
		testutil.Eventually(t, bound, func() bool { return counter(metrics.ConnectionsDropped, "slow_message") > base }, "not counted")
	})
	testutil.Eventually(t, bound, func() bool { return gateway.OpenTCP(n.Gateway) == open },
		"%d TCP connections open, want %d", gateway.OpenTCP(n.Gateway), open)
	by.check(t)
}

// TestSecurityOrigins: the origin policy at the upgrade.
func TestSecurityOrigins(t *testing.T) {
	n := start(t, func(c *sysconfig.Config) {
		c.Gateway.Origins = []string{"https://play.example", "http://localhost:3000", "https://[::1]:8443"}
		c.Gateway.AllowNoOrigin = false
	})
	own := n.URL // http://127.0.0.1:port
	// The bystander plays from the node's own page.
	bc := gatewaytest.DialWith(t, n.WS, gatewaytest.DialOptions{Header: http.Header{"Origin": {own}}})
	bc.Hello("bystander")
	by := watch(t, n, bc)
	for _, tc := range []struct {
		origins []string
		ok      bool
	}{
		{[]string{"https://play.example"}, true},
		{[]string{"HTTPS://Play.Example"}, true},
		{[]string{"https://play.example:443"}, true},
		{[]string{"https://play.example/"}, true},
		{[]string{"http://localhost:3000"}, true},
		{[]string{"https://[::1]:8443"}, true},
		{[]string{own}, true},
		{[]string{strings.ToUpper(own)}, true},
		{nil, false},
		{[]string{""}, false},
		{[]string{"null"}, false},
		{[]string{"https://play.example:8443"}, false},
		{[]string{"http://play.example"}, false},
		{[]string{"https://play.example.evil.example"}, false},
		{[]string{"https://evil.example"}, false},
		{[]string{"https://play.example/game"}, false},
		{[]string{"https://play.example?x"}, false},
		{[]string{"https://user@play.example"}, false},
		{[]string{"play.example"}, false},
		{[]string{"ws://play.example"}, false},
		{[]string{"http://localhost:3001"}, false},
		{[]string{"https://" + strings.TrimPrefix(own, "http://")}, false}, // the node's host, another scheme
		{[]string{"https://evil.example", "https://play.example"}, false},
		{[]string{"https://play.example", "https://evil.example"}, false},
	} {
		h := http.Header{"Origin": tc.origins}
		reason := "origin"
		if len(tc.origins) == 0 {
			reason = "no_origin"
		}
		base := counter(metrics.ConnectionsRefused, reason)
		c, resp, err := gatewaytest.TryDial(n.WS, h)
		if tc.ok {
			if err != nil {
				t.Fatalf("Origin %q refused: %v %v", tc.origins, err, resp)
			}
			_ = c.CloseNow()
			continue
		}
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("Origin %q: %v %v, want 403", tc.origins, err, resp)
		}
		if counter(metrics.ConnectionsRefused, reason)-base != 1 {
			t.Fatalf("Origin %q: refusal not counted as %s", tc.origins, reason)
		}
	}
	by.check(t)

	// allow_no_origin (the default) admits clients without Origin, and
	// only them.
	n2 := start(t, func(c *sysconfig.Config) { c.Gateway.Origins = []string{"https://play.example"} })
	hello(t, n2, "tool")
	if _, resp, err := gatewaytest.TryDial(n2.WS, http.Header{"Origin": {"https://evil.example"}}); err == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin with allow_no_origin: %v %v", err, resp)
	}
}

func TestClientKey(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5000":                  "127.0.0.1",
		"[::ffff:10.1.2.3]:80":            "10.1.2.3",
		"[2001:db8:1:2:3:4:5:6]:443":      "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:443":      "2001:db8:1:2::/64",
		"[2001:db8:1:3::1]:443":           "2001:db8:1:3::/64",
		"[fe80::1%eth0]:80":               "fe80::/64",
		"not an address":                  "not an address",
		"[::1]:1":                         "::/64",
		"10.0.0.1":                        "10.0.0.1",
		"2001:db8:1:2:3:4:5:6":            "2001:db8:1:2::/64",
		"[2001:db8:1:2:3:4:5:6%zone]:443": "2001:db8:1:2::/64",
	} {
		if got := gateway.ClientKey(in); got != want {
			t.Errorf("clientKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSecuritySecretsNotShown: the JWT secret, the TLS key and the tokens
// clients present appear nowhere a client, a scraper or an operator
// reading the logs (at debug level) could see them, through good and bad
// hellos alike.
func TestSecuritySecretsNotShown(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	certFile, keyFile := dir+"/cert.pem", dir+"/key.pem"
	certPEM, keyPEM := ca.issue(t, 1)
	replace(t, certFile, certPEM)
	replace(t, keyFile, keyPEM)
	const secret = "s3cr3t-jwt-key-that-must-never-show-0123456789"
	logs := &logBuffer{}
	n := gatewaytest.Start(t, gatewaytest.Options{Log: logs.logger(), Tweak: func(c *sysconfig.Config) {
		c.Gateway.Auth = sysconfig.Auth{Mode: "jwt", Secret: sysconfig.Secret(secret)}
		c.Gateway.TLS = &sysconfig.TLSFiles{Cert: certFile, Key: keyFile}
	}})
	trust := &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS12}
	key := []byte(secret)
	good := token(t, jwt.SigningMethodHS256, key, claims("alice", []string{"*"}, time.Hour))
	tokens := []string{
		good,
		token(t, jwt.SigningMethodHS256, []byte("wrong-key-wrong-key-wrong-key-xx"), claims("mallory", []string{"*"}, time.Hour)),
		token(t, jwt.SigningMethodHS256, key, claims("mallory", []string{"*"}, -time.Hour)),
		token(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims("mallory", []string{"*"}, time.Hour)),
		"garbage." + b64([]byte(secret)) + ".x",
	}
	var seen []string // everything the clients received
	for i, tok := range tokens {
		c := gatewaytest.DialWith(t, n.WS, gatewaytest.DialOptions{TLS: trust, Record: true})
		c.Send(msg{"t": "hello", "ref": "h", "token": tok})
		if i == 0 {
			c.Expect("welcome")
			c.Send(msg{"t": "join", "ref": "j", "board": "../x"})
			c.ExpectError("bad_request", "j")
			c.Close()
		} else {
			c.ExpectError("unauthorized", "h")
			c.ExpectClose(1008)
		}
		for _, b := range c.Raw {
			seen = append(seen, string(b))
		}
	}
	// A TLS handshake that fails, on the server's side.
	if c, err := tls.Dial("tcp", n.Gateway.Addr(), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10}); err == nil { //nolint:gosec // a test of refusal
		c.Close()
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: trust}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Get(n.URL + "/metrics")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/metrics: %v %v", err, resp)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	n.Stop()

	where := map[string]string{"logs": logs.String(), "/metrics": string(page), "client messages": strings.Join(seen, "\n")}
	if !strings.Contains(where["logs"], "hello refused") {
		t.Fatalf("the refusals were not logged (is the log captured?):\n%s", where["logs"])
	}
	secrets := map[string]string{"the JWT secret": secret, "the JWT secret, base64": b64([]byte(secret))}
	for i, tok := range tokens {
		secrets[fmt.Sprint("token ", i)] = tok
		if p := strings.Split(tok, "."); len(p) == 3 && len(p[2]) > 8 {
			secrets[fmt.Sprint("token ", i, "'s signature")] = p[2]
		}
	}
	for i, line := range strings.Split(string(keyPEM), "\n") {
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

// TestSecurityOversizedHeaders: request headers over 32 KiB get 431 and
// the node goes on.
func TestSecurityOversizedHeaders(t *testing.T) {
	n := start(t, nil)
	by := newBystander(t, n, devHello("bystander"))
	s, err := net.Dial("tcp", n.Gateway.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nX-Big: " + strings.Repeat("b", 40<<10) + "\r\n\r\n"
	if _, err := io.WriteString(s, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(s), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// net/http lingers half a second before it closes such a connection.
	testutil.Eventually(t, 5*time.Second, func() bool { return gateway.OpenTCP(n.Gateway) == 1 }, "the connection was not closed")
	by.check(t)
}
