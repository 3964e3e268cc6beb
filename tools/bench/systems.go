package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/tavernhq/tavern/internal/sysconfig"
	"github.com/tavernhq/tavern/tools/internal/procs"
)

// running is a system under test: where its clients connect, where its
// /metrics are, and how to stop it.
type running struct {
	urls    []string
	metrics []string // host:port serving /metrics, one per process
	pids    []int
	tls     *tls.Config
	stop    func()
}

// system starts one of the systems compared.
type system struct {
	name string
	// start runs it; env is added to its processes' environment.
	start func(ctx context.Context, env []string) (*running, error)
}

func (b *bench) baseline() system {
	return system{name: "baseline", start: func(ctx context.Context, env []string) (*running, error) {
		p, err := procs.StartProc(ctx, b.baselineBin, []string{"-listen", "127.0.0.1:0"}, env, b.procLog("baseline"), 30*time.Second)
		if err != nil {
			return nil, err
		}
		return &running{urls: []string{"ws://" + p.Addr + "/ws"}, metrics: []string{p.Addr}, pids: []int{p.PID()},
			stop: func() { p.Stop(10 * time.Second) }}, nil
	}}
}

// tavern is n Tavern nodes on a fresh Postgres database (discovery
// postgres when n > 1), with TLS on the gateway if withTLS.
func (b *bench) tavern(name string, n int, withTLS bool) system {
	return system{name: name, start: func(ctx context.Context, env []string) (*running, error) {
		dsn, drop, err := procs.CreateDatabase(ctx, b.o.AdminDSN)
		if err != nil {
			return nil, err
		}
		dir, err := os.MkdirTemp("", "tavern-bench-")
		if err != nil {
			drop()
			return nil, err
		}
		cleanup := func() { drop(); os.RemoveAll(dir) }
		var tlsFiles *sysconfig.TLSFiles
		var clientTLS *tls.Config
		if withTLS {
			if tlsFiles, clientTLS, err = selfSigned(dir); err != nil {
				cleanup()
				return nil, err
			}
		}
		cookie := procs.RandomHex(16)
		var nodes []*procs.Node
		r := &running{tls: clientTLS}
		for i := range n {
			cfg := sysconfig.Default()
			cfg.Node.Name = fmt.Sprintf("bench%d-%s@127.0.0.1", i+1, procs.RandomHex(3))
			cfg.Node.Cookie = sysconfig.Secret(cookie)
			cfg.Node.EPMDPort = 0
			cfg.Node.LogLevel = "warn"
			if cfg.Node.DistListen, err = procs.FreeAddr(); err == nil {
				cfg.Gateway.Listen, err = procs.FreeAddr()
			}
			if err != nil {
				cleanup()
				return nil, err
			}
			// The load comes from one address: lift the per-IP caps, and
			// the per-client op rate so that it never limits the maximum.
			cfg.Gateway.MaxConns = 30000
			cfg.Gateway.MaxConnsPerIP = 30000
			cfg.Gateway.ConnRatePerIP = 1e6
			cfg.Gateway.OpsPerSec, cfg.Gateway.OpsBurst = 10000, 10000
			cfg.Gateway.TLS = tlsFiles
			cfg.Store.DSN = dsn
			if n > 1 {
				cfg.Cluster.Discovery = "postgres"
			}
			node := &procs.Node{Name: cfg.Node.Name, Cfg: cfg, Bin: b.serverBin, Env: env,
				Path:    filepath.Join(dir, fmt.Sprintf("node%d.config", i+1)),
				LogPath: filepath.Join(b.logDir, fmt.Sprintf("%s-node%d.log", name, i+1))}
			if err := os.WriteFile(node.Path, []byte(sysconfig.Render(&cfg)), 0o600); err != nil {
				cleanup()
				return nil, err
			}
			nodes = append(nodes, node)
			scheme := "ws://"
			if withTLS {
				scheme = "wss://"
			}
			r.urls = append(r.urls, scheme+cfg.Gateway.Listen+"/ws")
			r.metrics = append(r.metrics, cfg.Gateway.Listen)
		}
		stopAll := func() {
			for _, nd := range nodes {
				nd.Stop(15 * time.Second)
			}
			cleanup()
		}
		// The first node alone (it makes the schema: migrations of several
		// nodes at once on a fresh database collide), then the others.
		errs := make(chan error, len(nodes))
		all := []error{nodes[0].Start(ctx, 60*time.Second)}
		for _, nd := range nodes[1:] {
			go func() { errs <- nd.Start(ctx, 60*time.Second) }()
		}
		for range nodes[1:] {
			all = append(all, <-errs)
		}
		if err := errors.Join(all...); err != nil {
			stopAll()
			return nil, err
		}
		for _, nd := range nodes {
			r.pids = append(r.pids, nd.PID())
		}
		if withTLS {
			// /metrics is on the TLS listener too: not scraped.
			r.metrics = nil
		}
		r.stop = stopAll
		return r, nil
	}}
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir and
// returns them as config and a client configuration that trusts it.
func selfSigned(dir string) (*sysconfig.TLSFiles, *tls.Config, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "tavern bench"},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	files := &sysconfig.TLSFiles{Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")}
	if err := os.WriteFile(files.Cert, certPEM, 0o600); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(files.Key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return files, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
