// Package e2e holds skiff's end-to-end tests: they build the real skiff
// binary, run it as a subprocess against real files and real sinks (its
// stdout, a local HTTP server, an in-process Kafka-protocol broker), kill
// it with real signals, and check per stream that no line is missing,
// duplicated beyond what was in flight, or corrupted.
//
// The ordinary `go test ./...` runs short versions of every scenario;
// SKIFF_LONG=1 runs the long ones.
package e2e
