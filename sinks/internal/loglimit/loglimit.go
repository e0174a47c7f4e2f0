// Package loglimit rate-limits repeated error log lines: one line per
// interval gets through, and the lines held back in between are counted so
// that the next line can say how many there were. The delivery loop and
// the sinks use it so that a destination failing thousands of times a
// second costs a few log lines, not a flood.
package loglimit

import "time"

// Every is the minimum interval between two error log lines of one sink;
// the errors in between are counted in the next line.
const Every = 30 * time.Second

// Limiter lets one log line through per Every and counts the rest. The
// zero value lets every line through. It is not safe for concurrent use:
// its owner guards it.
type Limiter struct {
	Every      time.Duration
	next       time.Time
	suppressed int
}

// Allow reports whether a line may be logged at now, and how many were
// suppressed since the last one.
func (r *Limiter) Allow(now time.Time) (bool, int) {
	if now.Before(r.next) {
		r.suppressed++
		return false, 0
	}
	n := r.suppressed
	r.next, r.suppressed = now.Add(r.Every), 0
	return true, n
}

// Suppressed is how many lines were held back since the last one let
// through.
func (r *Limiter) Suppressed() int { return r.suppressed }
