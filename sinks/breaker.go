package sinks

import (
	"math"
	"time"
)

// CircuitState is the state of a sink's circuit breaker; its value is the
// skiff_sink_circuit_state gauge.
type CircuitState int

// Circuit states.
const (
	CircuitClosed   CircuitState = 0 // requests flow, up to Concurrency at once
	CircuitHalfOpen CircuitState = 1 // the probe is in flight; nothing else starts
	CircuitOpen     CircuitState = 2 // waiting for the next probe
)

// String returns closed, half-open or open.
func (s CircuitState) String() string {
	switch s {
	case CircuitClosed:
		return "closed"
	case CircuitHalfOpen:
		return "half-open"
	case CircuitOpen:
		return "open"
	}
	return "unknown"
}

const (
	// minAttemptTimeout is the shortest deadline the loop gives an
	// attempt of its own accord (a probe, or an attempt to an endpoint
	// that usually answers much faster). It bounds what a destination
	// that accepts requests and never answers them costs the recovery.
	minAttemptTimeout = 1500 * time.Millisecond
	// attemptTimeoutFactor times the slowest recent answer is the
	// deadline of an ordinary attempt (see latency).
	attemptTimeoutFactor = 4
	// latencyHalfLife is how fast the slowest recent answer is forgotten.
	latencyHalfLife = 30 * time.Second
)

// breaker is the retry schedule and circuit breaker of one sink, shared by
// all its batches. It is a pure state machine: the caller passes the time
// and holds the lock (the loop's mu), which keeps it testable without
// goroutines or clocks.
//
// Every failed attempt moves the next allowed attempt (next) to its start
// plus a backoff wait, for every batch: a sink retries as one, not once per
// batch in flight. threshold consecutive failures, or one timeout, open the
// circuit: from then on one attempt at a time (the probe) goes out, each
// next one a backoff wait after the previous one started. Any success
// closes the circuit and clears the schedule, so every waiting batch goes
// at once.
//
//	closed --threshold failures, or a timeout--> open --next reached-->
//	half-open (one probe in flight) --success--> closed
//	                                --failure--> open (next: another wait)
type breaker struct {
	threshold int // consecutive failures that open it; <= 0 never opens
	backoff   Backoff

	state    CircuitState
	failures int       // consecutive failed attempts
	rounds   int       // failed rounds: failures of attempts started after the previous failure
	since    time.Time // start of the first failed attempt of this run; zero while healthy
	lastFail time.Time // when the last failure was recorded
	next     time.Time // no attempt starts before this
	probing  bool      // the probe is in flight
}

// allow reports whether an attempt may start at now. probe is true when
// the attempt is the probe: its outcome must be reported with success,
// failure or abandon. When not allowed, wait is how long until the state
// may change by itself (0: only another attempt's outcome can change it).
func (b *breaker) allow(now time.Time) (ok, probe bool, wait time.Duration) {
	if now.Before(b.next) {
		return false, false, b.next.Sub(now)
	}
	if b.state == CircuitClosed {
		return true, false, 0
	}
	if b.probing {
		return false, false, 0
	}
	b.state, b.probing = CircuitHalfOpen, true
	return true, true, 0
}

// success records a successful attempt: any success proves the endpoint
// works, so the circuit closes and the schedule clears, whatever the state.
func (b *breaker) success() {
	*b = breaker{threshold: b.threshold, backoff: b.backoff}
}

// failure records at now an attempt that started at start and failed.
// timeout reports that it ran out of time: one such failure opens the
// circuit, because every attempt in flight to an endpoint that does not
// answer holds its slot for a whole timeout.
func (b *breaker) failure(start, now time.Time, probe, timeout bool) {
	if b.failures == 0 {
		b.since = start
	}
	b.failures++
	// Attempts that were in flight together fail together: one round.
	if b.rounds == 0 || !start.Before(b.lastFail) {
		b.rounds++
	}
	b.lastFail = now
	switch {
	case probe && b.probing: // not when another attempt closed the circuit meanwhile
		b.state, b.probing = CircuitOpen, false
	case b.state == CircuitClosed && b.threshold > 0 && (b.failures >= b.threshold || timeout):
		b.state = CircuitOpen
	}
	// Spaced from the start: an attempt that took long already gave the
	// endpoint its rest. The cap is the one of the outage's age at that
	// start, so that an outage shorter than a minute ends for the sink at
	// most FirstMinuteMax after it ends for the destination.
	if next := start.Add(b.backoff.Duration(b.rounds, start.Sub(b.since))); next.After(b.next) {
		b.next = next
	}
}

// abandon releases a probe whose attempt was cancelled without an
// outcome, and reports whether another attempt may now probe.
func (b *breaker) abandon(probe bool) bool {
	if probe && b.probing {
		b.state, b.probing = CircuitOpen, false
		return true
	}
	return false
}

// probeTimeout is the deadline of a probe starting at now: as long as the
// wait before the next one (a longer probe would not find a recovery
// sooner), and at least minAttemptTimeout.
func (b *breaker) probeTimeout(now time.Time) time.Duration {
	return max(minAttemptTimeout, b.backoff.Ceiling(b.rounds+1, now.Sub(b.since)))
}

// latency tracks the slowest recent answer of a destination, forgotten
// with a half-life of latencyHalfLife, to give ordinary attempts a
// deadline of attemptTimeoutFactor times it (at least minAttemptTimeout)
// within the sink's own timeout. A destination that starts accepting
// requests without answering them is then noticed within seconds, not
// after the sink's full timeout; one that merely slowed down costs a
// timed-out attempt per doubling of its answer time (see timedOut).
// Callers hold the loop's mu.
type latency struct {
	peak time.Duration
	at   time.Time // of peak; zero: no answer yet, no deadline of our own
}

func (e *latency) decayed(now time.Time) time.Duration {
	age := now.Sub(e.at).Seconds()
	return time.Duration(float64(e.peak) * math.Exp2(-age/latencyHalfLife.Seconds()))
}

// observe records an answer that took d.
func (e *latency) observe(now time.Time, d time.Duration) {
	if !e.at.IsZero() {
		d = max(d, e.decayed(now))
	}
	e.peak, e.at = d, now
}

// timedOut records an attempt that ran out of its deadline d: the next
// deadline is at least twice as long.
func (e *latency) timedOut(now time.Time, d time.Duration) {
	e.observe(now, d*2/attemptTimeoutFactor)
}

// timeout is the deadline of an ordinary attempt starting at now; 0 means
// none of the loop's own (nothing was answered yet).
func (e *latency) timeout(now time.Time) time.Duration {
	if e.at.IsZero() {
		return 0
	}
	return max(minAttemptTimeout, attemptTimeoutFactor*e.decayed(now))
}
