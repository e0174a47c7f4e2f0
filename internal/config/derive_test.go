package config

import (
	"strings"
	"testing"
	"time"
)

// TestDefaultsFitEveryLegalValue sets one variable (or one named pair) at
// an edge of what it accepts, leaves every other at its default, and
// expects the configuration to load, with the defaults that follow it
// moved as documented (derive.go).
func TestDefaultsFitEveryLegalValue(t *testing.T) {
	type want struct {
		maxLine, segment, deadLetter Size
		quiet, httpBackoffMax        time.Duration
		httpFirstMinute              time.Duration
	}
	for name, tc := range map[string]struct {
		env  map[string]string
		want *want
	}{
		"smallest buffer": {env: map[string]string{"SKIFF_BUFFER_MAX_BYTES": "1MiB"},
			want: &want{maxLine: 256 << 10, segment: 128 << 10, deadLetter: 64 << 20}},
		"4MiB buffer": {env: map[string]string{"SKIFF_BUFFER_MAX_BYTES": "4MiB"},
			want: &want{maxLine: 1 << 20, segment: 512 << 10, deadLetter: 64 << 20}},
		"largest line of the default buffer": {env: map[string]string{"SKIFF_MAX_LINE_BYTES": "64MiB"},
			want: &want{maxLine: 64 << 20, segment: 32 << 20, deadLetter: 512 << 20}},
		"8MiB line, 64MiB buffer": {env: map[string]string{"SKIFF_BUFFER_MAX_BYTES": "64MiB", "SKIFF_MAX_LINE_BYTES": "8MiB"},
			want: &want{maxLine: 8 << 20, segment: 8 << 20, deadLetter: 64 << 20}},
		"smallest line":              {env: map[string]string{"SKIFF_MAX_LINE_BYTES": "1KiB"}},
		"smallest segment":           {env: map[string]string{"SKIFF_BUFFER_SEGMENT_BYTES": "64KiB"}},
		"largest segment":            {env: map[string]string{"SKIFF_BUFFER_SEGMENT_BYTES": "128MiB"}},
		"smallest dead-letter bound": {env: map[string]string{"SKIFF_DEAD_LETTER_MAX_BYTES": "1KiB"}},
		"shortest shutdown": {env: map[string]string{"SKIFF_SHUTDOWN_TIMEOUT": "1ms"},
			want: &want{quiet: 250 * time.Microsecond}},
		"shortest possible shutdown": {env: map[string]string{"SKIFF_SHUTDOWN_TIMEOUT": "1ns"}},
		"long http backoff": {env: map[string]string{"SKIFF_HTTP_BACKOFF_MIN": "5m"},
			want: &want{httpBackoffMax: 5 * time.Minute, httpFirstMinute: 5 * time.Minute}},
		"long kafka backoff":            {env: map[string]string{"SKIFF_KAFKA_BACKOFF_MIN": "5m"}},
		"smallest kafka message":        {env: map[string]string{"SKIFF_KAFKA_MESSAGE_MAX_BYTES": "1KiB"}},
		"smallest kafka batch":          {env: map[string]string{"SKIFF_KAFKA_BATCH_MAX_BYTES": "1KiB"}},
		"smallest http batch":           {env: map[string]string{"SKIFF_HTTP_BATCH_MAX_BYTES": "1KiB"}},
		"shortest http timeout":         {env: map[string]string{"SKIFF_HTTP_TIMEOUT": "1ns"}},
		"shortest kafka timeout":        {env: map[string]string{"SKIFF_KAFKA_TIMEOUT": "1ns"}},
		"long http linger":              {env: map[string]string{"SKIFF_HTTP_LINGER": "1h"}},
		"long kafka linger":             {env: map[string]string{"SKIFF_KAFKA_LINGER": "1h"}},
		"shortest stall timeout":        {env: map[string]string{"SKIFF_STALL_TIMEOUT": "1ns"}},
		"shortest first-minute backoff": {env: map[string]string{"SKIFF_HTTP_BACKOFF_FIRST_MINUTE_MAX": "1ns", "SKIFF_HTTP_BACKOFF_MIN": "1ns"}},
		"long first-minute backoff": {env: map[string]string{"SKIFF_HTTP_BACKOFF_FIRST_MINUTE_MAX": "1m"},
			want: &want{httpBackoffMax: time.Minute, httpFirstMinute: time.Minute}},
		"short http backoff max": {env: map[string]string{"SKIFF_HTTP_BACKOFF_MAX": "1s"},
			want: &want{httpBackoffMax: time.Second, httpFirstMinute: time.Second}},
		"shortest kafka backoff max": {env: map[string]string{"SKIFF_KAFKA_BACKOFF_MAX": "100ms"}},
		"long scan interval":         {env: map[string]string{"SKIFF_SCAN_INTERVAL": "24h"}},
		"shortest close inactive":    {env: map[string]string{"SKIFF_CLOSE_INACTIVE": "1ns"}},
		"one multiline line":         {env: map[string]string{"SKIFF_MULTILINE_MAX_LINES": "1"}},
		"shortest multiline wait":    {env: map[string]string{"SKIFF_MULTILINE_TIMEOUT": "1ns"}},
		"shortest fsync interval":    {env: map[string]string{"SKIFF_BUFFER_FSYNC_INTERVAL": "1ns"}},
		"smallest deleted hold":      {env: map[string]string{"SKIFF_DELETED_HOLD_BYTES": "1"}},
		"shortest deleted hold":      {env: map[string]string{"SKIFF_DELETED_HOLD_TIME": "1ns"}},
		"drop newest when full":      {env: map[string]string{"SKIFF_BUFFER_WHEN_FULL": "drop_newest"}},
		"fsync every batch":          {env: map[string]string{"SKIFF_BUFFER_FSYNC": "batch"}},
		"largest http concurrency":   {env: map[string]string{"SKIFF_HTTP_CONCURRENCY": "64"}},
		"one kafka record a batch":   {env: map[string]string{"SKIFF_KAFKA_BATCH_MAX_RECORDS": "1"}},
	} {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{
				"SKIFF_PATHS": "/logs/*.log", "SKIFF_DATA_DIR": t.TempDir(), "SKIFF_SINKS": "stdout,http,kafka",
				"SKIFF_HTTP_URL": "http://logs.example:8080/ingest", "SKIFF_KAFKA_BROKERS": "kafka:9092", "SKIFF_KAFKA_TOPIC": "logs",
			}
			for k, v := range tc.env {
				env[k] = v
			}
			setenv(t, env)
			c, err := Load()
			if err != nil {
				t.Fatalf("%v with every other variable at its default:\n%s", tc.env, strings.Join(problems(t, err), "\n"))
			}
			w := tc.want
			if w == nil {
				return
			}
			if w.maxLine != 0 && c.MaxLineBytes != w.maxLine {
				t.Errorf("MAX_LINE_BYTES = %s, want %s", c.MaxLineBytes, w.maxLine)
			}
			if w.segment != 0 && c.BufferSegmentBytes != w.segment {
				t.Errorf("BUFFER_SEGMENT_BYTES = %s, want %s", c.BufferSegmentBytes, w.segment)
			}
			if w.deadLetter != 0 && c.DeadLetterMaxBytes != w.deadLetter {
				t.Errorf("DEAD_LETTER_MAX_BYTES = %s, want %s", c.DeadLetterMaxBytes, w.deadLetter)
			}
			if w.quiet != 0 && c.ShutdownQuiet != w.quiet {
				t.Errorf("SHUTDOWN_QUIET = %s, want %s", c.ShutdownQuiet, w.quiet)
			}
			if w.httpFirstMinute != 0 && c.SinkList[1].HTTP.BackoffFirstMinuteMax != w.httpFirstMinute {
				t.Errorf("HTTP_BACKOFF_FIRST_MINUTE_MAX = %s, want %s", c.SinkList[1].HTTP.BackoffFirstMinuteMax, w.httpFirstMinute)
			}
			if w.httpBackoffMax != 0 && c.SinkList[1].HTTP.BackoffMax != w.httpBackoffMax {
				t.Errorf("HTTP_BACKOFF_MAX = %s, want %s", c.SinkList[1].HTTP.BackoffMax, w.httpBackoffMax)
			}
		})
	}
}

