package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/proto"
)

// ingestEnv is a skiff that only listens (no SKIFF_PATHS).
func ingestEnv(data, addr string) map[string]string {
	env := baseEnv(data)
	delete(env, "SKIFF_PATHS")
	env["SKIFF_INGEST_ADDR"] = addr
	return env
}

// jsonSink is an HTTP endpoint that keeps every ndjson record skiff ships,
// decoded, and can refuse requests for a while.
type jsonSink struct {
	srv     *httptest.Server
	refuse  atomic.Bool // answer 503
	mu      sync.Mutex
	records []map[string]any
}

func newJSONSink(t *testing.T) *jsonSink {
	s := &jsonSink{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.refuse.Load() {
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		sc := bufio.NewScanner(r.Body)
		sc.Buffer(make([]byte, 64<<10), 32<<20)
		var batch []map[string]any
		for sc.Scan() {
			d := json.NewDecoder(bytes.NewReader(sc.Bytes()))
			d.UseNumber()
			var m map[string]any
			if err := d.Decode(&m); err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			batch = append(batch, m)
		}
		s.mu.Lock()
		s.records = append(s.records, batch...)
		s.mu.Unlock()
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *jsonSink) snapshot() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.records...)
}

// messages counts the records' messages.
func (s *jsonSink) messages() map[string]int {
	out := map[string]int{}
	for _, r := range s.snapshot() {
		if m, ok := r["message"].(string); ok {
			out[m]++
		}
	}
	return out
}

