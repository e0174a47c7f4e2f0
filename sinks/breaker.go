package sinks

import "time"

// CircuitState is the state of a sink's circuit breaker; its value is the
// skiff_sink_circuit_state gauge.
type CircuitState int

// Circuit states.
const (
	CircuitClosed   CircuitState = 0 // requests flow
	CircuitHalfOpen CircuitState = 1 // one probe is allowed through
	CircuitOpen     CircuitState = 2 // no requests until the cool-down ends
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

// breaker is a consecutive-failure circuit breaker. It is a pure state
// machine: the caller passes the time and holds the lock (the loop's mu),
// which keeps it testable without goroutines or clocks.
//
// closed --failures reach threshold--> open --cool-down over, first
// allow--> half-open (one probe in flight) --probe succeeds--> closed;
// --probe fails--> open again for another cool-down.
type breaker struct {
	threshold int           // consecutive failures that open it; <= 0 never opens
	cooldown  time.Duration // time open before the half-open probe

	state     CircuitState
	failures  int       // consecutive failures while closed
	openUntil time.Time // valid while open
	probing   bool      // a half-open probe is in flight
}

// allow reports whether an attempt may start at now. probe is true when
// the attempt is the half-open probe: its outcome must be reported with
// success, failure or abandon. When not allowed, wait is how long until
// the state may change by itself (0: only another attempt's outcome can
// change it).
func (b *breaker) allow(now time.Time) (ok, probe bool, wait time.Duration) {
	switch b.state {
	case CircuitClosed:
		return true, false, 0
	case CircuitOpen:
		if now.Before(b.openUntil) {
			return false, false, b.openUntil.Sub(now)
		}
		b.state = CircuitHalfOpen
		b.probing = false
	}
	if b.probing {
		return false, false, 0
	}
	b.probing = true
	return true, true, 0
}

// success records a successful attempt: any success proves the endpoint
// works, so the circuit closes whatever its state.
func (b *breaker) success() {
	b.state, b.failures, b.probing = CircuitClosed, 0, false
}

// failure records a failed attempt at now.
func (b *breaker) failure(now time.Time, probe bool) {
	switch b.state {
	case CircuitClosed:
		b.failures++
		if b.threshold > 0 && b.failures >= b.threshold {
			b.trip(now)
		}
	case CircuitHalfOpen:
		if probe {
			b.trip(now)
		}
	case CircuitOpen:
		// An attempt started before the circuit opened; the cool-down
		// already accounts for the endpoint being down.
	}
}

// abandon releases a probe whose attempt was cancelled without an
// outcome, and reports whether another attempt may now probe.
func (b *breaker) abandon(probe bool) bool {
	if probe && b.state == CircuitHalfOpen {
		b.probing = false
		return true
	}
	return false
}

func (b *breaker) trip(now time.Time) {
	b.state, b.openUntil, b.probing, b.failures = CircuitOpen, now.Add(b.cooldown), false, 0
}
