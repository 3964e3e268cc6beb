// Package rules owns the pure logic of a Tavern board: it decodes and checks
// the ops of the client protocol, applies them to a board's entities, rolls
// dice, and writes and reads a board's snapshot. It has no Ergo, no database
// and no sockets; the board server calls it from the one place that owns a
// board's state.
package rules