// TestIngestOTelSDK points the OpenTelemetry Go SDK's OTLP/HTTP log
// exporter at the real binary: every record arrives, with its body,
// severity, attributes, trace context, resource and scope, at an HTTP sink
// and at Kafka.
func TestIngestOTelSDK(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "logs"))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	sink := newJSONSink(t)
	data, addr := t.TempDir(), freeAddr(t)
	env := ingestEnv(data, addr)
	env["SKIFF_SINKS"] = "http,kafka"
	env["SKIFF_HTTP_URL"] = sink.srv.URL
	env["SKIFF_KAFKA_BROKERS"] = strings.Join(kc.ListenAddrs(), ",")
	env["SKIFF_KAFKA_TOPIC"] = "logs"
	p := start(t, env)
	waitListening(t, addr)

	ctx := context.Background()
	exp, err := otlploghttp.New(ctx, otlploghttp.WithEndpoint(addr), otlploghttp.WithInsecure(), otlploghttp.WithCompression(otlploghttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	res := resource.NewWithAttributes("https://opentelemetry.io/schemas/1.26.0", attribute.String("service.name", "checkout"), attribute.Int("pod.index", 3))
	provider := sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(sdklog.NewBatchProcessor(exp, sdklog.WithExportMaxBatchSize(200))))
	logger := provider.Logger("checkout/payments", otellog.WithInstrumentationVersion("1.2.3"))
	traceID, _ := trace.TraceIDFromHex("5b8efff798038103d269b633813fc60c")
	spanID, _ := trace.SpanIDFromHex("eee19b7ec3c1b174")
	spanCtx := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled}))
	const n = 1000
	for i := range n {
		var r otellog.Record
		r.SetTimestamp(time.Now())
		r.SetSeverity(otellog.SeverityWarn)
		r.SetSeverityText("WARN")
		r.SetBody(attribute.StringValue(fmt.Sprintf("payment %d declined", i)))
		r.AddAttributes(attribute.Int("seq", i), attribute.String("user", "alice"), attribute.Bool("retry", i%2 == 0),
			attribute.Map("card", attribute.String("brand", "visa"), attribute.Int64("last4", 4242)))
		logger.Emit(spanCtx, r)
	}
	if err := provider.Shutdown(ctx); err != nil { // flushes: every export acknowledged
		t.Fatal(err)
	}

	check := func(where string, r map[string]any) int {
		t.Helper()
		attrs, _ := r["attributes"].(map[string]any)
		seq, err := attrs["seq"].(json.Number).Int64()
		card, _ := attrs["card"].(map[string]any)
		resAttrs, _ := r["resource"].(map[string]any)["attributes"].(map[string]any)
		scope, _ := r["scope"].(map[string]any)
		if err != nil || r["source"] != "otlp" || r["message"] != fmt.Sprintf("payment %d declined", seq) ||
			attrs["user"] != "alice" || attrs["retry"] != (seq%2 == 0) || card["brand"] != "visa" || card["last4"] != json.Number("4242") ||
			r["severity_number"] != json.Number("13") || r["severity_text"] != "WARN" ||
			r["trace_id"] != "5b8efff798038103d269b633813fc60c" || r["span_id"] != "eee19b7ec3c1b174" || r["flags"] != json.Number("1") ||
			resAttrs["service.name"] != "checkout" || resAttrs["pod.index"] != json.Number("3") ||
			r["resource"].(map[string]any)["schema_url"] != "https://opentelemetry.io/schemas/1.26.0" ||
			scope["name"] != "checkout/payments" || scope["version"] != "1.2.3" {
			t.Fatalf("%s: record %v", where, r)
		}
		return int(seq)
	}
	waitFor(t, 30*time.Second, "every record at the HTTP sink", func() bool { return len(sink.snapshot()) >= n })
	seen := map[int]bool{}
	for _, r := range sink.snapshot() {
		seen[check("http", r)] = true
	}
	if len(seen) != n {
		t.Fatalf("HTTP sink: %d distinct records of %d", len(seen), n)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...), kgo.ConsumeTopics("logs"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	kseen := map[int]bool{}
	kctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for len(kseen) < n {
		fs := cl.PollFetches(kctx)
		if kctx.Err() != nil {
			t.Fatalf("Kafka: %d of %d records", len(kseen), n)
		}
		fs.EachRecord(func(kr *kgo.Record) {
			d := json.NewDecoder(bytes.NewReader(kr.Value))
			d.UseNumber()
			var m map[string]any
			if err := d.Decode(&m); err != nil {
				t.Fatalf("Kafka message is not a record: %v", err)
			}
			kseen[check("kafka", m)] = true
		})
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// waitListening waits until addr accepts connections.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	waitFor(t, 10*time.Second, "the ingest endpoint", func() bool {
		resp, err := http.Post("http://"+addr+"/v1/text", "text/plain", nil)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// otlpBody is an ExportLogsServiceRequest of the given string bodies.
func otlpBody(t testing.TB, msgs []string) []byte {
	var lrs []*logspb.LogRecord
	for _, m := range msgs {
		lrs = append(lrs, &logspb.LogRecord{TimeUnixNano: uint64(time.Now().UnixNano()), Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: m}}})
	}
	req := &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		Resource:  &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "e2e"}}}}},
		ScopeLogs: []*logspb.ScopeLogs{{LogRecords: lrs}},
	}}}
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIngestSIGKILLLosesNothingAcknowledged: clients POST (text and OTLP)
// while skiff is killed with SIGKILL, keeping a list of the requests that
// were answered 200. After a restart on the same data dir every
// acknowledged record is delivered; records of requests that got no
// answer may or may not be.
func TestIngestSIGKILLLosesNothingAcknowledged(t *testing.T) {
	sink := newJSONSink(t)
	data, addr := t.TempDir(), freeAddr(t)
	env := ingestEnv(data, addr)
	env["SKIFF_SINKS"] = "http"
	env["SKIFF_HTTP_URL"] = sink.srv.URL
	env["SKIFF_LOG_LEVEL"] = "info"

	var mu sync.Mutex
	var acked []string
	var sent atomic.Int64
	for round := range 3 {
		p := start(t, env)
		waitListening(t, addr)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for c := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cli := &http.Client{Timeout: 10 * time.Second}
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					msgs := make([]string, 50)
					for i := range msgs {
						msgs[i] = fmt.Sprintf("round %d client %d request %d line %d", round, c, n, i)
					}
					var resp *http.Response
					var err error
					if c%2 == 0 {
						resp, err = cli.Post("http://"+addr+"/v1/text", "text/plain", strings.NewReader(strings.Join(msgs, "\n")))
					} else {
						resp, err = cli.Post("http://"+addr+"/v1/logs", "application/x-protobuf", bytes.NewReader(otlpBody(t, msgs)))
					}
					sent.Add(1)
					if err != nil {
						time.Sleep(10 * time.Millisecond) // skiff is down: not acknowledged
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 {
						mu.Lock()
						acked = append(acked, msgs...)
						mu.Unlock()
					}
				}
			}()
		}
		// Kill mid-stream, once enough was acknowledged this round.
		goal := (round + 1) * 20000
		waitFor(t, 60*time.Second, "requests acknowledged", func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= goal })
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		p.wait(10 * time.Second)
		time.Sleep(100 * time.Millisecond) // a few requests meet a dead port
		close(stop)
		wg.Wait()
	}
	p := start(t, env) // the restart delivers what the kills left
	mu.Lock()
	want := append([]string(nil), acked...)
	mu.Unlock()
	waitFor(t, 60*time.Second, "every acknowledged record delivered", func() bool {
		got := sink.messages()
		for _, m := range want {
			if got[m] == 0 {
				return false
			}
		}
		return true
	})
	got := sink.messages()
	lost := 0
	for _, m := range want {
		if got[m] == 0 {
			lost++
		}
	}
	t.Logf("%d requests sent, %d records acknowledged, %d delivered (duplicates and unacknowledged included), %d lost", sent.Load(), len(want), len(got), lost)
	p.signal(syscall.SIGTERM)
	p.wait(30 * time.Second)
}

