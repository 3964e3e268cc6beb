package testutil

import (
	"testing"

	"github.com/tavernhq/tavern/internal/tcpproxy"
)

// NewProxy starts a tcpproxy.Proxy to target that lives until the test
// ends.
func NewProxy(t testing.TB, target string) *tcpproxy.Proxy {
	t.Helper()
	p, err := tcpproxy.New(target)
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}
