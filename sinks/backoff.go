package sinks

import (
	"math/rand/v2"
	"time"
)

// Backoff spaces the attempts of a sink whose destination fails: capped
// exponential backoff with jitter, where the cap is lower while the
// outage is young. The ceiling of the wait after the n-th failed round
// (counting from 1) is min(Min·2ⁿ⁻¹, cap), at least Min, where cap is
// FirstMinuteMax during the first minute of failures and Max afterwards.
// The wait itself is drawn uniformly from [ceiling/2, ceiling].
//
// Why those bounds: when the destination answers again, the next attempt
// is at most one ceiling away, so a short outage ends for skiff at most
// FirstMinuteMax after it ends for the destination, and a long one at
// most Max after; the jitter (half the ceiling) keeps agents that lost the
// same endpoint from retrying in lockstep. The waits are not drawn from
// [0, ceiling] (full jitter): that would send twice as many probes for the
// same worst-case recovery.
//
// The zero value is not useful; the loop fills it from LoopOptions.
type Backoff struct {
	Min, Max       time.Duration
	FirstMinuteMax time.Duration // 0: Max
}

// firstMinute is how long FirstMinuteMax caps the waits.
const firstMinute = time.Minute

// Ceiling is the longest wait after the n-th failed round (n >= 1) of an
// outage that has lasted age.
func (b Backoff) Ceiling(n int, age time.Duration) time.Duration {
	limit := b.Max
	if age < firstMinute && b.FirstMinuteMax > 0 {
		limit = min(limit, b.FirstMinuteMax)
	}
	limit = max(limit, b.Min)
	c := b.Min
	for i := 1; i < n && c < limit; i++ {
		c *= 2
	}
	return min(c, limit)
}

// Duration is the jittered wait after the n-th failed round of an outage
// that has lasted age: uniform in [Ceiling/2, Ceiling]. Safe for
// concurrent use.
func (b Backoff) Duration(n int, age time.Duration) time.Duration {
	c := b.Ceiling(n, age)
	if c <= 0 {
		return 0
	}
	return c/2 + rand.N(c-c/2+1)
}
