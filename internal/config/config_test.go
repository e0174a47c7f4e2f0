package config

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiff-dev/skiff/internal/redact"
)

// setenv clears every SKIFF_ variable of the test process, then sets env.
func setenv(t *testing.T, env map[string]string) {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "SKIFF_") {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
}

func problems(t *testing.T, err error) []string {
	t.Helper()
	var ps Problems
	if err == nil {
		return nil
	}
	if !errors.As(err, &ps) {
		t.Fatalf("error %v is not Problems", err)
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Error()
	}
	return out
}

func TestLoadReportsEveryProblemAtOnce(t *testing.T) {
	setenv(t, map[string]string{
		"SKIFF_DATA_DIR":         t.TempDir(),
		"SKIFF_BUFER_MAX_BYTES":  "1GiB",  // misspelled
		"SKIFF_SINKS":            "stdot", // unknown sink type
		"SKIFF_BUFFER_MAX_BYTES": "12 parsecs",
		// SKIFF_PATHS missing
	})
	_, err := Load()
	ps := problems(t, err)
	want := []string{
		"SKIFF_BUFER_MAX_BYTES is not a skiff variable; did you mean SKIFF_BUFFER_MAX_BYTES?",
		`SKIFF_SINKS: "stdot" has unknown sink type "stdot"`,
		`SKIFF_BUFFER_MAX_BYTES: "12 parsecs" is not accepted`,
		"SKIFF_PATHS is required",
	}
	for _, w := range want {
		found := false
		for _, p := range ps {
			found = found || strings.Contains(p, w)
		}
		if !found {
			t.Errorf("problem %q not reported; got:\n%s", w, strings.Join(ps, "\n"))
		}
	}
	if len(ps) != len(want) {
		t.Errorf("got %d problems, want %d:\n%s", len(ps), len(want), strings.Join(ps, "\n"))
	}
}

func TestLoadGood(t *testing.T) {
	dir := t.TempDir()
	setenv(t, map[string]string{
		"SKIFF_PATHS":            "/var/log/app/**/*.log, /var/log/other.log",
		"SKIFF_EXCLUDE":          "*.gz",
		"SKIFF_DATA_DIR":         dir,
		"SKIFF_SINKS":            "stdout,raw:stdout",
		"SKIFF_RAW_FORMAT":       "raw",
		"SKIFF_FIELDS":           "container=app,team=payments",
		"SKIFF_BUFFER_MAX_BYTES": "512MiB",
		// Injected by Kubernetes for a Service named skiff: ignored.
		"SKIFF_SERVICE_HOST":         "10.0.0.1",
		"SKIFF_SERVICE_PORT_METRICS": "9477",
		"SKIFF_PORT":                 "tcp://10.0.0.1:9477",
		"SKIFF_PORT_9477_TCP_ADDR":   "10.0.0.1",
		"SKIFF_RAW_SERVICE_HOST":     "10.0.0.2",
		// Unprefixed variables of the application never configure skiff.
		"LOG_LEVEL": "bogus",
		"PATHS":     "/nope",
		"POD_UID":   "0f1e2d3c-aaaa-bbbb-cccc-1234567890ab",
	})
	c, err := Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := strings.Join(c.Paths, "|"); got != "/var/log/app/**/*.log|/var/log/other.log" {
		t.Errorf("Paths = %q", got)
	}
	if c.BufferMaxBytes != 512<<20 {
		t.Errorf("BufferMaxBytes = %d", c.BufferMaxBytes)
	}
	if c.LogLevel != "info" || c.PodUID == "" || c.Fields["team"] != "payments" {
		t.Errorf("config = %+v", c)
	}
	if len(c.SinkList) != 2 || c.SinkList[0].Stdout.Format != "json" || c.SinkList[1].Stdout.Format != "raw" {
		t.Errorf("sinks = %+v", c.SinkList)
	}
}

