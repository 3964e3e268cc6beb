package ergonode

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/node"

	"github.com/tavernhq/tavern/internal/testutil"
)

var seq atomic.Int64

func startNode(t *testing.T, cookie string, epmd int, tweak func(*Options)) node.Node {
	t.Helper()
	o := Options{
		Name:       fmt.Sprintf("ergonode-%d-%d@127.0.0.1", os.Getpid(), seq.Add(1)),
		Cookie:     cookie,
		DistListen: "127.0.0.1:0",
		EPMDPort:   uint16(epmd),
	}
	if tweak != nil {
		tweak(&o)
	}
	n, err := Start(context.Background(), o)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(n.Stop)
	return n
}

// receiver checks that numbers arrive in order and counts them.
type receiver struct {
	gen.Server
	next     int
	got      atomic.Int64
	disorder atomic.Int64
}

func (r *receiver) HandleInfo(p *gen.ServerProcess, m etf.Term) gen.ServerStatus {
	n, ok := m.(int)
	if !ok {
		if i64, ok2 := m.(int64); ok2 {
			n = int(i64)
		}
	}
	if n != r.next {
		r.disorder.Add(1)
	}
	r.next = n + 1
	r.got.Add(1)
	return gen.ServerStatusOK
}

// Cross-node messages keep their order (Ergo's default of one handler
// per CPU reorders about 10% of them: ERGO_NOTES.md).
func TestCrossNodeOrder(t *testing.T) {
	epmd := testutil.FreePort(t)
	a := startNode(t, "c", epmd, nil)
	b := startNode(t, "c", epmd, nil)
	r := &receiver{}
	if _, err := b.Spawn("order_rx", gen.ProcessOptions{MailboxSize: 65535}, r); err != nil {
		t.Fatal(err)
	}
	sender, err := a.Spawn("", gen.ProcessOptions{}, &gen.Server{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 100000
	to := gen.ProcessID{Name: "order_rx", Node: b.Name()}
	for i := 0; i < n; i++ {
		for sender.Send(to, i) != nil {
			time.Sleep(time.Millisecond) // connecting
		}
		if i%5000 == 0 {
			// let the receiver keep up: a full mailbox drops silently
			testutil.Eventually(t, 10*time.Second, func() bool { return r.got.Load() >= int64(i)-20000 }, "receiver keeps up")
		}
	}
	testutil.Eventually(t, 30*time.Second, func() bool { return r.got.Load() == n }, "all %d messages arrive (got %d)", n, r.got.Load())
	if d := r.disorder.Load(); d != 0 {
		t.Fatalf("%d of %d messages out of order", d, n)
	}
}

func TestWrongCookieRefused(t *testing.T) {
	epmd := testutil.FreePort(t)
	a := startNode(t, "right", epmd, nil)
	b := startNode(t, "wrong", epmd, nil)
	if err := b.Connect(a.Name()); err == nil {
		t.Fatal("a node with another cookie connected")
	}
	if len(a.Nodes()) != 0 || len(b.Nodes()) != 0 {
		t.Fatalf("connected: %v %v", a.Nodes(), b.Nodes())
	}
}

func TestDistributionTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir)
	epmd := testutil.FreePort(t)
	withCert := func(o *Options) { o.TLSCert, o.TLSKey = cert, key }
	a := startNode(t, "c", epmd, withCert)
	b := startNode(t, "c", epmd, withCert)
	if err := b.Connect(a.Name()); err != nil {
		t.Fatalf("TLS nodes with the cluster certificate: %v", err)
	}
	// A node without TLS cannot talk to them.
	plain := startNode(t, "c", epmd, nil)
	if err := plain.Connect(a.Name()); err == nil {
		t.Fatal("a plain node connected to a TLS node")
	}
	// Nor can a TLS node with a certificate the cluster did not sign.
	other, otherKey := writeCert(t, t.TempDir())
	stranger := startNode(t, "c", epmd, func(o *Options) { o.TLSCert, o.TLSKey = other, otherKey })
	if err := stranger.Connect(a.Name()); err == nil {
		t.Fatal("a node with a foreign certificate connected")
	}
	// Self-signed mode encrypts between nodes that both use it.
	s1 := startNode(t, "s", epmd, func(o *Options) { o.SelfSignedTLS = true })
	s2 := startNode(t, "s", epmd, func(o *Options) { o.SelfSignedTLS = true })
	if err := s2.Connect(s1.Name()); err != nil {
		t.Fatalf("self-signed TLS: %v", err)
	}
}

func writeCert(t *testing.T, dir string) (string, string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "tavern-cluster"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	cp, kp := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cp, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(kp, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return cp, kp
}
