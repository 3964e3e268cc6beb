// Package ergonode starts Ergo nodes the way every Tavern node must run:
// one protocol handler per connection (cross-node order is kept only so),
// no anonymous metrics (a node opens no connection its config did not ask
// for), distribution on the configured private address only, and an EPMD
// bound to loopback. See ../shared/ERGO_NOTES.md.
package ergonode

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/ergo-services/ergo"
	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"
	"github.com/ergo-services/ergo/node"
	"github.com/ergo-services/ergo/proto/dist"
)

// Options is what a Tavern node needs of Ergo.
type Options struct {
	Name   string // name@host
	Cookie string
	// DistListen is host:port for distribution; port 0 picks a free one.
	DistListen string
	// EPMDPort is where this host's EPMD serves (127.0.0.1 only); the
	// first node on a host serves it, the others register with it.
	// 0: no EPMD at all, peers are reached by static routes only.
	EPMDPort uint16
	// TLSCert and TLSKey, if set, protect distribution with TLS: every
	// node presents this certificate and accepts peers whose certificate
	// it signed (or is): a cluster shares one CA or one certificate.
	TLSCert, TLSKey string
	// SelfSignedTLS encrypts distribution with a generated certificate,
	// without authenticating peers beyond the cookie.
	SelfSignedTLS bool
	Applications  []gen.ApplicationBehavior
	Env           map[gen.EnvKey]interface{}
}

// Start starts an Ergo node with Tavern's must-do settings.
func Start(ctx context.Context, o Options) (node.Node, error) {
	host, portStr, err := net.SplitHostPort(o.DistListen)
	if err != nil {
		return nil, fmt.Errorf("dist_listen %q: %w", o.DistListen, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("dist_listen %q: bad port", o.DistListen)
	}
	proto := node.DefaultProtoOptions()
	// Several handlers spread one connection's messages round-robin and
	// reorder them (ERGO_NOTES.md): exactly one keeps cross-node order.
	proto.NumHandlers = 1
	proto.SendQueueLength = 4096
	proto.RecvQueueLength = 4096

	listener := node.Listener{Hostname: host}
	if port != 0 {
		listener.Listen = uint16(port)
	} else {
		listener.ListenBegin, listener.ListenEnd = 20000, 60000
	}
	opts := node.Options{
		Applications: o.Applications,
		Env:          o.Env,
		Listeners:    []node.Listener{listener},
		Proto:        dist.CreateProto(proto),
		Handshake:    dist.CreateHandshake(dist.HandshakeOptions{}),
	}
	if o.EPMDPort == 0 {
		// StaticRoutesOnly panics without a registrar (ERGO_NOTES.md).
		opts.StaticRoutesOnly = true
		opts.Registrar = noRegistrar{}
	} else {
		opts.Registrar = dist.CreateRegistrarWithLocalEPMD("127.0.0.1", o.EPMDPort)
	}
	// Ergo would send the node name to a metrics service after a minute.
	opts.System.DisableAnonMetrics = true
	if o.TLSCert != "" || o.SelfSignedTLS {
		cfg, err := distTLS(o)
		if err != nil {
			return nil, err
		}
		opts.TLS = cfg
		opts.Listeners[0].TLS = cfg
	}
	return ergo.StartNodeWithContext(ctx, o.Name, o.Cookie, opts)
}

// noRegistrar registers nowhere and resolves nothing: with it, a node
// reaches only the peers it has static routes to.
type noRegistrar struct{}

func (noRegistrar) Register(context.Context, string, node.RegisterOptions) error { return nil }
func (noRegistrar) RegisterProxy(string, int, node.ProxyFlags) error             { return nil }
func (noRegistrar) UnregisterProxy(string) error                                 { return nil }
func (noRegistrar) Resolve(peer string) (node.Route, error) {
	return node.Route{}, fmt.Errorf("no route to %s: EPMD is off and no static route was added", peer)
}
func (noRegistrar) ResolveProxy(peer string) (node.ProxyRoute, error) {
	return node.ProxyRoute{}, fmt.Errorf("no proxy route to %s", peer)
}
func (noRegistrar) Config() (node.RegistrarConfig, error)                      { return node.RegistrarConfig{}, nil }
func (noRegistrar) ConfigItem(string) (etf.Term, error)                        { return nil, nil }
func (noRegistrar) SetConfigUpdateCallback(func(string, etf.Term) error) error { return nil }

func distTLS(o Options) (*tls.Config, error) {
	if o.TLSCert == "" {
		cert, err := lib.GenerateSelfSignedCert("tavern")
		if err != nil {
			return nil, fmt.Errorf("dist tls: %w", err)
		}
		return &tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, nil
	}
	cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("dist tls: %w", err)
	}
	pool := x509.NewCertPool()
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("dist tls: %w", err)
	}
	pool.AddCert(leaf)
	for _, c := range cert.Certificate[1:] {
		if ca, err := x509.ParseCertificate(c); err == nil {
			pool.AddCert(ca)
		}
	}
	// Node names, not host names, identify peers, so the chain is checked
	// here instead of by host name.
	verify := func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("dist tls: peer sent no certificate")
		}
		peer, err := x509.ParseCertificate(raw[0])
		if err != nil {
			return err
		}
		inter := x509.NewCertPool()
		for _, r := range raw[1:] {
			if c, err := x509.ParseCertificate(r); err == nil {
				inter.AddCert(c)
			}
		}
		_, err = peer.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		return err
	}
	return &tls.Config{
		Certificates:          []tls.Certificate{cert},
		InsecureSkipVerify:    true, // verified by VerifyPeerCertificate
		VerifyPeerCertificate: verify,
		ClientAuth:            tls.RequireAnyClientCert,
		MinVersion:            tls.VersionTLS12,
	}, nil
}
