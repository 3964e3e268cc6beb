package gateway

import "github.com/tavernhq/tavern/apps/gateway/wire"

// SetInboundHook makes every session run f before it handles a decoded
// client message (nil: none). For tests that stall a session.
func SetInboundHook(f func(*wire.Request)) {
	if f == nil {
		testHookInbound.Store(nil)
		return
	}
	testHookInbound.Store(&f)
}

// OwnEvent exposes ownEvent to the tests.
var OwnEvent = ownEvent