func TestLoadRejects(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"duplicate sink name":        {map[string]string{"SKIFF_SINKS": "stdout,stdout"}, `sink name "stdout" is used twice`},
		"bad sink name":              {map[string]string{"SKIFF_SINKS": "Loki:http"}, `invalid sink name "Loki"`},
		"relative path":              {map[string]string{"SKIFF_PATHS": "logs/*.log"}, "is not absolute"},
		"bad glob":                   {map[string]string{"SKIFF_PATHS": "/logs/[a.log"}, "is not a valid glob"},
		"bad policy":                 {map[string]string{"SKIFF_BUFFER_WHEN_FULL": "drop"}, `SKIFF_BUFFER_WHEN_FULL: "drop" is not accepted (accepted: block, drop_oldest, drop_newest)`},
		"bad duration":               {map[string]string{"SKIFF_SCAN_INTERVAL": "5 minutes"}, `SKIFF_SCAN_INTERVAL: "5 minutes" is not accepted`},
		"bad regex":                  {map[string]string{"SKIFF_MULTILINE_START": "(["}, "SKIFF_MULTILINE_START"},
		"typo in sink var":           {map[string]string{"SKIFF_SINKS": "raw:stdout", "SKIFF_RAW_FORMATT": "raw"}, "did you mean SKIFF_RAW_FORMAT?"},
		"var of absent sink":         {map[string]string{"SKIFF_LOKI_URL": "http://x"}, "SKIFF_LOKI_URL is not a skiff variable"},
		"bad stdout format":          {map[string]string{"SKIFF_STDOUT_FORMAT": "yaml"}, `SKIFF_STDOUT_FORMAT: "yaml" is not accepted (accepted: json, raw)`},
		"line over a quarter":        {map[string]string{"SKIFF_MAX_LINE_BYTES": "65MiB"}, "SKIFF_MAX_LINE_BYTES: 65MiB is too large for SKIFF_BUFFER_MAX_BYTES=256MiB (accepted: at most a quarter of it, 64MiB)"},
		"quiet beyond shutdown time": {map[string]string{"SKIFF_SHUTDOWN_TIMEOUT": "2s", "SKIFF_SHUTDOWN_QUIET": "2s"}, "SKIFF_SHUTDOWN_QUIET: 2s leaves no time within SKIFF_SHUTDOWN_TIMEOUT=2s"},
		"data dir is a file":         {map[string]string{"SKIFF_DATA_DIR": "/etc/hostname/skiff"}, "SKIFF_DATA_DIR"},
		"retired breaker cool-down": {map[string]string{"SKIFF_SINKS": "logs:http", "SKIFF_LOGS_URL": "http://x", "SKIFF_LOGS_BREAKER_COOLDOWN": "30s"},
			"SKIFF_LOGS_BREAKER_COOLDOWN is no longer read: an open circuit no longer waits a fixed cool-down; it sends one probe at a time, spaced by the backoff (SKIFF_LOGS_BACKOFF_FIRST_MINUTE_MAX"},
		"retired kafka cool-down": {map[string]string{"SKIFF_SINKS": "kafka", "SKIFF_KAFKA_BROKERS": "k:9092", "SKIFF_KAFKA_TOPIC": "t", "SKIFF_KAFKA_BREAKER_COOLDOWN": "10s"},
			"SKIFF_KAFKA_BREAKER_COOLDOWN is no longer read"},
	} {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"SKIFF_PATHS": "/logs/*.log", "SKIFF_DATA_DIR": t.TempDir()}
			for k, v := range tc.env {
				env[k] = v
			}
			setenv(t, env)
			_, err := Load()
			ps := problems(t, err)
			if !strings.Contains(strings.Join(ps, "\n"), tc.want) {
				t.Fatalf("want a problem containing %q, got:\n%s", tc.want, strings.Join(ps, "\n"))
			}
		})
	}
}

