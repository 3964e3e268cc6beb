package gateway

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// originPolicy decides which browser pages may open a WebSocket, from the
// Origin header of the upgrade request (browsers always send it; a page
// cannot forge it):
//
//   - the node's own page, same scheme (https when the gateway has TLS)
//     and same host and port as the request, is always allowed;
//   - so is every origin of the configured list, compared exactly (scheme,
//     host, port; case and a default port do not matter; no wildcards);
//   - anything else, "null" (sandboxed frames, file: pages), a malformed
//     Origin or several Origin headers included, is refused with 403;
//   - a request without Origin (not a browser: game clients, tools) is
//     allowed when allow_no_origin is set, refused with 403 otherwise.
//
// It is no authentication: a non-browser client sends what it likes. It
// keeps other web sites from using their visitors' browsers to connect.
type originPolicy struct {
	allowed   map[string]struct{} // canonical origins
	allowNone bool
	scheme    string // of the node's own page
}

func newOriginPolicy(origins []string, allowNone, tls bool) *originPolicy {
	p := &originPolicy{allowed: make(map[string]struct{}, len(origins)), allowNone: allowNone, scheme: "http"}
	if tls {
		p.scheme = "https"
	}
	for _, o := range origins {
		if c, ok := parseOrigin(o); ok {
			p.allowed[c] = struct{}{}
		}
	}
	return p
}

// Refusal reasons, as counted in tavern_connections_refused_total.
const (
	refusedNoOrigin = "no_origin"
	refusedOrigin   = "origin"
)

// check returns "" when r may upgrade, else the refusal reason.
func (p *originPolicy) check(r *http.Request) string {
	values := r.Header.Values("Origin")
	switch len(values) {
	case 0:
		if p.allowNone {
			return ""
		}
		return refusedNoOrigin
	case 1:
	default:
		return refusedOrigin
	}
	origin, ok := parseOrigin(values[0])
	if !ok {
		return refusedOrigin
	}
	if own, ok := canonOrigin(p.scheme, r.Host); ok && origin == own {
		return ""
	}
	if _, ok := p.allowed[origin]; ok {
		return ""
	}
	return refusedOrigin
}

// parseOrigin returns the canonical form of an origin like
// https://play.example:8443, or false if s is not one (no path, query,
// user or fragment; http or https).
func parseOrigin(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || u.User != nil || u.Opaque != "" || u.RawQuery != "" || u.Fragment != "" ||
		(u.Path != "" && u.Path != "/") || strings.ContainsAny(s, "?#") {
		return "", false
	}
	return canonOrigin(u.Scheme, u.Host)
}

// canonOrigin lowercases scheme and host and drops a default port.
func canonOrigin(scheme, host string) (string, bool) {
	scheme = strings.ToLower(scheme)
	if scheme != "http" && scheme != "https" || host == "" {
		return "", false
	}
	host = strings.ToLower(host)
	if h, port, err := net.SplitHostPort(host); err == nil {
		if port == "" || scheme == "http" && port == "80" || scheme == "https" && port == "443" {
			host = h
			if strings.Contains(h, ":") {
				host = "[" + h + "]"
			}
		}
	}
	return scheme + "://" + host, true
}