// TestExplicitValuesStay: a variable the user set is never moved by
// derive; a contradiction between two set values is reported.
func TestExplicitValuesStay(t *testing.T) {
	setenv(t, map[string]string{
		"SKIFF_PATHS": "/logs/*.log", "SKIFF_DATA_DIR": t.TempDir(), "SKIFF_SINKS": "http",
		"SKIFF_HTTP_URL": "http://h/x", "SKIFF_BUFFER_MAX_BYTES": "4MiB", "SKIFF_MAX_LINE_BYTES": "512KiB",
		"SKIFF_DEAD_LETTER_MAX_BYTES": "1MiB", "SKIFF_SHUTDOWN_QUIET": "3s", "SKIFF_HTTP_BACKOFF_MIN": "1s", "SKIFF_HTTP_BACKOFF_MAX": "2s",
	})
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxLineBytes != 512<<10 || c.DeadLetterMaxBytes != 1<<20 || c.ShutdownQuiet != 3*time.Second || c.SinkList[0].HTTP.BackoffMax != 2*time.Second {
		t.Fatalf("explicit values moved: line %s, dead letters %s, quiet %s, backoff max %s", c.MaxLineBytes, c.DeadLetterMaxBytes, c.ShutdownQuiet, c.SinkList[0].HTTP.BackoffMax)
	}
	t.Setenv("SKIFF_HTTP_BACKOFF_MAX", "500ms")
	if _, err := Load(); err == nil || !strings.Contains(err.Error(), "SKIFF_HTTP_BACKOFF_MAX: 500ms is not accepted") {
		t.Fatalf("BACKOFF_MAX below an explicit BACKOFF_MIN: %v", err)
	}
}

// TestCheckShowsDerivedValues: Effective (what skiff check prints) holds
// the values in effect, not the tags' defaults.
func TestCheckShowsDerivedValues(t *testing.T) {
	setenv(t, map[string]string{"SKIFF_PATHS": "/logs/*.log", "SKIFF_DATA_DIR": t.TempDir(), "SKIFF_BUFFER_MAX_BYTES": "2MiB"})
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range Effective(c) {
		got[s.Name] = s.Value
	}
	for k, v := range map[string]string{"SKIFF_MAX_LINE_BYTES": "512KiB", "SKIFF_BUFFER_SEGMENT_BYTES": "256KiB", "SKIFF_SHUTDOWN_QUIET": "1s"} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}