// TestIngestRefusals: with a stuck sink the buffer fills and requests get
// 503 with Retry-After; meanwhile malformed, oversized, wrong-type and
// unauthenticated requests get the right 4xx; none of the refused records
// is ever delivered, every acknowledged one is once the sink recovers, and
// the ingest metrics are linted and listed in README.
func TestIngestRefusals(t *testing.T) {
	sink := newJSONSink(t)
	sink.refuse.Store(true)
	data, addr, metricsAddr := t.TempDir(), freeAddr(t), freeAddr(t)
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("let-me-in\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := ingestEnv(data, addr)
	env["SKIFF_SINKS"] = "http"
	env["SKIFF_HTTP_URL"] = sink.srv.URL
	env["SKIFF_HTTP_BACKOFF_MAX"] = "200ms"
	env["SKIFF_BUFFER_MAX_BYTES"] = "2MiB" // body limit: 128 KiB
	env["SKIFF_MAX_LINE_BYTES"] = "64KiB"
	env["SKIFF_INGEST_MAX_WAIT"] = "300ms"
	env["SKIFF_INGEST_TOKEN_FILE"] = token
	env["SKIFF_METRICS_ADDR"] = metricsAddr
	p := start(t, env)
	base := "http://" + addr
	post := func(path, ct, auth string, body []byte) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	waitFor(t, 10*time.Second, "the ingest endpoint", func() bool {
		resp, err := http.Post(base+"/v1/text", "text/plain", nil)
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	bad := func() {
		t.Helper()
		for name, c := range map[string]struct {
			path, ct, auth string
			body           []byte
			status         int
		}{
			"no token":    {"/v1/text", "text/plain", "", []byte("refused no token"), 401},
			"wrong token": {"/v1/text", "text/plain", "let-me-out", []byte("refused wrong token"), 401},
			"wrong type":  {"/v1/text", "application/octet-stream", "let-me-in", []byte("refused wrong type"), 415},
			"oversized":   {"/v1/text", "text/plain", "let-me-in", bytes.Repeat([]byte("refused oversized\n"), 10000), 413},
			"malformed":   {"/v1/json", "application/json", "let-me-in", []byte(`[{"message":"refused malformed"},`), 400},
			"bad OTLP":    {"/v1/logs", "application/x-protobuf", "let-me-in", otlpBody(t, []string{"refused bad otlp"})[:20], 400},
		} {
			if code, _, body := post(c.path, c.ct, c.auth, c.body); code != c.status {
				t.Errorf("%s: %d %s, want %d", name, code, body, c.status)
			}
		}
	}
	bad()
	var acked []string
	full := false
	for n := 0; n < 1000 && !full; n++ {
		msgs := make([]string, 100)
		for i := range msgs {
			msgs[i] = fmt.Sprintf("fill %d line %d %s", n, i, strings.Repeat("x", 150))
		}
		code, hdr, body := post("/v1/text", "text/plain", "let-me-in", []byte(strings.Join(msgs, "\n")))
		switch {
		case code == 200:
			acked = append(acked, msgs...)
		case code == 503 && hdr.Get("Retry-After") != "":
			full = true
		default:
			t.Fatalf("request %d: %d %q %s", n, code, hdr.Get("Retry-After"), body)
		}
	}
	if !full {
		t.Fatal("the buffer never filled")
	}
	bad() // refusals still answered right with a full buffer
	big := make([]string, 100)
	for i := range big {
		big[i] = fmt.Sprintf("refused while full %d %s", i, strings.Repeat("y", 150))
	}
	code, _, st := post("/v1/logs", "application/x-protobuf", "let-me-in", otlpBody(t, big))
	if code != 503 {
		t.Fatalf("OTLP on a full buffer: %d %q", code, st)
	}
	sink.refuse.Store(false) // the sink recovers and the buffer drains
	recovered := []string{"after recovery 1", "after recovery 2"}
	waitFor(t, 30*time.Second, "a request accepted again", func() bool {
		code, _, _ := post("/v1/text", "text/plain", "let-me-in", []byte(strings.Join(recovered, "\n")))
		return code == 200
	})
	acked = append(acked, recovered...)
	waitFor(t, 30*time.Second, "every acknowledged record delivered", func() bool {
		got := sink.messages()
		for _, m := range acked {
			if got[m] == 0 {
				return false
			}
		}
		return true
	})
	for m := range sink.messages() {
		if strings.HasPrefix(m, "refused") {
			t.Errorf("a record of a refused request was delivered: %q", m)
		}
	}

	ctx := context.Background()
	_, status, _ := httpGet(ctx, "http://"+metricsAddr+"/status")
	if !strings.Contains(status, `"ingest"`) || !strings.Contains(status, `"auth": "bearer"`) {
		t.Errorf("/status does not show the ingest source:\n%s", status)
	}
	_, body, err := httpGet(ctx, "http://"+metricsAddr+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`skiff_ingest_rejected_requests_total{endpoint="text",reason="unauthorized"}`, `reason="buffer_full"`, `reason="too_large"`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range problems {
		if strings.HasPrefix(pr.Metric, "skiff_ingest") {
			t.Errorf("metric lint: %s: %s", pr.Metric, pr.Text)
		}
	}
	readme, _ := os.ReadFile("../README.md")
	for _, name := range regexp.MustCompile(`(?m)^# TYPE (skiff_ingest_\w+)`).FindAllStringSubmatch(body, -1) {
		if !strings.Contains(string(readme), "`"+name[1]+"`") {
			t.Errorf("metric %s is not listed in README", name[1])
		}
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestIngestGracefulShutdown: a request the application sends just after
// SIGTERM (as an SDK flushes when its process stops) is still accepted and
// delivered before skiff exits 0.
func TestIngestGracefulShutdown(t *testing.T) {
	sink := newJSONSink(t)
	data, addr := t.TempDir(), freeAddr(t)
	env := ingestEnv(data, addr)
	env["SKIFF_SINKS"] = "http"
	env["SKIFF_HTTP_URL"] = sink.srv.URL
	env["SKIFF_SHUTDOWN_QUIET"] = "1s"
	p := start(t, env)
	waitListening(t, addr)
	p.signal(syscall.SIGTERM)
	resp, err := http.Post("http://"+addr+"/v1/text", "text/plain", strings.NewReader("last words"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d during the quiet period", resp.StatusCode)
	}
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if sink.messages()["last words"] != 1 {
		t.Fatal("the last request was not delivered before exit")
	}
	if _, err := http.Post("http://"+addr+"/v1/text", "text/plain", strings.NewReader("too late")); err == nil {
		t.Fatal("a request was accepted after exit")
	}
}
