// Package bus is Tavern's topic pub/sub across nodes, in the manner of
// erlbus 0.3 (cabol/erlbus) and wire-compatible with it: Sub, Unsub, Pub,
// PubLocal, Dispatch and Subscribers over binary topics such as
// <<"board:cave-1">>.
//
// Each node runs the application "bus": an OTP pg scope server registered
// as ebus_ps_pg that speaks OTP 25's pg protocol with its peers (Go or
// Erlang), and the bus server ebus_ps, the node's one member of pg group
// ebus_ps in that scope. The bus server keeps which local processes are
// subscribed to which topic; other nodes publish to this node by sending it
// one {forward_to_local, From, PoolSize, Topic, Msg} message, which it fans
// out to its local subscribers. A publish therefore costs one distribution
// message per remote node of the group, whatever the number of subscribers
// there.
//
// Local fan-out does not pass through the bus server: the topic table is a
// concurrent structure that Pub and PubLocal read from the publisher's own
// process, and the bus server only maintains it (subscriptions arrive as
// direct requests, exits of subscribers as monitor DOWNs).
//
// # Payloads
//
// Messages to subscribers on the same node are delivered as the Go value
// given to Pub, shared, not copied: do not mutate a message after
// publishing it. Messages that cross nodes are ETF-encoded by Ergo, after
// Pub has returned: they must be plain terms (etf.Atom, etf.Tuple, etf.List,
// etf.Map, numbers, []byte for binaries, etf.Pid, ...) or structs whose type
// is registered with etf.RegisterType on every Go node. An unregistered
// struct arrives as an etf.Map; a Go string is sent as an Erlang charlist
// and fails beyond 65535 bytes; a value Ergo cannot encode is dropped by the
// connection, with a log line, after Pub has returned nil.
//
// # Losses
//
// Mailboxes in Ergo drop messages when full. The bus counts every message
// it loses (Stats): a local subscriber whose mailbox is full misses the
// message (DroppedFull); a publish from another node that finds the bus
// server's mailbox full is shed (Shed, seen through the mailbox's fallback
// process ebus_ps_overflow); a node that is not connected when a publish
// is made is skipped (ForwardErrors). Two losses stay outside its counters
// and are logged by Ergo instead: a payload Ergo cannot encode, and a
// burst beyond the fallback's own mailbox (16384 on top of the server's
// 65535). Subscribers that need every message must check sequence numbers,
// as Tavern's sessions do.
//
// # API
//
// Sub, Unsub, Pub, PubFrom, PubLocal, Dispatch, Subscribers,
// LocalSubscribers, Members and ReadStats take the calling process, whose
// node names the bus and which sends what is published. NewApp (or New,
// with a Config) returns the application to start with the node.
package bus
