package gateway

import (
	"crypto/tls"
	"log/slog"
	"time"

	"github.com/tavernhq/tavern/internal/sysconfig"
)

// settings is the gateway section of sys.config in the form the gateway
// uses. sysconfig has validated the values.
type settings struct {
	listen           string
	redirectHTTP     string
	authMode         string
	secret           []byte // JWT key; never logged
	maxFrame         int
	opsPerSec        float64
	opsBurst         int
	pingInterval     time.Duration
	pingTimeout      time.Duration
	helloTimeout     time.Duration
	handshakeTimeout time.Duration
	outboundQueue    int
	tls              *tls.Config // nil: plain HTTP; its certificate is reloaded on renewal
	tlsErr           error       // reported by Load
	origins          []string
	allowNoOrigin    bool
	maxConns         int
	maxConnsPerIP    int
	connRatePerIP    float64
	opTimeout        time.Duration
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// settingsFrom converts the section; log is for the certificate reloader.
func settingsFrom(cfg sysconfig.Gateway, log *slog.Logger) *settings {
	s := &settings{
		listen:           cfg.Listen,
		redirectHTTP:     cfg.RedirectHTTP,
		authMode:         cfg.Auth.Mode,
		secret:           []byte(cfg.Auth.Secret.Reveal()),
		maxFrame:         cfg.MaxFrame,
		opsPerSec:        cfg.OpsPerSec,
		opsBurst:         cfg.OpsBurst,
		pingInterval:     ms(cfg.PingIntervalMs),
		pingTimeout:      ms(cfg.PingTimeoutMs),
		helloTimeout:     ms(cfg.HelloTimeoutMs),
		handshakeTimeout: ms(cfg.HandshakeTimeoutMs),
		outboundQueue:    cfg.OutboundQueue,
		origins:          append([]string(nil), cfg.Origins...),
		allowNoOrigin:    cfg.AllowNoOrigin,
		maxConns:         cfg.MaxConns,
		maxConnsPerIP:    cfg.MaxConnsPerIP,
		connRatePerIP:    cfg.ConnRatePerIP,
		opTimeout:        ms(cfg.AnswerTimeoutMs),
	}
	if s.maxFrame <= 0 {
		s.maxFrame = 65536
	}
	if s.outboundQueue <= 0 {
		s.outboundQueue = 1024
	}
	if s.opTimeout <= 0 {
		s.opTimeout = 10 * time.Second
	}
	if s.opsBurst < 1 {
		s.opsBurst = 1
	}
	if s.pingTimeout > 0 && s.pingTimeout < s.pingInterval {
		s.pingTimeout = s.pingInterval
	}
	if cfg.TLS != nil {
		r, err := newCertReloader(cfg.TLS.Cert, cfg.TLS.Key, log)
		if err != nil {
			s.tlsErr = err
		} else {
			s.tls = tlsConfig(r)
		}
	}
	return s
}
