package gateway

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// certCheckEvery is how often, at most, the gateway looks at its
// certificate files for a renewal; tests shorten it.
var certCheckEvery atomic.Int64

func init() { certCheckEvery.Store(int64(2 * time.Second)) }

// certReloader serves the gateway's TLS certificate and picks up a renewed
// one without a restart: at most every certCheckEvery, during a handshake,
// it stats the certificate and key files, and when either changed (another
// file, size or modification time) it loads the pair again. A pair that
// does not load (a renewal half written, a key that does not match) is
// reported once and the previous certificate stays in use; the files are
// tried again when they change again.
//
// The key never leaves crypto/tls: nothing here prints it, and the
// errors of tls.LoadX509KeyPair name what is wrong, not the contents.
type certReloader struct {
	certFile, keyFile string
	every             time.Duration
	log               *slog.Logger

	cert    atomic.Pointer[tls.Certificate]
	checked atomic.Int64 // unix ns of the last look at the files

	mu      sync.Mutex // the fields below; held while reloading
	seen    fileSig    // the files cert was loaded from
	failed  fileSig    // the last files that did not load, reported
	missing bool       // a file could not be stat'ed, reported
}

// fileSig is what the reloader compares to spot a changed file.
type fileSig struct {
	cert, key os.FileInfo
}

func (a fileSig) same(b fileSig) bool {
	return sameFile(a.cert, b.cert) && sameFile(a.key, b.key)
}

func sameFile(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

func statPair(certFile, keyFile string) (fileSig, error) {
	c, err := os.Stat(certFile)
	if err != nil {
		return fileSig{}, err
	}
	k, err := os.Stat(keyFile)
	if err != nil {
		return fileSig{}, err
	}
	return fileSig{cert: c, key: k}, nil
}

// newCertReloader loads the pair; an error names the files and what is
// wrong with them.
func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, every: time.Duration(certCheckEvery.Load()), log: log}
	// Stat before reading: a change in between is seen at the next look.
	sig, err := statPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("gateway: tls: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("gateway: tls: cert %s, key %s: %w", certFile, keyFile, err)
	}
	r.cert.Store(&cert)
	r.seen = sig
	r.checked.Store(time.Now().UnixNano())
	return r, nil
}

// GetCertificate is the tls.Config hook: the current certificate, after
// a look at the files if one is due. One handshake at a time does the
// look; the others go on with the certificate in use.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	now := time.Now().UnixNano()
	if last := r.checked.Load(); now-last >= int64(r.every) && r.checked.CompareAndSwap(last, now) {
		r.refresh()
	}
	return r.cert.Load(), nil
}

// refresh reloads the pair if its files changed.
func (r *certReloader) refresh() {
	r.mu.Lock()
	defer r.mu.Unlock()
	sig, err := statPair(r.certFile, r.keyFile)
	if err != nil {
		if !r.missing {
			r.missing = true
			r.log.Warn("tls: cannot read the certificate files; serving the previous certificate", "err", err)
		}
		return
	}
	r.missing = false
	if sig.same(r.seen) || sig.same(r.failed) {
		return
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		r.failed = sig
		r.log.Warn("tls: the changed certificate files do not load; serving the previous certificate",
			"cert", r.certFile, "key", r.keyFile, "err", err)
		return
	}
	r.cert.Store(&cert)
	r.seen, r.failed = sig, fileSig{}
	attrs := []any{"cert", r.certFile}
	if cert.Leaf != nil {
		attrs = append(attrs, "subject", cert.Leaf.Subject.String(), "not_after", cert.Leaf.NotAfter)
	}
	r.log.Info("tls: certificate reloaded", attrs...)
}

// tlsConfig is the gateway's server configuration: TLS 1.2 or later with
// crypto/tls's default cipher suites and curves, HTTP/1.1 only (the
// WebSocket upgrade is an HTTP/1.1 request), the certificate from r.
func tlsConfig(r *certReloader) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.GetCertificate,
		NextProtos:     []string{"http/1.1"},
	}
}
