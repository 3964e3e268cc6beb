package gateway_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tavernhq/tavern/apps/gateway"
	"github.com/tavernhq/tavern/apps/gateway/gatewaytest"
	"github.com/tavernhq/tavern/internal/sysconfig"
	"github.com/tavernhq/tavern/internal/testutil"
)

// writeCert writes a self-signed certificate for 127.0.0.1 and its key.
func writeCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "tavern test"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestTLS: wss and https on the TLS listener, plain HTTP redirected.
func TestTLS(t *testing.T) {
	certFile, keyFile := writeCert(t)
	redirect := testutil.FreeAddr(t)
	n := start(t, func(c *sysconfig.Config) {
		c.Gateway.TLS = &sysconfig.TLSFiles{Cert: certFile, Key: keyFile}
		c.Gateway.RedirectHTTP = redirect
	})
	addr := n.Gateway.Addr()
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	resp, err := client.Get("https://" + addr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("https /healthz: %v %v", err, resp)
	}
	resp.Body.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "wss://"+addr+"/ws", &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatalf("wss: %v", err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"t":"hello","user":"alice"}`)); err != nil {
		t.Fatal(err)
	}
	if _, b, err := ws.Read(ctx); err != nil || !jsonEqual(mustJSON(t, b)["t"], "welcome") {
		t.Fatalf("welcome over wss: %s %v", b, err)
	}
	_ = ws.Close(websocket.StatusNormalClosure, "")

	resp, err = client.Get("http://" + redirect + "/?board=x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := "https://127.0.0.1:" + portOf(addr) + "/?board=x"; resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Fatalf("redirect: %d %q, want %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func mustJSON(t *testing.T, b []byte) msg {
	t.Helper()
	var m msg
	if err := jsonUnmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return m
}

// testCA is a certificate authority for tests: clients trust its pool,
// the gateway serves leaves it issues.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1000),
		Subject:               pkix.Name{CommonName: "tavern test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns a leaf for 127.0.0.1 with serial, and its key, as PEM.
func (ca *testCA) issue(t testing.TB, serial int64) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: fmt.Sprint("tavern test ", serial)},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// replace writes data to path the way a renewal tool does: a new file
// renamed over the old one.
func replace(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestTLSVerifiedAndRenewed: a client that trusts only the test CA
// connects over wss:// and https://; TLS below 1.2 and plain HTTP on the
// TLS port are refused; the node's own https page is an allowed Origin
// and its http twin is not; certificate files replaced on disk are served
// from the next handshakes without a restart, while connections opened
// before carry on; a broken renewal keeps the previous certificate and
// says so in the log without a byte of the key.
func TestTLSVerifiedAndRenewed(t *testing.T) {
	defer gateway.SetCertCheckInterval(20 * time.Millisecond)()
	ca := newTestCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	c1, k1 := ca.issue(t, 1)
	replace(t, certFile, c1)
	replace(t, keyFile, k1)
	logs := &logBuffer{}
	n := gatewaytest.Start(t, gatewaytest.Options{Log: logs.logger(), Tweak: func(c *sysconfig.Config) {
		c.Gateway.TLS = &sysconfig.TLSFiles{Cert: certFile, Key: keyFile}
		c.Gateway.AllowNoOrigin = false
	}})
	addr := n.Gateway.Addr()
	trust := &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS12}
	served := func() int64 {
		t.Helper()
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, trust.Clone())
		if err != nil {
			t.Fatalf("TLS handshake: %v", err)
		}
		defer c.Close()
		st := c.ConnectionState()
		if st.Version < tls.VersionTLS12 || st.NegotiatedProtocol == "h2" {
			t.Fatalf("version %x, protocol %q", st.Version, st.NegotiatedProtocol)
		}
		return st.PeerCertificates[0].SerialNumber.Int64()
	}
	own := http.Header{"Origin": {"https://" + addr}}

	early := gatewaytest.DialWith(t, n.WS, gatewaytest.DialOptions{TLS: trust, Header: own})
	early.Hello("early")
	if s := served(); s != 1 {
		t.Fatalf("serial %d", s)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: trust}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Get(n.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("https /healthz: %v %v", err, resp)
	}
	resp.Body.Close()

	// Refused: TLS 1.1, plain HTTP on the TLS port, plain ws, the http
	// twin of the node's page, no Origin at all.
	if c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		c.Close()
		t.Fatal("a TLS 1.1 handshake succeeded")
	} else if !strings.Contains(err.Error(), "protocol version") {
		t.Fatalf("TLS 1.1: %v, want the server's protocol_version alert", err)
	}
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP served on the TLS port")
		}
	}
	if _, _, err := gatewaytest.TryDialWith("ws://"+addr+"/ws", gatewaytest.DialOptions{Header: own}); err == nil {
		t.Fatal("plain ws:// on the TLS port")
	}
	for _, h := range []http.Header{{"Origin": {"http://" + addr}}, nil} {
		if _, resp, err := gatewaytest.TryDialWith(n.WS, gatewaytest.DialOptions{TLS: trust, Header: h}); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("Origin %v: %v %v", h, err, resp)
		}
	}

	// A renewal: both files replaced.
	c2, k2 := ca.issue(t, 2)
	replace(t, keyFile, k2)
	replace(t, certFile, c2)
	testutil.Eventually(t, 10*time.Second, func() bool { return served() == 2 }, "the renewed certificate is not served")
	alive(t, early)
	late := gatewaytest.DialWith(t, n.WS, gatewaytest.DialOptions{TLS: trust, Header: own})
	late.Hello("late")

	// A broken renewal: a certificate with another's key, then a key file
	// that is not a key. The previous certificate stays.
	const marker = "MARKER-OF-KEY-CONTENT"
	c3, _ := ca.issue(t, 3)
	_, k4 := ca.issue(t, 4)
	replace(t, certFile, c3)
	replace(t, keyFile, k4)
	testutil.Eventually(t, 10*time.Second, func() bool { served(); return strings.Contains(logs.String(), "do not load") },
		"the broken renewal was not reported")
	if s := served(); s != 2 {
		t.Fatalf("serial %d after a broken renewal", s)
	}
	before := strings.Count(logs.String(), "do not load")
	replace(t, keyFile, []byte("-----BEGIN EC PRIVATE KEY-----\n"+marker+"\n-----END EC PRIVATE KEY-----\n"))
	testutil.Eventually(t, 10*time.Second, func() bool { served(); return strings.Count(logs.String(), "do not load") > before },
		"the second broken renewal was not reported")
	if s := served(); s != 2 {
		t.Fatalf("serial %d after a broken renewal", s)
	}
	// Repaired: served.
	c5, k5 := ca.issue(t, 5)
	replace(t, keyFile, k5)
	replace(t, certFile, c5)
	testutil.Eventually(t, 10*time.Second, func() bool { return served() == 5 }, "the repaired certificate is not served")
	alive(t, early)
	alive(t, late)

	out := logs.String()
	if !strings.Contains(out, "certificate reloaded") {
		t.Errorf("no reload logged:\n%s", out)
	}
	for _, secret := range [][]byte{k1, k2, k4, k5, []byte(marker)} {
		for _, line := range strings.Split(string(secret), "\n") {
			if len(line) > 16 && !strings.HasPrefix(line, "-----") && strings.Contains(out, line) {
				t.Fatalf("the log shows key material %q:\n%s", line, out)
			}
		}
	}
}
