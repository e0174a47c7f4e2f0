package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestRepeatedErrorsAreRateLimited(t *testing.T) {
	var out bytes.Buffer
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := New(&out, "info", time.Minute)
	l.Handler().(*limiter).now = func() time.Time { return clock }

	a, b := l.With("sink", "a"), l.With("sink", "b")
	for i := 0; i < 100; i++ {
		a.Error("send failed", "attempt", i)
		b.Error("send failed", "attempt", i)
		l.Info("progress") // info is never limited
	}
	clock = clock.Add(2 * time.Minute)
	a.Error("send failed", "attempt", 100)

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var errs []map[string]any
	infos := 0
	for _, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		if m["level"] == "ERROR" {
			errs = append(errs, m)
		} else {
			infos++
		}
	}
	if infos != 100 {
		t.Errorf("%d info lines, want 100", infos)
	}
	if len(errs) != 3 {
		t.Fatalf("%d error lines, want 3 (one per sink, then one after the window): %s", len(errs), out.String())
	}
	if errs[2]["suppressed"] != 99.0 || errs[2]["sink"] != "a" {
		t.Errorf("last error line = %v, want sink a with 99 suppressed", errs[2])
	}
}

// A warning about another file is not a repeat: the tailer logs each
// unusable path once, and every one of them must reach the log.
func TestWarningsAboutOtherPathsAreNotLimited(t *testing.T) {
	var out bytes.Buffer
	l := New(&out, "info", time.Minute)
	for _, p := range []string{"/logs/a.log", "/logs/b.log", "/logs/a.log"} {
		l.Warn("cannot follow file", "path", p, "kind", "permission")
	}
	if n := strings.Count(out.String(), "cannot follow file"); n != 2 {
		t.Errorf("%d warnings, want 2 (a and b once each):\n%s", n, out.String())
	}
}

func TestLevel(t *testing.T) {
	var out bytes.Buffer
	l := New(&out, "warn", 0)
	l.Info("hidden")
	l.Warn("shown")
	if strings.Contains(out.String(), "hidden") || !strings.Contains(out.String(), "shown") {
		t.Fatalf("output %q", out.String())
	}
	if !l.Enabled(context.Background(), slog.LevelWarn) || l.Enabled(context.Background(), slog.LevelInfo) {
		t.Fatal("Enabled disagrees with the level")
	}
}
