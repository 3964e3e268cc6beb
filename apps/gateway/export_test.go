package gateway

import (
	"net/http"

	"github.com/ergo-services/ergo/etf"
	"time"

	"github.com/tavernhq/tavern/apps/gateway/wire"
)

// SetInboundHook makes every session run f before it handles a decoded
// client message (nil: none). For tests that stall a session.
func SetInboundHook(f func(*wire.Request)) {
	if f == nil {
		testHookInbound.Store(nil)
		return
	}
	testHookInbound.Store(&f)
}

// SetHoldHook makes sessions run f when they start holding frames back
// (nil: nothing).
func SetHoldHook(f func()) {
	if f == nil {
		testHookHold.Store(nil)
		return
	}
	testHookHold.Store(&f)
}

// OwnEvent exposes ownEvent to the tests.
var OwnEvent = ownEvent

// SetCertCheckInterval makes gateways started from now on look at their
// certificate files every d; it returns the restore function.
func SetCertCheckInterval(d time.Duration) (restore func()) {
	old := certCheckEvery.Swap(int64(d))
	return func() { certCheckEvery.Store(old) }
}

// OpenTCP is how many TCP connections a's listeners hold open.
func OpenTCP(a *App) int { return a.hub.guard.open() }

// ClientKey exposes clientKey.
var ClientKey = clientKey

// OriginAllowed runs a's origin policy on r.
func OriginAllowed(a *App, r *http.Request) string { return a.hub.orig.check(r) }

// Conns is how many WebSocket connections a's hub holds (said hello or
// not).
func Conns(a *App) int {
	a.hub.mu.Lock()
	defer a.hub.mu.Unlock()
	return len(a.hub.conns)
}

// SessionOf is the session process of user's connection to a (none: the
// zero pid).
func SessionOf(a *App, user string) etf.Pid {
	a.hub.mu.Lock()
	defer a.hub.mu.Unlock()
	for c := range a.hub.conns {
		c.mu.Lock()
		u := c.user
		c.mu.Unlock()
		if u == user && c.session != nil {
			return c.session.Self()
		}
	}
	return etf.Pid{}
}
