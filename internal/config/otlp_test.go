package config

import (
	"fmt"
	"strings"
	"testing"
)

// TestOTLPSink: `otlp` in SINKS reads SKIFF_<NAME>_*, with the shared
// client settings, OTLP's own defaults (protobuf, gzip, the retryable
// statuses OTLP/HTTP lists) and its checks.
func TestOTLPSink(t *testing.T) {
	setenv(t, map[string]string{
		"SKIFF_PATHS":       "/var/log/app/*.log",
		"SKIFF_DATA_DIR":    t.TempDir(),
		"SKIFF_SINKS":       "otlp,grafana:otlp",
		"SKIFF_OTLP_URL":    "http://collector:4318",
		"SKIFF_GRAFANA_URL": "https://otlp.example.com/otlp/v1/logs", "SKIFF_GRAFANA_AUTH": "basic",
		"SKIFF_GRAFANA_USERNAME": "123", "SKIFF_GRAFANA_PASSWORD": "glc_x", "SKIFF_GRAFANA_ENCODING": "json",
	})
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	o, g := c.SinkList[0].OTLP, c.SinkList[1].OTLP
	if o == nil || g == nil {
		t.Fatalf("sinks %+v", c.SinkList)
	}
	if o.Encoding != "protobuf" || o.Compression != "gzip" || fmt.Sprint(o.RetryableStatus) != "[429 502 503 504]" ||
		o.BatchMaxRecords != 2000 || o.SeverityNumbers != "syslog" {
		t.Errorf("defaults: %+v", o)
	}
	if g.Encoding != "json" || g.Password != "glc_x" {
		t.Errorf("grafana: %+v", g)
	}
	for _, s := range Effective(c) {
		if s.Name == "SKIFF_GRAFANA_PASSWORD" && s.Value == "glc_x" {
			t.Error("the password of an OTLP sink is shown")
		}
	}

	setenv(t, map[string]string{
		"SKIFF_PATHS": "/var/log/app/*.log", "SKIFF_DATA_DIR": t.TempDir(), "SKIFF_SINKS": "otlp",
		"SKIFF_OTLP_URL": "collector:4318", "SKIFF_OTLP_ENCODING": "proto", "SKIFF_OTLP_COMPRESSION": "zstd",
		"SKIFF_OTLP_SEVERITY_FIELD": "level", "SKIFF_OTLP_SEVERITY_NUMBERS": "pino", "SKIFF_OTLP_RETRYABLE_STATUS": "429,700",
	})
	_, err = Load()
	got := strings.Join(problems(t, err), "\n")
	for _, want := range []string{
		`SKIFF_OTLP_URL: "collector:4318" is not accepted`,
		`SKIFF_OTLP_ENCODING: "proto" is not accepted (accepted: protobuf, json)`,
		`SKIFF_OTLP_COMPRESSION: "zstd" is not accepted (accepted: gzip, none)`,
		`SKIFF_OTLP_SEVERITY_NUMBERS: "pino" is not accepted (accepted: syslog, otel, bunyan)`,
		`SKIFF_OTLP_RETRYABLE_STATUS: 700 is not accepted`,
		`SKIFF_OTLP_SEVERITY_FIELD: "level" needs JSON records`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problem %q not reported; got:\n%s", want, got)
		}
	}
}
