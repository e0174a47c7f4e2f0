package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
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

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP logs endpoint that decodes every request
// with the official OTLP definitions and counts the log records by body;
// every faultEvery-th request is answered 503 (retryable).
type otlpReceiver struct {
	t          *testing.T
	srv        *httptest.Server
	faultEvery int64
	requests   atomic.Int64

	mu    sync.Mutex
	count map[string]int // log records by body
	uids  map[string]string
	bad   []string // mapping problems seen
	// partial: the next accepted request is answered with a
	// partial_success rejecting one record.
	partial atomic.Bool
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{t: t, faultEvery: 7, count: map[string]int{}, uids: map[string]string{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *otlpReceiver) serve(w http.ResponseWriter, req *http.Request) {
	n := r.requests.Add(1)
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	if req.URL.Path != "/v1/logs" || req.Header.Get("Content-Type") != "application/x-protobuf" || req.Header.Get("Content-Encoding") != "gzip" {
		r.problem("request %s %q %q", req.URL.Path, req.Header.Get("Content-Type"), req.Header.Get("Content-Encoding"))
	}
	if n%r.faultEvery == 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err == nil {
		body, err = io.ReadAll(zr)
	}
	var export collogspb.ExportLogsServiceRequest
	if err == nil {
		err = proto.Unmarshal(body, &export)
	}
	if err != nil {
		r.problem("decode: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	for _, rl := range export.ResourceLogs {
		res := map[string]string{}
		for _, kv := range rl.GetResource().GetAttributes() {
			res[kv.Key] = kv.GetValue().GetStringValue()
		}
		if res["k8s.pod.name"] != "web-7d9f" || res["k8s.namespace.name"] != "shop" || res["service.name"] != "checkout" {
			r.bad = append(r.bad, fmt.Sprintf("resource %v", res))
		}
		for _, sl := range rl.ScopeLogs {
			for _, lr := range sl.LogRecords {
				attrs := map[string]string{}
				for _, kv := range lr.Attributes {
					attrs[kv.Key] = kv.GetValue().GetStringValue()
				}
				msg := lr.GetBody().GetStringValue()
				if lr.ObservedTimeUnixNano == 0 || attrs["log.file.name"] != "app.log" || !strings.HasSuffix(attrs["log.file.path"], "/app.log") || attrs["log.record.uid"] == "" {
					r.bad = append(r.bad, fmt.Sprintf("log record %v", lr))
				}
				// The same line delivered again carries the same ID.
				if uid, ok := r.uids[msg]; ok && uid != attrs["log.record.uid"] {
					r.bad = append(r.bad, fmt.Sprintf("%q delivered again with ID %s, first %s", msg, attrs["log.record.uid"], uid))
				}
				r.uids[msg] = attrs["log.record.uid"]
				r.count[msg]++
			}
		}
	}
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	if r.partial.CompareAndSwap(true, false) {
		b, _ := proto.Marshal(&collogspb.ExportLogsServiceResponse{PartialSuccess: &collogspb.ExportLogsPartialSuccess{RejectedLogRecords: 1, ErrorMessage: "one too old"}})
		w.Write(b)
	}
}

func (r *otlpReceiver) problem(format string, args ...any) {
	r.mu.Lock()
	r.bad = append(r.bad, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

// TestOTLPSIGKILLLosesNothing: the real binary tails a file that keeps
// growing and ships it to an OTLP/HTTP endpoint (protobuf, gzip) that
// fails every seventh request with 503; skiff is killed with SIGKILL
// several times and restarted on the same data dir. Every line arrives at
// least once, each time with the same log.record.uid and the mapping of
// docs/OTLP.md; the endpoint's partial success is counted; the OTLP
// metrics are in README.
func TestOTLPSIGKILLLosesNothing(t *testing.T) {
	logs, data := t.TempDir(), t.TempDir()
	rcv := newOTLPReceiver(t)
	addr := freeAddr(t)
	env := baseEnv(data, filepath.Join(logs, "*.log"))
	env["SKIFF_SINKS"] = "otlp"
	env["SKIFF_OTLP_URL"] = rcv.srv.URL
	env["SKIFF_OTLP_BACKOFF_MAX"] = "200ms"
	env["SKIFF_OTLP_BATCH_MAX_RECORDS"] = "500"
	env["SKIFF_FIELDS"] = "service.name=checkout"
	env["SKIFF_METRICS_ADDR"] = addr
	env["POD_NAME"], env["POD_NAMESPACE"] = "web-7d9f", "shop"

	var written atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		f, err := os.OpenFile(filepath.Join(logs, "app.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		for seq := 0; ; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := fmt.Fprintf(f, "seq=%08d payload for the OTLP endpoint\n", seq); err != nil {
				t.Error(err)
				return
			}
			written.Add(1)
			if seq%50 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()

	const kills = 3
	for i := 0; i < kills; i++ {
		p := start(t, env)
		time.Sleep(time.Duration(300+rand.IntN(500)) * time.Millisecond)
		p.signal(syscall.SIGKILL)
		p.wait(10 * time.Second)
	}
	close(stop)
	wg.Wait()
	total := int(written.Load())

	rcv.partial.Store(true)
	p := start(t, env)
	waitFor(t, 60*time.Second, "every written line at the OTLP endpoint", func() bool {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		return len(rcv.count) >= total
	})
	ctx := context.Background()
	if v, err := metric(ctx, addr, "skiff_sink_otlp_rejected_records_total", `sink="otlp"`); err != nil || v != 1 {
		t.Errorf("skiff_sink_otlp_rejected_records_total = %v (%v), want 1 (the partial success)", v, err)
	}
	_, body, err := httpGet(ctx, "http://"+addr+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range regexp.MustCompile(`(?m)^# TYPE (skiff_sink_\w+)`).FindAllStringSubmatch(body, -1) {
		if !strings.Contains(string(readme), "`"+name[1]+"`") {
			t.Errorf("metric %s is not listed in README", name[1])
		}
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.bad) > 0 {
		t.Fatalf("%d mapping problems, e.g. %s", len(rcv.bad), rcv.bad[0])
	}
	dups := 0
	for seq := 0; seq < total; seq++ {
		n := rcv.count[fmt.Sprintf("seq=%08d payload for the OTLP endpoint", seq)]
		if n == 0 {
			t.Fatalf("line seq=%d lost (written %d lines, %d kills)", seq, total, kills)
		}
		dups += n - 1
	}
	t.Logf("%d lines, %d kills, %d duplicates, %d requests", total, kills, dups, rcv.requests.Load())
}

// TestOTLPPassThrough: records an application sends to the ingest endpoint
// over OTLP leave through the OTLP sink with their resource, scope and log
// record exactly as sent (compared with proto.Equal after decoding with the
// official definitions), grouped apart from the tailed lines, which carry
// skiff's own resource.
func TestOTLPPassThrough(t *testing.T) {
	logs, data := t.TempDir(), t.TempDir()
	var mu sync.Mutex
	var got []*collogspb.ExportLogsServiceRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, _ := io.ReadAll(body)
		var req collogspb.ExportLogsServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			t.Errorf("decode: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, &req)
		mu.Unlock()
	}))
	defer srv.Close()

	appendLines(t, filepath.Join(logs, "app.log"), "a tailed line")
	addr := freeAddr(t)
	env := baseEnv(data, filepath.Join(logs, "*.log"))
	env["SKIFF_INGEST_ADDR"] = addr
	env["SKIFF_SINKS"] = "otlp"
	env["SKIFF_OTLP_URL"] = srv.URL
	env["POD_NAME"] = "web-7d9f"
	p := start(t, env)

	str := func(s string) *commonpb.AnyValue {
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
	}
	sent := &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		Resource:  &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name", Value: str("checkout")}}, DroppedAttributesCount: 1},
		SchemaUrl: "https://opentelemetry.io/schemas/1.26.0",
		ScopeLogs: []*logspb.ScopeLogs{{
			Scope:     &commonpb.InstrumentationScope{Name: "checkout/payments", Version: "1.2.3"},
			SchemaUrl: "https://scope",
			LogRecords: []*logspb.LogRecord{
				{TimeUnixNano: 1764579600000000000, ObservedTimeUnixNano: 1764579600000000001, SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_WARN,
					SeverityText: "WARN", Body: str("payment declined"), Flags: 1, EventName: "payment.declined",
					TraceId: bytes.Repeat([]byte{0xab}, 16), SpanId: bytes.Repeat([]byte{0xcd}, 8),
					Attributes: []*commonpb.KeyValue{{Key: "amount", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 42}}}}},
				{ObservedTimeUnixNano: 5, Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{
					Values: []*commonpb.KeyValue{{Key: "k", Value: str("v")}}}}}},
			},
		}},
	}}}
	body, err := proto.Marshal(sent)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the ingest endpoint", func() bool {
		resp, err := http.Post("http://"+addr+"/v1/logs", "application/x-protobuf", bytes.NewReader(body))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	var in, own *logspb.ResourceLogs
	waitFor(t, 20*time.Second, "both resources at the OTLP endpoint", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, req := range got {
			for _, rl := range req.ResourceLogs {
				if proto.Equal(rl.Resource, sent.ResourceLogs[0].Resource) {
					in = rl
				} else if len(rl.GetResource().GetAttributes()) > 0 && rl.Resource.Attributes[0].Key == "k8s.pod.name" {
					own = rl
				}
			}
		}
		return in != nil && own != nil
	})
	p.signal(syscall.SIGTERM)
	p.wait(30 * time.Second)
	if !proto.Equal(in, sent.ResourceLogs[0]) {
		t.Errorf("an OTLP record changed on its way:\nsent %v\ngot  %v", sent.ResourceLogs[0], in)
	}
	if lr := own.ScopeLogs[0].LogRecords[0]; lr.GetBody().GetStringValue() != "a tailed line" || own.Resource.Attributes[0].GetValue().GetStringValue() != "web-7d9f" {
		t.Errorf("tailed record %v in resource %v", lr, own.Resource)
	}
}
