package sinks

import (
	"math/rand/v2"
	"time"
)

// Backoff is capped exponential backoff with full jitter: the wait before
// retry n (counting from 0) is uniform in [0, min(Max, Min·2ⁿ)]. Full
// jitter spreads the retries of many agents hitting one sick endpoint
// (they would otherwise retry in lockstep). The zero value is not useful;
// the loop fills Min and Max from LoopOptions.
type Backoff struct {
	Min, Max time.Duration
}

// Ceiling is the upper bound of the wait before retry n.
func (b Backoff) Ceiling(n int) time.Duration {
	c := b.Min
	for i := 0; i < n && c < b.Max; i++ {
		c *= 2
	}
	return min(max(c, b.Min), b.Max)
}

// Duration is the jittered wait before retry n. Safe for concurrent use.
func (b Backoff) Duration(n int) time.Duration {
	c := b.Ceiling(n)
	if c <= 0 {
		return 0
	}
	return rand.N(c + 1)
}
