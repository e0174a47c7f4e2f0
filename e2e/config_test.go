package e2e

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// others returns what r received that is not a loggen line, by length.
func (r *receiver) othersBySize() map[int]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[int]string{}
	for _, s := range r.other {
		m[len(s)] = s
	}
	return m
}

// TestSmallBufferDefaults: a 4 MiB buffer with every other variable at its
// default (only the required ones set, and the metrics port moved so that
// tests can run side by side) starts, and ships a line as long as the
// derived SKIFF_MAX_LINE_BYTES (a quarter of the buffer, 1 MiB) whole.
// Before, SKIFF_MAX_LINE_BYTES's default (1 MiB) exceeded a sixteenth of
// the buffer and skiff exited 2.
func TestSmallBufferDefaults(t *testing.T) {
	t.Parallel()
	logs, data := t.TempDir(), t.TempDir()
	r := newReceiver(t)
	env := map[string]string{
		"SKIFF_PATHS":            filepath.Join(logs, "*.log"),
		"SKIFF_DATA_DIR":         data,
		"SKIFF_SINKS":            "http",
		"SKIFF_HTTP_URL":         r.url(),
		"SKIFF_BUFFER_MAX_BYTES": "4MiB",
		"SKIFF_METRICS_ADDR":     freeAddr(t),
	}
	p := start(t, env)
	line := strings.Repeat("m", 1<<20)
	appendLines(t, filepath.Join(logs, "app.log"), "first", line, "last")
	waitFor(t, 30*time.Second, "the three lines", func() bool {
		got := r.othersBySize()
		return got[5] == "first" && got[4] == "last" && got[len(line)] == line
	})
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestHugeLineArrivesWhole: SKIFF_MAX_LINE_BYTES=8MiB with a 64 MiB buffer
// is accepted, and an 8 MiB line goes through the tailer, the buffer and
// the HTTP sink (whose batches are 1 MiB: a larger record is sent alone)
// in one piece, with lines before and after it.
func TestHugeLineArrivesWhole(t *testing.T) {
	t.Parallel()
	logs, data := t.TempDir(), t.TempDir()
	r := newReceiver(t)
	env := httpEnv(data, r, filepath.Join(logs, "*.log"))
	env["SKIFF_BUFFER_MAX_BYTES"] = "64MiB"
	env["SKIFF_MAX_LINE_BYTES"] = "8MiB"
	p := start(t, env)
	line := strings.Repeat("0123456789abcdef", 8<<20/16)
	appendLines(t, filepath.Join(logs, "app.log"), "before", line, "after")
	waitFor(t, 60*time.Second, "the 8 MiB line", func() bool {
		got := r.othersBySize()
		return got[6] == "before" && got[5] == "after" && got[len(line)] == line
	})
	r.mu.Lock()
	n := r.records
	r.mu.Unlock()
	if n != 3 {
		t.Errorf("%d records arrived, want 3 (the long line in one piece)", n)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
