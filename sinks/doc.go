// Package sinks is the core every sink shares: the Sink interface, Batch,
// SendError and its kinds, Deps, the delivery Loop, backoff, the circuit
// breaker and the dead letters. The backends live in their own packages,
// one each (sinks/stdout, sinks/kafka, sinks/http), and implement Sink;
// cmd/skiff wires them to their loops.
//
// Each configured sink has one delivery Loop that reads from its own buffer
// cursor, sends batches (several in flight when the sink allows it), retries
// failures on one schedule per sink (capped, jittered backoff; once the
// circuit is open, one single-record probe at a time with a short
// deadline; the first success releases every batch), and commits the
// cursor in order, only past records the
// destination acknowledged or that were dead-lettered. Delivery is
// at-least-once: records in flight at a crash are sent again, and every
// record carries a stable ID for deduplication.
package sinks
