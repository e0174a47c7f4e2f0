package tailer

import (
	"testing"
	"time"
)

// Wedged fails only when the loop has stopped passing without waiting on
// the buffer: a full buffer (Append blocked) is backpressure, not a wedge.
func TestWedged(t *testing.T) {
	for name, tc := range map[string]struct {
		running  bool
		lastPass time.Duration // ago; 0 means never
		inAppend bool
		wedged   bool
	}{
		"not running":              {running: false, lastPass: time.Hour},
		"first pass":               {running: true},
		"recent pass":              {running: true, lastPass: time.Second},
		"stuck":                    {running: true, lastPass: 2 * time.Minute, wedged: true},
		"blocked by a full buffer": {running: true, lastPass: 2 * time.Minute, inAppend: true},
	} {
		t.Run(name, func(t *testing.T) {
			tl := &Tailer{}
			tl.running.Store(tc.running)
			if tc.lastPass > 0 {
				tl.lastPass = time.Now().Add(-tc.lastPass)
			}
			if tc.inAppend {
				tl.appendSince.Store(time.Now().Add(-time.Hour).UnixNano())
			}
			if err := tl.Wedged(); (err != nil) != tc.wedged {
				t.Fatalf("Wedged() = %v, want wedged=%v", err, tc.wedged)
			}
		})
	}
}
