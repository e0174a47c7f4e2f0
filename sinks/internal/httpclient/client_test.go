package httpclient

import (
	nethttp "net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/redact"
	"github.com/skiff-dev/skiff/sinks"
)

func TestRetryAfterParse(t *testing.T) {
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		v    string
		want time.Duration
	}{
		"seconds":   {"120", 2 * time.Minute},
		"zero":      {"0", 0},
		"negative":  {"-5", 0},
		"date":      {"Fri, 27 Nov 2026 09:00:30 GMT", 30 * time.Second},
		"past date": {"Fri, 27 Nov 2026 08:00:00 GMT", 0},
		"garbage":   {"soon", 0},
		"huge":      {"99999999999", sinks.MaxRetryAfter},
		"empty":     {"", 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := RetryAfter(tc.v, now); got != tc.want {
				t.Errorf("RetryAfter(%q) = %v, want %v", tc.v, got, tc.want)
			}
		})
	}
}

// TestClassify: every kind of answer gets the verdict Classify documents,
// in its order (RETRYABLE_STATUS before auth and rejection).
func TestClassify(t *testing.T) {
	c, err := New(Options{Name: "x", RetryableStatus: []int{408, 429, 404}})
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		status     int
		retryAfter string
		kind       string // "" with rejected false: delivered
		rejected   bool
		wait       time.Duration
	}{
		"200":                {status: 200},
		"204":                {status: 204},
		"500":                {status: 500, kind: sinks.KindServer},
		"599":                {status: 599, kind: sinks.KindServer},
		"429":                {status: 429, kind: sinks.KindThrottled},
		"429 retry-after":    {status: 429, retryAfter: "7", kind: sinks.KindThrottled, wait: 7 * time.Second},
		"503":                {status: 503, kind: sinks.KindServer},
		"503 retry-after":    {status: 503, retryAfter: "3", kind: sinks.KindThrottled, wait: 3 * time.Second},
		"502 retry-after":    {status: 502, retryAfter: "3", kind: sinks.KindServer},
		"408":                {status: 408, kind: sinks.KindTimeout},
		"401":                {status: 401, kind: sinks.KindAuth},
		"403":                {status: 403, kind: sinks.KindAuth},
		"404 made retryable": {status: 404, kind: sinks.KindServer},
		"302":                {status: 302, kind: sinks.KindAuth},
		"400":                {status: 400, rejected: true},
		"413":                {status: 413, rejected: true},
		"422":                {status: 422, rejected: true},
		"999":                {status: 999, kind: sinks.KindServer},
		"100":                {status: 100, kind: sinks.KindServer},
		"negative":           {status: -1, kind: sinks.KindServer},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := &Response{Status: tc.status, Header: nethttp.Header{}}
			if tc.retryAfter != "" {
				r.Header.Set("Retry-After", tc.retryAfter)
			}
			se, rejected := c.Classify(r)
			if rejected != tc.rejected {
				t.Fatalf("rejected = %v, want %v", rejected, tc.rejected)
			}
			switch {
			case tc.kind == "" && se != nil:
				t.Fatalf("Classify = %v, want no error", se)
			case tc.kind != "" && (se == nil || se.Kind != tc.kind):
				t.Fatalf("Classify = %v, want kind %s", se, tc.kind)
			case se != nil && se.RetryAfter != tc.wait:
				t.Fatalf("RetryAfter = %v, want %v", se.RetryAfter, tc.wait)
			}
		})
	}
}

// TestAnswerBodyIsDetail: what an error answer's body says (Elasticsearch
// and Loki echo documents) goes into Detail and the dead-letter reason,
// never into the error, which /status and info-level logs show.
func TestAnswerBodyIsDetail(t *testing.T) {
	c, err := New(Options{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	const body = `{"error":"failed to parse document {\"message\":\"password=hunter2\"}"}`
	for _, st := range []int{400, 401, 404, 500, 503, 302} {
		r := &Response{Status: st, Header: nethttp.Header{"Location": {"https://h/x?token=abc123"}}, Body: []byte(body)}
		se, rejected := c.Classify(r)
		if rejected {
			if !strings.Contains(r.Reason(), "hunter2") || strings.Contains(r.Err().Error(), "hunter2") {
				t.Errorf("%d: reason %q, error %q", st, r.Reason(), r.Err())
			}
			continue
		}
		if strings.Contains(se.Error(), "hunter2") || strings.Contains(se.Error(), "abc123") || !strings.Contains(se.Detail, "hunter2") {
			t.Errorf("%d: error %q, detail %q", st, se.Error(), se.Detail)
		}
	}
}

// TestSecretsAreLearned: the values read from the secret files reach
// Options.Secrets (rotations too: internal/secret's TestOnChange).
func TestSecretsAreLearned(t *testing.T) {
	dir := t.TempDir()
	tok, hdr := filepath.Join(dir, "token"), filepath.Join(dir, "header")
	if err := os.WriteFile(tok, []byte("first-token-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hdr, []byte("header-secret-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var sec redact.Secrets
	if _, err := New(Options{Name: "x", Auth: "bearer", TokenFile: tok, Headers: []string{"X-Key=@" + hdr}, Secrets: &sec}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"first-token-value", "header-secret-value"} {
		if got := sec.String(v); got != redact.Mask {
			t.Errorf("%s not learned: %q", v, got)
		}
	}
}

// TestClassifyListedOnly: with ListedOnly (OTLP/HTTP), only the listed
// statuses are retried; any other 5xx is refused like a 4xx, and the
// configuration errors (401, 403, 404, redirects) are still retried.
func TestClassifyListedOnly(t *testing.T) {
	c, err := New(Options{Name: "x", RetryableStatus: []int{429, 502, 503, 504}, ListedOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	for st, want := range map[int]struct {
		kind     string
		rejected bool
	}{
		200: {}, 429: {kind: sinks.KindThrottled}, 502: {kind: sinks.KindServer}, 503: {kind: sinks.KindServer}, 504: {kind: sinks.KindServer},
		500: {rejected: true}, 501: {rejected: true}, 599: {rejected: true}, 400: {rejected: true}, 408: {rejected: true}, 413: {rejected: true},
		401: {kind: sinks.KindAuth}, 404: {kind: sinks.KindAuth}, 307: {kind: sinks.KindAuth}, 999: {kind: sinks.KindServer},
	} {
		se, rejected := c.Classify(&Response{Status: st, Header: nethttp.Header{}})
		if rejected != want.rejected || (se == nil) != (want.kind == "") || (se != nil && se.Kind != want.kind) {
			t.Errorf("Classify(%d) = %v, %v; want kind %q, rejected %v", st, se, rejected, want.kind, want.rejected)
		}
	}
}
