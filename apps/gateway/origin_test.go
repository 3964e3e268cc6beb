package gateway

import (
	"net/http/httptest"
	"testing"
)

func TestParseOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://play.example":          "https://play.example",
		"HTTPS://PLAY.example":          "https://play.example",
		"https://play.example:443":      "https://play.example",
		"http://play.example:80":        "http://play.example",
		"http://play.example:443":       "http://play.example:443",
		"https://play.example:8443":     "https://play.example:8443",
		"https://play.example/":         "https://play.example",
		"http://[::1]:80":               "http://[::1]",
		"http://[::1]:8080":             "http://[::1]:8080",
		"http://127.0.0.1:8080":         "http://127.0.0.1:8080",
		"null":                          "",
		"":                              "",
		"file://":                       "",
		"ws://play.example":             "",
		"https://":                      "",
		"https://play.example/x":        "",
		"https://play.example?":         "",
		"https://play.example#":         "",
		"https://u:p@play.example":      "",
		"https://play.example:99999x":   "",
		"javascript:alert(1)":           "",
		"https://play.example\x00.evil": "",
	} {
		got, ok := parseOrigin(in)
		if want == "" && ok || want != "" && got != want {
			t.Errorf("parseOrigin(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

// FuzzOriginPolicy: whatever the Origin and Host, check does not panic,
// and it admits an Origin only if its canonical form is the node's own
// page or a configured origin.
func FuzzOriginPolicy(f *testing.F) {
	for _, seed := range [][2]string{
		{"https://play.example", "node.example"},
		{"http://127.0.0.1:8080", "127.0.0.1:8080"},
		{"HTTP://127.0.0.1:80", "127.0.0.1"},
		{"null", "x"},
		{"http://[::1]:8080", "[::1]:8080"},
		{"https://play.example:443/", ""},
		{"http://%zz", "%zz"},
	} {
		f.Add(seed[0], seed[1])
	}
	p := newOriginPolicy([]string{"https://play.example", "http://localhost:3000"}, false, false)
	f.Fuzz(func(t *testing.T, origin, host string) {
		r := httptest.NewRequest("GET", "http://x/ws", nil)
		r.Host = host
		r.Header.Set("Origin", origin)
		if p.check(r) != "" {
			return
		}
		c, ok := parseOrigin(origin)
		own, ownOK := canonOrigin("http", host)
		_, listed := p.allowed[c]
		if !ok || !(listed || ownOK && c == own) {
			t.Fatalf("admitted Origin %q for Host %q", origin, host)
		}
	})
}
