package store

import "errors"

var (
	// ErrFenced means a commit was refused because another activation of the
	// board has bumped its epoch since: this activation must stop.
	ErrFenced = errors.New("store: board epoch fenced by a newer activation")
	// ErrBusy means the group-commit queue is full; the op is refused now
	// (the client sees "unavailable" and retries with the same id).
	ErrBusy = errors.New("store: commit queue full")
	// ErrClosed means the store is shutting down or closed.
	ErrClosed = errors.New("store: closed")
	// ErrBadDSN means the dsn names no driver this build knows.
	ErrBadDSN = errors.New("store: dsn must start with sqlite: or postgres://")
)
