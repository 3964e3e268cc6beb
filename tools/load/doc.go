// Package load is the engine of Tavern's load and chaos tools: clients
// that speak the client protocol (PROTOCOL.md) to one or more nodes, a
// runner that drives them at a fixed rate, in rate steps to find the
// maximum, or closed-loop to saturation, and the statistics it keeps (HDR
// histograms of ack and op-to-delivery latency, a time series, errors by
// code, close codes). With Record set, every client keeps its history of
// every board for the chaos checker.
package load
