package config

import (
	"os"
	"reflect"
	"time"
)

// Defaults that follow another variable. A default must never contradict
// a legal value of another variable: where one variable bounds another,
// the bounded one's default is clamped to the bound (or grows with it)
// unless the user set it, and `skiff check` shows the value in effect.
//
// Bounds between variables, and what the default does:
//
//	MAX_LINE_BYTES        ≤ BUFFER_MAX_BYTES/4      default min(1MiB, BUFFER_MAX_BYTES/4)
//	BUFFER_SEGMENT_BYTES  ≤ BUFFER_MAX_BYTES/2      default min(64MiB, BUFFER_MAX_BYTES/8)
//	DEAD_LETTER_MAX_BYTES (a rejected line fits)    default max(64MiB, 8 × MAX_LINE_BYTES)
//	SHUTDOWN_QUIET        < SHUTDOWN_TIMEOUT        default min(1s, SHUTDOWN_TIMEOUT/4)
//	<SINK>_BACKOFF_MAX    ≥ <SINK>_BACKOFF_MIN, _FIRST_MINUTE_MAX   default max(4s, both)
//	<SINK>_BACKOFF_FIRST_MINUTE_MAX within [BACKOFF_MIN, BACKOFF_MAX]   default 1.5s clamped to them
const (
	defaultMaxLineBytes       = 1 << 20
	maxSegmentBytes           = 64 << 20
	defaultDeadLetterMaxBytes = 64 << 20
	defaultShutdownQuiet      = time.Second
	defaultBackoffMax         = 4 * time.Second
	defaultBackoffFirstMinute = 1500 * time.Millisecond
	// deadLetterLines is how many of the longest lines the default
	// dead-letter bound holds: a line's JSON form can be several times
	// its length (escaped control bytes, message_base64 beside message).
	deadLetterLines = 8
)

// setter reports whether the variable of a struct field was given in the
// environment (even if empty).
type setter func(field string) bool

// envSetter is the setter of spec's variables under prefix ("SKIFF" or
// "SKIFF_LOKI").
func envSetter(prefix string, spec any) setter {
	t := reflect.TypeOf(spec).Elem()
	return func(field string) bool {
		f, ok := t.FieldByName(field)
		if !ok {
			return false
		}
		_, set := os.LookupEnv(prefix + "_" + f.Tag.Get("envconfig"))
		return set
	}
}

// derive sets the defaults that depend on other variables (see above).
// Values that failed to parse are left alone: they are reported already.
func (c *Config) derive(set setter) {
	ok := func(fields ...string) bool {
		for _, f := range fields {
			if c.failed[f] {
				return false
			}
		}
		return true
	}
	if ok("BufferMaxBytes") && c.BufferMaxBytes > 0 {
		if !set("MaxLineBytes") {
			c.MaxLineBytes = min(defaultMaxLineBytes, c.BufferMaxBytes/4)
		}
		if c.BufferSegmentBytes == 0 && ok("BufferSegmentBytes") && c.BufferMaxBytes >= 1<<20 {
			c.BufferSegmentBytes = min(maxSegmentBytes, c.BufferMaxBytes/8)
		}
	}
	if !set("DeadLetterMaxBytes") && ok("MaxLineBytes") {
		c.DeadLetterMaxBytes = max(defaultDeadLetterMaxBytes, deadLetterLines*c.MaxLineBytes)
	}
	if !set("ShutdownQuiet") && ok("ShutdownTimeout") && c.ShutdownTimeout > 0 {
		c.ShutdownQuiet = min(defaultShutdownQuiet, c.ShutdownTimeout/4)
	}
}

// derive sets the defaults of an HTTP-based sink's client settings that
// depend on its other variables.
func (h *HTTPClient) derive(set setter) {
	h.BackoffMax, h.BackoffFirstMinuteMax = deriveBackoff(set, h.BackoffMin, h.BackoffMax, h.BackoffFirstMinuteMax)
}

// deriveBackoff returns the BACKOFF_MAX and BACKOFF_FIRST_MINUTE_MAX in
// effect: those set as set, the others following BACKOFF_MIN and each
// other.
func deriveBackoff(set setter, minD, maxD, first time.Duration) (time.Duration, time.Duration) {
	if !set("BackoffMax") {
		maxD = max(defaultBackoffMax, minD)
		if set("BackoffFirstMinuteMax") {
			maxD = max(maxD, first)
		}
	}
	if !set("BackoffFirstMinuteMax") {
		first = min(max(defaultBackoffFirstMinute, minD), maxD)
	}
	return maxD, first
}

// derive sets the defaults of k that depend on its other variables.
func (k *Kafka) derive(set setter) {
	k.BackoffMax, k.BackoffFirstMinuteMax = deriveBackoff(set, k.BackoffMin, k.BackoffMax, k.BackoffFirstMinuteMax)
}