// TestDataDirOnReadOnlyMount uses a real read-only mount: CI runs as root,
// so file modes alone would not make a directory unwritable.
func TestDataDirOnReadOnlyMount(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		skipUnprivileged(t, "cannot mount a read-only tmpfs here (%v: %s)", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	setenv(t, map[string]string{"SKIFF_PATHS": "/logs/*.log", "SKIFF_DATA_DIR": dir})
	_, err := Load()
	ps := problems(t, err)
	if len(ps) != 1 || !strings.Contains(ps[0], "read-only file system") {
		t.Fatalf("want one read-only problem, got %q", ps)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]Size{
		"1048576": 1 << 20, "512MiB": 512 << 20, "1GiB": 1 << 30, "64kb": 64000, "1.5GiB": 3 << 29, "10 MiB": 10 << 20, "2m": 2 << 20,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "12 parsecs", "1e30GiB"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}

func TestEffectiveRedactsSecrets(t *testing.T) {
	type withSecret struct {
		Password string `envconfig:"PASSWORD" secret:"true"`
		User     string `envconfig:"USER"`
	}
	got := settings("SKIFF_X_", &withSecret{Password: "hunter2", User: "bob"}, nil)
	if got[0].Value != "REDACTED" || got[1].Value != "bob" {
		t.Fatalf("settings = %+v", got)
	}
}

// TestSharedClientSettings: the settings an HTTP-based sink embeds
// (HTTPClient) read, validate and redact as the sink's own variables.
func TestSharedClientSettings(t *testing.T) {
	setenv(t, map[string]string{
		"SKIFF_PATHS":               "/var/log/app/*.log",
		"SKIFF_DATA_DIR":            t.TempDir(),
		"SKIFF_SINKS":               "loki:http",
		"SKIFF_LOKI_URL":            "http://loki:3100",
		"SKIFF_LOKI_AUTH":           "bearer",
		"SKIFF_LOKI_TOKEN":          "s3cret",
		"SKIFF_LOKI_TIMEOUT":        "3s",
		"SKIFF_LOKI_LINGER":         "-1s",  // invalid: reported under its own name
		"SKIFF_LOKI_BATCH_MAX_BYTE": "1MiB", // unknown: the shared names are known, this one is not
	})
	c, err := Load()
	ps := problems(t, err)
	if len(ps) != 2 || !strings.Contains(strings.Join(ps, "\n"), "SKIFF_LOKI_LINGER: -1s is not accepted") ||
		!strings.Contains(strings.Join(ps, "\n"), "SKIFF_LOKI_BATCH_MAX_BYTE is not a skiff variable; did you mean SKIFF_LOKI_BATCH_MAX_BYTES?") {
		t.Fatalf("problems:\n%s", strings.Join(ps, "\n"))
	}
	h := c.SinkList[0].HTTP
	if h.Token != "s3cret" || h.Timeout.String() != "3s" || h.BatchMaxRecords != 2000 {
		t.Fatalf("shared settings not read: %+v", h.HTTPClient)
	}
	var token, timeout string
	for _, s := range Effective(c) {
		switch s.Name {
		case "SKIFF_LOKI_TOKEN":
			token = s.Value
		case "SKIFF_LOKI_TIMEOUT":
			timeout = s.Value
		}
	}
	if token != redact.Mask || timeout != "3s" {
		t.Fatalf("Effective: SKIFF_LOKI_TOKEN=%q SKIFF_LOKI_TIMEOUT=%q", token, timeout)
	}
}

// skipUnprivileged skips a test that needs root (mounts, another user)
// where it cannot run, or fails it when SKIFF_REQUIRE_PRIVILEGED=1, as
// .ci/run sets it: a CI that cannot exercise ENOSPC or EROFS must show.
func skipUnprivileged(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("SKIFF_REQUIRE_PRIVILEGED") == "1" {
		t.Fatalf("SKIFF_REQUIRE_PRIVILEGED=1, but: "+format, args...)
	}
	t.Skipf(format, args...)
}
