package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func validHTTP() HTTP {
	h := HTTP{}
	h.URL = "https://logs.example.com/ingest"
	h.Format, h.Compression, h.Auth, h.LokiLine = "ndjson", "none", "none", "message"
	h.Timeout, h.BackoffMin, h.BackoffMax, h.BackoffFirstMinuteMax, h.RetryAfterMax = 10e9, 1e8, 4e9, 15e8, 60e9
	h.Linger, h.BatchMaxBytes, h.BatchMaxRecords, h.Concurrency = 1e9, 1<<20, 2000, 2
	h.RetryableStatus = []int{408, 429, 500, 502, 503, 504}
	h.BreakerFailures, h.ESIndex = 5, "skiff"
	h.LokiLabels = []string{"job=static:skiff", "namespace=kubernetes.namespace"}
	return h
}

func TestHTTPValidate(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		edit func(*HTTP)
		want []string // substrings, one problem each
	}{
		"valid":          {edit: func(h *HTTP) {}},
		"valid bearer":   {edit: func(h *HTTP) { h.Auth, h.TokenFile = "bearer", token }},
		"valid basic":    {edit: func(h *HTTP) { h.Auth, h.Username, h.Password = "basic", "u", "p" }},
		"valid loki":     {edit: func(h *HTTP) { h.Format = "loki" }},
		"valid es":       {edit: func(h *HTTP) { h.Format = "elasticsearch"; h.ESIndex = "logs-app" }},
		"valid headers":  {edit: func(h *HTTP) { h.Headers = []string{"X-Scope-OrgID=tenant1", "X-Key=@" + token} }},
		"bad url":        {edit: func(h *HTTP) { h.URL = "ftp://x" }, want: []string{"SKIFF_HTTP_URL"}},
		"no host":        {edit: func(h *HTTP) { h.URL = "http://" }, want: []string{"SKIFF_HTTP_URL"}},
		"bad format":     {edit: func(h *HTTP) { h.Format = "xml" }, want: []string{`SKIFF_HTTP_FORMAT: "xml" is not accepted (accepted: ndjson, json, loki, elasticsearch)`}},
		"bad compress":   {edit: func(h *HTTP) { h.Compression = "zstd" }, want: []string{"SKIFF_HTTP_COMPRESSION"}},
		"basic no user":  {edit: func(h *HTTP) { h.Auth = "basic" }, want: []string{"SKIFF_HTTP_USERNAME", "SKIFF_HTTP_PASSWORD"}},
		"both tokens":    {edit: func(h *HTTP) { h.Auth, h.Token, h.TokenFile = "bearer", "x", token }, want: []string{"SKIFF_HTTP_TOKEN: set exactly one"}},
		"token, no auth": {edit: func(h *HTTP) { h.Token = "x" }, want: []string{"SKIFF_HTTP_AUTH"}},
		"missing file":   {edit: func(h *HTTP) { h.Auth, h.TokenFile = "bearer", "/nonexistent/token" }, want: []string{"SKIFF_HTTP_TOKEN_FILE"}},
		"bad header":     {edit: func(h *HTTP) { h.Headers = []string{"no value", "Content-Length=3", "X=@/nonexistent"} }, want: []string{"SKIFF_HTTP_HEADERS", "SKIFF_HTTP_HEADERS: \"Content-Length=…\"", "header X"}},
		"bad ca":         {edit: func(h *HTTP) { h.CAFile = token }, want: []string{"SKIFF_HTTP_CA_FILE"}},
		"cert no key":    {edit: func(h *HTTP) { h.CertFile = token }, want: []string{"SKIFF_HTTP_CERT_FILE"}},
		"ranges": {edit: func(h *HTTP) {
			h.Timeout, h.BackoffMax, h.Linger, h.BatchMaxBytes, h.BatchMaxRecords, h.Concurrency = 0, 1, -1, 10, 0, 100
			h.BreakerFailures, h.RetryableStatus = -1, []int{42}
		}, want: []string{"TIMEOUT", "BACKOFF_MAX", "LINGER", "BATCH_MAX_BYTES", "BATCH_MAX_RECORDS", "CONCURRENCY", "BREAKER_FAILURES", "RETRYABLE_STATUS: 42"}},
		"bad es index":      {edit: func(h *HTTP) { h.Format, h.ESIndex = "elasticsearch", "Logs" }, want: []string{"SKIFF_HTTP_ES_INDEX"}},
		"es api key header": {edit: func(h *HTTP) { h.Headers = []string{"Authorization=ApiKey abc"} }},
		"auth twice": {edit: func(h *HTTP) {
			h.Auth, h.Token, h.Headers = "bearer", "t", []string{"authorization=@" + token}
		}, want: []string{"SKIFF_HTTP_HEADERS: an Authorization header conflicts"}},
		"loki label twice": {edit: func(h *HTTP) { h.Format, h.LokiLabels = "loki", []string{"a=path", "a=filename"} }, want: []string{"label a is given twice"}},
		"bad loki labels": {edit: func(h *HTTP) {
			h.Format, h.LokiLabels = "loki", []string{"1bad=path", "ok=nothing", "__name__=path"}
		}, want: []string{"1bad=path", "unknown source", "__name__"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := validHTTP()
			tc.edit(&h)
			ps := h.Validate("SKIFF_HTTP_")
			if len(ps) != len(tc.want) {
				t.Fatalf("got %d problems, want %d: %v", len(ps), len(tc.want), ps)
			}
			for i, w := range tc.want {
				if !strings.Contains(ps[i].Error(), w) {
					t.Errorf("problem %d = %q, want it to mention %q", i, ps[i], w)
				}
			}
		})
	}
}

func TestHTTPDefaultsValid(t *testing.T) {
	t.Setenv("SKIFF_HTTP_URL", "http://localhost:3100")
	h := &HTTP{}
	if ps := process("SKIFF_HTTP", h, nil); len(ps) > 0 {
		t.Fatal(ps)
	}
	if ps := h.Validate("SKIFF_HTTP_"); len(ps) > 0 {
		t.Fatal(ps)
	}
	for _, f := range []string{"loki", "elasticsearch", "json"} {
		h.Format = f
		if ps := h.Validate("SKIFF_HTTP_"); len(ps) > 0 {
			t.Errorf("format %s with defaults: %v", f, ps)
		}
	}
	if len(h.LokiLabels) != 3 || len(h.RetryableStatus) != 6 {
		t.Errorf("defaults not split: %q %v", h.LokiLabels, h.RetryableStatus)
	}
}
