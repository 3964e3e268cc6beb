package bus

import "errors"

var (
	// ErrNotRunning means the bus application is not running on the
	// caller's node.
	ErrNotRunning = errors.New("bus: not running on this node")
	// ErrNotLocal means a pid of another node was given where only a
	// process of the caller's node may be (Sub, Unsub; pg's join).
	ErrNotLocal = errors.New("bus: pid is not on this node")
	// ErrNoSubscribers means Dispatch found no subscriber of the topic.
	ErrNoSubscribers = errors.New("bus: no subscribers")
	// ErrBusy means the bus server's request queue was full; the request
	// was not made and may be retried.
	ErrBusy = errors.New("bus: server busy")
	// ErrNotConnected means a member of the group is on a node this node
	// is not connected to at the moment; it was skipped, not dialled.
	ErrNotConnected = errors.New("bus: node not connected")
	// ErrNotJoined is pg's not_joined: none of the pids was in the group.
	ErrNotJoined = errors.New("bus: not joined")
	// ErrBadTopic means an empty topic.
	ErrBadTopic = errors.New("bus: empty topic")
)
