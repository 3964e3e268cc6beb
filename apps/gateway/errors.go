package gateway

import "errors"

// Errors of the gateway's API.
var (
	// ErrNotRunning: the gateway application does not run on the node.
	ErrNotRunning = errors.New("gateway: not running on this node")
	// ErrBadSetting: a runtime setting out of its range.
	ErrBadSetting = errors.New("gateway: bad setting")
)
