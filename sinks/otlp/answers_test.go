package otlp

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	nethttp "net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"go.uber.org/goleak"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/skiff-dev/skiff/internal/config"
	"github.com/skiff-dev/skiff/internal/record"
	"github.com/skiff-dev/skiff/sinks"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// secretLine is log content that an endpoint's answer quotes back: it must
// never reach an error (which /status shows) or a log line above debug;
// dead-letter reasons and SendError.Detail keep it (logged at debug only).
const secretLine = "card=4111111111111111"

// statusBody is a google.rpc.Status answer body quoting the records.
func statusBody(t *testing.T) []byte {
	b, err := proto.Marshal(&statuspb.Status{Code: 3, Message: "invalid record: " + secretLine})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// messages returns the bodies of the log records of req, in order.
func messages(req *collogspb.ExportLogsServiceRequest) []string {
	var out []string
	for _, rl := range req.ResourceLogs {
		for _, sl := range rl.ScopeLogs {
			for _, lr := range sl.LogRecords {
				out = append(out, lr.GetBody().GetStringValue())
			}
		}
	}
	return out
}

func lines(msgs ...string) []record.Record {
	recs := make([]record.Record, len(msgs))
	for i, m := range msgs {
		recs[i] = fileRecord(int64(i*100), m, 0)
	}
	return recs
}

type sinkRun struct {
	s    *Sink
	dl   *deadLetters
	reg  *prometheus.Registry
	logs *bytes.Buffer
}

func newSink(t *testing.T, url string, edit func(*config.OTLP)) *sinkRun {
	t.Helper()
	cfg := testConfig(url)
	if edit != nil {
		edit(&cfg)
	}
	r := &sinkRun{dl: &deadLetters{}, reg: prometheus.NewRegistry(), logs: &bytes.Buffer{}}
	log := slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := New("otlp", cfg, sinks.Deps{Encoder: testEncoder(), DeadLetters: r.dl, Registerer: r.reg, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	r.s = s
	return r
}

// noSecrets fails if an answer's body reached the error or the logs
// above debug level.
func (r *sinkRun) noSecrets(t *testing.T, err error) {
	t.Helper()
	var all []string
	if err != nil {
		all = append(all, err.Error())
	}
	all = append(all, r.logs.String())
	for _, s := range all {
		if strings.Contains(s, secretLine) || strings.Contains(s, "invalid record") {
			t.Errorf("an answer's body leaked: %q", s)
		}
	}
}

// TestAnswers: every answer OTLP/HTTP defines, and what skiff does with it.
func TestAnswers(t *testing.T) {
	tests := map[string]struct {
		status     int
		retryAfter string
		kind       string        // "": Send succeeds
		wait       time.Duration // RetryAfter of the error
		deadLetter bool          // the whole batch is dead-lettered in one request
	}{
		"429 with Retry-After": {status: 429, retryAfter: "7", kind: sinks.KindThrottled, wait: 7 * time.Second},
		"429 without":          {status: 429, kind: sinks.KindThrottled},
		"503 with Retry-After": {status: 503, retryAfter: "3", kind: sinks.KindThrottled, wait: 3 * time.Second},
		"503 without":          {status: 503, kind: sinks.KindServer},
		"502":                  {status: 502, kind: sinks.KindServer},
		"504":                  {status: 504, kind: sinks.KindServer},
		"401":                  {status: 401, kind: sinks.KindAuth},
		"403":                  {status: 403, kind: sinks.KindAuth},
		"404":                  {status: 404, kind: sinks.KindAuth},
		"500 is not retryable": {status: 500, deadLetter: true},
		"501 is not retryable": {status: 501, deadLetter: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := newCollector(t)
			c.setAnswer(func(_ int, _ *collogspb.ExportLogsServiceRequest, w nethttp.ResponseWriter) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.Header().Set("Content-Type", "application/x-protobuf")
				w.WriteHeader(tc.status)
				w.Write(statusBody(t))
			})
			r := newSink(t, c.srv.URL, nil)
			b := &sinks.Batch{Records: lines("a", "b", "c")}
			err := r.s.Send(context.Background(), b)
			r.noSecrets(t, err)
			if tc.kind == "" {
				if err != nil {
					t.Fatalf("Send = %v", err)
				}
				if n := len(c.received()); tc.deadLetter && n != 1 {
					t.Errorf("%d requests: a server error is not the data's fault, the batch is dead-lettered whole", n)
				}
				if got := joined(r.dl.messages()); tc.deadLetter && got != "a|b|c" {
					t.Errorf("dead-lettered %q, want a|b|c", got)
				}
				if tc.deadLetter && (len(r.dl.reasons) != 1 || !strings.Contains(r.dl.reasons[0], "(not retryable under OTLP/HTTP): invalid record: "+secretLine)) {
					t.Errorf("reasons %q: want the status and what the google.rpc.Status says", r.dl.reasons)
				}
				return
			}
			var se *sinks.SendError
			if !errors.As(err, &se) || se.Kind != tc.kind || se.RetryAfter != tc.wait {
				t.Fatalf("Send = %#v, want kind %s, RetryAfter %v", err, tc.kind, tc.wait)
			}
			if se.Detail != "invalid record: "+secretLine {
				t.Errorf("Detail %q: want the google.rpc.Status message", se.Detail)
			}
			if len(b.Records) != 3 || len(r.dl.recs) != 0 {
				t.Fatalf("kept %d records, dead-lettered %d: a retryable answer keeps them all", len(b.Records), len(r.dl.recs))
			}
		})
	}
}

// TestBadRequestDeadLettersOnlyTheBadRecords: 400 is not retried; the
// batch is halved until the records the endpoint refuses are alone, and
// only those are dead-lettered, with what the answer's google.rpc.Status
// says in the reason.
func TestBadRequestDeadLettersOnlyTheBadRecords(t *testing.T) {
	c := newCollector(t)
	c.setAnswer(func(_ int, req *collogspb.ExportLogsServiceRequest, w nethttp.ResponseWriter) {
		for _, m := range messages(req) {
			if strings.HasPrefix(m, "bad") {
				w.WriteHeader(400)
				w.Write(statusBody(t))
				return
			}
		}
	})
	r := newSink(t, c.srv.URL, nil)
	err := r.s.Send(context.Background(), &sinks.Batch{Records: lines("a", "b", "bad1", "c", "d", "e", "bad2", "f")})
	if err != nil {
		t.Fatal(err)
	}
	r.noSecrets(t, err)
	if got := joined(r.dl.messages()); got != "bad1|bad2" {
		t.Fatalf("dead-lettered %q, want bad1|bad2", got)
	}
	var delivered []string
	for _, rq := range c.received() {
		if m := messages(rq.req); !strings.Contains(joined(m), "bad") {
			delivered = append(delivered, m...)
		}
	}
	if got := joined(delivered); got != "a|b|c|d|e|f" {
		t.Fatalf("delivered %q", got)
	}
	for _, reason := range r.dl.reasons {
		if reason != "otlp http 400 Bad Request: invalid record: "+secretLine {
			t.Errorf("reason %q", reason)
		}
	}
}

// TestPartialSuccess: a 200 with partial_success is delivered (OTLP
// forbids a retry, and which records were rejected cannot be known); the
// count is logged and counted, the message only at debug level.
func TestPartialSuccess(t *testing.T) {
	for _, encoding := range []string{"protobuf", "json"} {
		t.Run(encoding, func(t *testing.T) {
			c := newCollector(t)
			c.setAnswer(func(_ int, _ *collogspb.ExportLogsServiceRequest, w nethttp.ResponseWriter) {
				if encoding == "json" {
					w.Header().Set("Content-Type", "application/json")
					w.Write([]byte(`{"partialSuccess":{"rejectedLogRecords":"2","errorMessage":"too old: ` + secretLine + `"}}`))
					return
				}
				b, _ := proto.Marshal(&collogspb.ExportLogsServiceResponse{PartialSuccess: &collogspb.ExportLogsPartialSuccess{
					RejectedLogRecords: 2, ErrorMessage: "too old: " + secretLine}})
				w.Header().Set("Content-Type", "application/x-protobuf")
				w.Write(b)
			})
			r := newSink(t, c.srv.URL, func(o *config.OTLP) { o.Encoding = encoding })
			b := &sinks.Batch{Records: lines("a", "b", "c")}
			if err := r.s.Send(context.Background(), b); err != nil {
				t.Fatal(err)
			}
			if n := len(c.received()); n != 1 {
				t.Errorf("%d requests: a partial success must not be retried", n)
			}
			if len(r.dl.recs) != 0 {
				t.Errorf("dead-lettered %d records: which were rejected is unknown", len(r.dl.recs))
			}
			if v := testutil.ToFloat64(r.s.partial); v != 2 {
				t.Errorf("skiff_sink_otlp_rejected_records_total = %v, want 2", v)
			}
			if !strings.Contains(r.logs.String(), "rejected=2") {
				t.Errorf("the rejected count is not logged:\n%s", r.logs)
			}
			if strings.Contains(r.logs.String(), secretLine) {
				t.Errorf("error_message logged above debug:\n%s", r.logs)
			}
		})
	}
}

// TestGzipOnTheWire: the body is gzipped by default (Content-Encoding,
// and a gzip stream on the wire) and plain with COMPRESSION=none; the
// Content-Type follows the encoding.
func TestGzipOnTheWire(t *testing.T) {
	for _, tc := range []struct {
		compression, encoding, ctype string
		gzip                         bool
	}{
		{"gzip", "protobuf", "application/x-protobuf", true},
		{"none", "protobuf", "application/x-protobuf", false},
		{"gzip", "json", "application/json", true},
		{"none", "json", "application/json", false},
	} {
		c := newCollector(t)
		r := newSink(t, c.srv.URL+"/otlp/v1/logs", func(o *config.OTLP) { o.Compression, o.Encoding = tc.compression, tc.encoding })
		if err := r.s.Send(context.Background(), &sinks.Batch{Records: lines(strings.Repeat("compressible ", 100))}); err != nil {
			t.Fatal(err)
		}
		got := c.received()[0]
		isGzip := bytes.HasPrefix(got.wire, []byte{0x1f, 0x8b})
		if isGzip != tc.gzip || (got.encoding == "gzip") != tc.gzip || got.contentType != tc.ctype {
			t.Errorf("%s/%s: gzip stream %v, Content-Encoding %q, Content-Type %q", tc.compression, tc.encoding, isGzip, got.encoding, got.contentType)
		}
		if tc.gzip && len(got.wire) >= len(got.raw)/2 {
			t.Errorf("%s/%s: %d bytes on the wire for %d", tc.compression, tc.encoding, len(got.wire), len(got.raw))
		}
		if got.path != "/otlp/v1/logs" {
			t.Errorf("path %q: a URL with a path is used as given", got.path)
		}
	}
}

// TestJSONEncoding checks what the OTLP JSON mapping asks beyond what
// protojson checks: 64-bit integers as strings, enums as numbers, trace
// and span IDs in hex.
func TestJSONEncoding(t *testing.T) {
	c := newCollector(t)
	r := newSink(t, c.srv.URL, func(o *config.OTLP) { o.Encoding, o.Compression = "json", "none" })
	recs, _, _, _ := mappingRecords(t)
	if err := r.s.Send(context.Background(), &sinks.Batch{Records: recs}); err != nil {
		t.Fatal(err)
	}
	var v struct {
		ResourceLogs []struct {
			ScopeLogs []struct {
				LogRecords []map[string]any `json:"logRecords"`
			} `json:"scopeLogs"`
		} `json:"resourceLogs"`
	}
	raw := c.received()[0].raw
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	own := v.ResourceLogs[0].ScopeLogs[0].LogRecords[0]
	if _, ok := own["observedTimeUnixNano"].(string); !ok {
		t.Errorf("observedTimeUnixNano = %#v, want a string", own["observedTimeUnixNano"])
	}
	in := v.ResourceLogs[1].ScopeLogs[0].LogRecords[0]
	if in["traceId"] != hex.EncodeToString([]byte("0123456789abcdef")) || in["spanId"] != hex.EncodeToString([]byte("01234567")) {
		t.Errorf("traceId %v, spanId %v: want hex", in["traceId"], in["spanId"])
	}
	if in["severityNumber"] != 17.0 || in["timeUnixNano"] != "1" {
		t.Errorf("severityNumber %#v, timeUnixNano %#v", in["severityNumber"], in["timeUnixNano"])
	}
	if !bytes.Contains(raw, []byte(`{"key":"order.id","value":{"intValue":"7"}}`)) || !bytes.Contains(raw, []byte(`{"key":"skiff.offset","value":{"intValue":"4096"}}`)) {
		t.Errorf("int values are not strings: %s", raw)
	}
}

// TestEndpoint: a bare base URL gets /v1/logs, any other is used as given.
func TestEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"http://collector:4318":                 "http://collector:4318/v1/logs",
		"http://collector:4318/":                "http://collector:4318/v1/logs",
		"https://otlp.example.com/otlp/v1/logs": "https://otlp.example.com/otlp/v1/logs",
		"http://c:4318/custom?tenant=a":         "http://c:4318/custom?tenant=a",
	} {
		if got, err := endpoint(in); err != nil || got != want {
			t.Errorf("endpoint(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestClientSettings: the HTTP sink's credentials and headers apply (the
// shared client): a bearer token and a tenant header reach the endpoint.
func TestClientSettings(t *testing.T) {
	c := newCollector(t)
	var auth, tenant string
	c.setAnswer(func(_ int, _ *collogspb.ExportLogsServiceRequest, w nethttp.ResponseWriter) {})
	inner := c.srv.Config.Handler
	c.srv.Config.Handler = nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		auth, tenant = r.Header.Get("Authorization"), r.Header.Get("X-Scope-OrgID")
		inner.ServeHTTP(w, r)
	})
	r := newSink(t, c.srv.URL, func(o *config.OTLP) {
		o.Auth, o.Token, o.Headers = "bearer", "t0ken", []string{"X-Scope-OrgID=tenant-1"}
	})
	if err := r.s.Send(context.Background(), &sinks.Batch{Records: lines("a")}); err != nil {
		t.Fatal(err)
	}
	if auth != "Bearer t0ken" || tenant != "tenant-1" {
		t.Errorf("Authorization %q, X-Scope-OrgID %q", auth, tenant)
	}
}
