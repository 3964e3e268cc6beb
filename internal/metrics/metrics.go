// Package metrics defines Tavern's Prometheus metrics in one registry, so
// every application counts into the same /metrics page without importing
// another application.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Registry holds every Tavern metric plus Go runtime and process metrics.
var Registry = prometheus.NewRegistry()

var (
	// Connections is the number of open client WebSocket connections.
	Connections = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tavern_connections", Help: "Open client WebSocket connections."})
	// ConnectionsRefused counts connections refused before a session, by reason.
	ConnectionsRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tavern_connections_refused_total", Help: "Connections refused, by reason."}, []string{"reason"})
	// ConnectionsDropped counts client connections the server cut for a
	// timeout, by reason: hello_timeout (no hello in time), idle (silent,
	// no pong, for the ping timeout), slow_message (a message begun and
	// not finished within the ping timeout).
	ConnectionsDropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tavern_connections_dropped_total", Help: "Client connections cut for a timeout, by reason."}, []string{"reason"})
	// Closes counts client connections closed by the server, by close code.
	Closes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tavern_closes_total", Help: "Client connections closed, by WebSocket close code."}, []string{"code"})
	// BoardsActive is the number of board actors running on this node.
	BoardsActive = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tavern_boards_active", Help: "Board actors running on this node."})
	// Ops counts ops made durable by this node's boards.
	Ops = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tavern_ops_total", Help: "Ops acknowledged (durable) by this node's boards."})
	// AckLatency is the time from an op reaching the session to its ack.
	AckLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "tavern_ack_latency_seconds", Help: "Time from an op's arrival to its durable ack.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)})
	// Errors counts error replies sent to clients, by protocol code.
	Errors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tavern_errors_total", Help: "Error replies sent to clients, by code."}, []string{"code"})
	// BoardRestarts counts board actors that crashed and were restarted.
	BoardRestarts = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tavern_board_restarts_total", Help: "Board actors that crashed and were restarted."})
	// DistEventMessages counts the distribution messages that carry board
	// events to other nodes: one per commit and per other node with
	// members, whatever their number there (the fanout of DESIGN.md).
	DistEventMessages = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tavern_dist_event_messages_total", Help: "Messages carrying board events sent to other nodes (one per commit per node with members)."})
	// CommitBatches counts group-commit transactions, by outcome.
	CommitBatches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tavern_commit_batches_total", Help: "Group-commit transactions, by outcome."}, []string{"outcome"})
)

func init() {
	Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		Connections, ConnectionsRefused, ConnectionsDropped, Closes, BoardsActive, Ops, AckLatency, Errors, BoardRestarts, CommitBatches, DistEventMessages,
	)
}
