package http

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/skiff-dev/skiff/internal/config"
	"github.com/skiff-dev/skiff/internal/record"
	"github.com/skiff-dev/skiff/sinks"
	"github.com/skiff-dev/skiff/sinks/internal/sinktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// httpConfig is a valid config.HTTP for url with fast retries.
func httpConfig(url string) config.HTTP {
	return config.HTTP{
		URL: url, Format: "ndjson", Compression: "none", LokiLine: "message",
		HTTPClient: config.HTTPClient{
			Auth:    "none",
			Timeout: 5 * time.Second, BatchMaxBytes: 1 << 20, BatchMaxRecords: 10, Concurrency: 2,
			BackoffMin: time.Millisecond, BackoffMax: 20 * time.Millisecond, BackoffFirstMinuteMax: 20 * time.Millisecond,
			RetryAfterMax: time.Minute, BreakerFailures: 0,
		},
		RetryableStatus: []int{408, 429, 500, 502, 503, 504},
		ESIndex:         "skiff",
	}
}

// ingestRequest is one request an ingest server saw.
type ingestRequest struct {
	at      time.Time // arrival
	offsets []int64
	failed  bool // answered with a fault rather than accepted
}

// ingest is an httptest server that collects skiff records (ndjson, json
// or elasticsearch bodies) by offset, with a fault hook.
type ingest struct {
	*httptest.Server
	t *testing.T

	mu   sync.Mutex
	seen map[int64]int
	reqs []*ingestRequest
	// fault, when set, may answer a request instead of the default (accept
	// all, 200). It returns true when it wrote the response; it can call
	// accept itself to take the records and still answer with a fault.
	fault func(n int, req *ingestRequest, w nethttp.ResponseWriter, r *nethttp.Request) bool
}

func newIngest(t *testing.T) *ingest {
	in := &ingest{t: t, seen: map[int64]int{}}
	in.Server = httptest.NewServer(nethttp.HandlerFunc(in.serve))
	t.Cleanup(in.Close)
	return in
}

func (in *ingest) serve(w nethttp.ResponseWriter, r *nethttp.Request) {
	req := &ingestRequest{at: time.Now()}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			nethttp.Error(w, err.Error(), 400)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return // client went away
	}
	req.offsets = parseOffsets(in.t, r.Header.Get("Content-Type"), data)
	in.mu.Lock()
	n := len(in.reqs)
	in.reqs = append(in.reqs, req)
	fault := in.fault
	in.mu.Unlock()
	if fault != nil && fault(n, req, w, r) {
		in.mu.Lock()
		req.failed = true
		in.mu.Unlock()
		return
	}
	in.accept(req.offsets)
	w.WriteHeader(nethttp.StatusNoContent)
}

func (in *ingest) accept(offs []int64) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, o := range offs {
		in.seen[o]++
	}
}

func (in *ingest) setFault(f func(n int, req *ingestRequest, w nethttp.ResponseWriter, r *nethttp.Request) bool) {
	in.mu.Lock()
	in.fault = f
	in.mu.Unlock()
}

func (in *ingest) requests() []ingestRequest {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]ingestRequest, len(in.reqs))
	for i, r := range in.reqs {
		out[i] = *r
	}
	return out
}

// checkComplete: every offset in want arrived, and any record seen twice
// was in a request that failed (so the client had to resend it).
func (in *ingest) checkComplete(t *testing.T, n int, except ...int64) {
	t.Helper()
	skip := map[int64]bool{}
	for _, e := range except {
		skip[e] = true
	}
	retried := map[int64]bool{}
	for _, r := range in.requests() {
		if r.failed {
			for _, o := range r.offsets {
				retried[o] = true
			}
		}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for i := range int64(n) {
		c := in.seen[i]
		switch {
		case skip[i] && c != 0:
			t.Errorf("record %d delivered, want it dead-lettered", i)
		case !skip[i] && c == 0:
			t.Errorf("record %d never delivered", i)
		case c > 1 && !retried[i]:
			t.Errorf("record %d delivered %d times but was never in a failed request", i, c)
		}
	}
}

func parseOffsets(t *testing.T, ctype string, data []byte) []int64 {
	var offs []int64
	add := func(line []byte) {
		var v struct {
			Offset *int64          `json:"offset"`
			Create json.RawMessage `json:"create"`
		}
		if err := json.Unmarshal(line, &v); err != nil {
			t.Errorf("bad record %q: %v", line, err)
			return
		}
		if v.Create == nil && v.Offset != nil {
			offs = append(offs, *v.Offset)
		}
	}
	if ctype == "application/json" {
		var arr []json.RawMessage
		if err := json.Unmarshal(data, &arr); err != nil {
			t.Errorf("bad json array: %v", err)
		}
		for _, a := range arr {
			add(a)
		}
		return offs
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		add(sc.Bytes())
	}
	return offs
}

type httpRun struct {
	sink  *Sink
	loop  *sinks.Loop[int]
	src   *sinktest.MemSource
	reg   *prometheus.Registry
	dlDir string
	stop  func() error
}

// startHTTP runs n records of size bytes through a Loop into an HTTP sink
// configured by cfg.
func startHTTP(t *testing.T, cfg config.HTTP, n, size int) *httpRun {
	t.Helper()
	r := &httpRun{reg: prometheus.NewRegistry(), dlDir: filepath.Join(t.TempDir(), "deadletter")}
	dl, err := sinks.OpenDeadLetter(sinks.DeadLetterOptions{Dir: r.dlDir, Registerer: r.reg})
	if err != nil {
		t.Fatal(err)
	}
	r.sink, err = New("web", cfg, sinks.Deps{Encoder: record.NewEncoder("i", record.Kubernetes{}, nil), DeadLetters: dl, Registerer: r.reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.sink.Close() })
	r.src = sinktest.NewMemSource(sinktest.Records(n, size)...)
	o := sinks.LoopOptions{Name: "web", Registerer: r.reg}
	r.sink.LoopOptions(&o)
	r.loop = sinks.NewLoop(r.sink, r.src, o)
	r.stop = sinktest.RunLoop(t, r.loop)
	return r
}

func (r *httpRun) wait(t *testing.T, n int) {
	t.Helper()
	sinktest.WaitUntil(t, fmt.Sprintf("%d records committed", n), func() bool { return r.src.Committed() == n })
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
}

func (r *httpRun) deadLettered(t *testing.T) []int64 {
	var out []int64
	for _, l := range sinktest.ReadDeadLetters(t, r.dlDir) {
		out = append(out, int64(l["offset"].(float64)))
	}
	return out
}

// TestHTTPFaults drives the sink against servers that fail in the ways
// real endpoints do; in each case every record arrives, and duplicates
// come only from requests the server failed.
func TestHTTPFaults(t *testing.T) {
	const n = 200
	status := func(code int, hdr ...string) func(int, *ingestRequest, nethttp.ResponseWriter, *nethttp.Request) bool {
		return func(i int, _ *ingestRequest, w nethttp.ResponseWriter, _ *nethttp.Request) bool {
			if i%3 != 0 { // every third request fails
				return false
			}
			for k := 0; k+1 < len(hdr); k += 2 {
				w.Header().Set(hdr[k], hdr[k+1])
			}
			w.WriteHeader(code)
			return true
		}
	}
	tests := map[string]struct {
		edit       func(*config.HTTP)
		fault      func(int, *ingestRequest, nethttp.ResponseWriter, *nethttp.Request) bool
		deadLetter []int64
		errKind    string
	}{
		"500":                      {fault: status(500), errKind: sinks.KindServer},
		"502":                      {fault: status(502), errKind: sinks.KindServer},
		"507 (any 5xx)":            {fault: status(507), errKind: sinks.KindServer},
		"408":                      {fault: status(408), errKind: sinks.KindTimeout},
		"429":                      {fault: status(429), errKind: sinks.KindThrottled},
		"configured retryable 418": {edit: func(c *config.HTTP) { c.RetryableStatus = []int{418} }, fault: status(418), errKind: sinks.KindServer},
		"gzip 500":                 {edit: func(c *config.HTTP) { c.Compression = "gzip" }, fault: status(500), errKind: sinks.KindServer},
		"json 500":                 {edit: func(c *config.HTTP) { c.Format = "json" }, fault: status(500), errKind: sinks.KindServer},
		"connection reset": {fault: func(i int, _ *ingestRequest, w nethttp.ResponseWriter, _ *nethttp.Request) bool {
			if i%3 != 0 {
				return false
			}
			conn, _, err := w.(nethttp.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return true
		}, errKind: sinks.KindNetwork},
		"slow beyond timeout": {edit: func(c *config.HTTP) { c.Timeout = 100 * time.Millisecond }, fault: func(i int, req *ingestRequest, w nethttp.ResponseWriter, r *nethttp.Request) bool {
			if i%5 != 0 {
				return false
			}
			<-r.Context().Done() // the client gave up
			return true
		}, errKind: sinks.KindTimeout},
		"400 for one batch": {fault: func(i int, req *ingestRequest, w nethttp.ResponseWriter, _ *nethttp.Request) bool {
			for _, o := range req.offsets {
				if o == 37 || o == 150 {
					nethttp.Error(w, `{"error":"invalid record"}`, 400)
					return true
				}
			}
			return false
		}, deadLetter: []int64{37, 150}},
		"413 splits": {fault: func(i int, req *ingestRequest, w nethttp.ResponseWriter, _ *nethttp.Request) bool {
			if len(req.offsets) > 3 || slices.Contains(req.offsets, 99) { // 99 is too large even alone
				w.WriteHeader(413)
				return true
			}
			return false
		}, deadLetter: []int64{99}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in := newIngest(t)
			in.setFault(tc.fault)
			cfg := httpConfig(in.URL)
			if tc.edit != nil {
				tc.edit(&cfg)
			}
			r := startHTTP(t, cfg, n, 100)
			r.wait(t, n)
			in.checkComplete(t, n, tc.deadLetter...)
			if got := r.deadLettered(t); len(got) != len(tc.deadLetter) {
				t.Errorf("dead-lettered %v, want %v", got, tc.deadLetter)
			}
			if tc.errKind != "" {
				if v := sinktest.Metric(t, r.reg, "skiff_sink_errors_total", "kind", tc.errKind); v == 0 {
					t.Errorf("no %s errors counted", tc.errKind)
				}
			}
		})
	}
}

// TestHTTPRetryAfter: on 429 and 503 with Retry-After the sink waits at
// least that long before its next request (measured on the server's
// clock, which can only make the measured wait shorter).
func TestHTTPRetryAfter(t *testing.T) {
	future := func() string { return time.Now().Add(2 * time.Second).UTC().Format(nethttp.TimeFormat) }
	tests := map[string]struct {
		code  int
		value func() string
		min   time.Duration
	}{
		"429 seconds":   {429, func() string { return "1" }, time.Second},
		"503 seconds":   {503, func() string { return "1" }, time.Second},
		"503 http date": {503, future, time.Second}, // HTTP dates have 1s resolution
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in := newIngest(t)
			var answered time.Time
			in.setFault(func(i int, _ *ingestRequest, w nethttp.ResponseWriter, _ *nethttp.Request) bool {
				if i != 1 {
					return false
				}
				w.Header().Set("Retry-After", tc.value())
				w.WriteHeader(tc.code)
				answered = time.Now()
				return true
			})
			cfg := httpConfig(in.URL)
			cfg.Concurrency = 1
			r := startHTTP(t, cfg, 30, 0)
			r.wait(t, 30)
			reqs := in.requests()
			if len(reqs) < 3 {
				t.Fatalf("%d requests", len(reqs))
			}
			if gap := reqs[2].at.Sub(answered); gap < tc.min {
				t.Errorf("retried %v after Retry-After, want at least %v", gap, tc.min)
			}
			in.checkComplete(t, 30)
			if v := sinktest.Metric(t, r.reg, "skiff_sink_errors_total", "kind", sinks.KindThrottled); v != 1 {
				t.Errorf("throttled errors = %v, want 1", v)
			}
		})
	}
}

// TestHTTPAuthRotation: a 401 keeps the data and raises auth_failing; the
// sink picks up a rotated token file and delivers.
func TestHTTPAuthRotation(t *testing.T) {
	in := newIngest(t)
	var authz atomic.Value
	in.setFault(func(i int, _ *ingestRequest, w nethttp.ResponseWriter, r *nethttp.Request) bool {
		authz.Store(r.Header.Get("Authorization"))
		if r.Header.Get("Authorization") != "Bearer new-token" || r.Header.Get("X-Scope-OrgID") != "tenant-2" {
			w.WriteHeader(401)
			return true
		}
		return false
	})
	dir := t.TempDir()
	tokenFile, tenantFile := filepath.Join(dir, "token"), filepath.Join(dir, "tenant")
	write := func(p, v string) {
		if err := os.WriteFile(p+".tmp", []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(p+".tmp", p); err != nil { // like kubelet's atomic swap
			t.Fatal(err)
		}
	}
	write(tokenFile, "old-token\n")
	write(tenantFile, "tenant-1")
	cfg := httpConfig(in.URL)
	cfg.Auth, cfg.TokenFile = "bearer", tokenFile
	cfg.Headers = []string{"X-Scope-OrgID=@" + tenantFile, "X-Static=1"}
	r := startHTTP(t, cfg, 20, 0)
	auth := func() float64 { return sinktest.Metric(t, r.reg, "skiff_sink_auth_failing") }
	sinktest.WaitUntil(t, "auth failing", func() bool { return auth() == 1 })
	if v, _ := authz.Load().(string); v != "Bearer old-token" {
		t.Errorf("Authorization = %q", v)
	}
	write(tokenFile, "new-token\n")
	write(tenantFile, "tenant-2")
	r.wait(t, 20)
	in.checkComplete(t, 20)
	if auth() != 0 {
		t.Error("auth_failing still raised after recovery")
	}
	if v := sinktest.Metric(t, r.reg, "skiff_sink_errors_total", "kind", sinks.KindAuth); v == 0 {
		t.Error("no auth errors counted")
	}
}

func TestHTTPBasicAuth(t *testing.T) {
	in := newIngest(t)
	in.setFault(func(i int, _ *ingestRequest, w nethttp.ResponseWriter, r *nethttp.Request) bool {
		if u, p, ok := r.BasicAuth(); !ok || u != "skiff" || p != "s3cret" {
			w.WriteHeader(403)
			return true
		}
		return false
	})
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("s3cret\n"), 0o600)
	cfg := httpConfig(in.URL)
	cfg.Auth, cfg.Username, cfg.PasswordFile = "basic", "skiff", pw
	r := startHTTP(t, cfg, 10, 0)
	r.wait(t, 10)
	in.checkComplete(t, 10)
}

// TestHTTPCircuit: consecutive failures open the circuit; from then on
// one probe request of one record at a time goes out, spaced by the
// backoff; once the endpoint recovers the probe succeeds, the circuit
// closes and everything is delivered.
func TestHTTPCircuit(t *testing.T) {
	in := newIngest(t)
	var healthy atomic.Bool
	var active, overlap atomic.Int64
	in.setFault(func(i int, _ *ingestRequest, w nethttp.ResponseWriter, _ *nethttp.Request) bool {
		if healthy.Load() {
			return false
		}
		if active.Add(1) > 1 {
			overlap.Add(1)
		}
		time.Sleep(5 * time.Millisecond)
		active.Add(-1)
		w.WriteHeader(503)
		return true
	})
	const backoffMin = 40 * time.Millisecond
	cfg := httpConfig(in.URL)
	cfg.Concurrency, cfg.BreakerFailures = 1, 3
	cfg.BackoffMin, cfg.BackoffFirstMinuteMax, cfg.BackoffMax = backoffMin, 200*time.Millisecond, 200*time.Millisecond
	r := startHTTP(t, cfg, 50, 0)
	state := func() float64 { return sinktest.Metric(t, r.reg, "skiff_sink_circuit_state") }
	sinktest.WaitUntil(t, "open", func() bool { return state() == float64(sinks.CircuitOpen) })
	sinktest.WaitUntil(t, "probes", func() bool { return len(in.requests()) >= 8 })
	healthy.Store(true)
	r.wait(t, 50)
	in.checkComplete(t, 50)
	if s := state(); s != float64(sinks.CircuitClosed) {
		t.Errorf("circuit %v after recovery, want closed", s)
	}
	if n := overlap.Load(); n > 0 {
		t.Errorf("%d requests overlapped another while failing", n)
	}
	reqs := in.requests()
	// Requests 0-2 fail and open the circuit; the failed ones after are
	// probes of one record, each at least half a backoff after the last.
	for i := 3; i < len(reqs) && reqs[i].failed; i++ {
		if len(reqs[i].offsets) != 1 {
			t.Errorf("probe %d carried %d records, want 1", i, len(reqs[i].offsets))
		}
		if gap := reqs[i].at.Sub(reqs[i-1].at); gap < backoffMin/2 {
			t.Errorf("probe %d came %v after the previous request", i, gap)
		}
	}
}

// TestHTTPElasticsearchPartial: a bulk response with some items failed:
// only the retryable ones are sent again, the rejected one is
// dead-lettered, and 409 for a retried create counts as delivered.
func TestHTTPElasticsearchPartial(t *testing.T) {
	var mu sync.Mutex
	indexed := map[string]int{}  // _id -> times created
	attempts := map[string]int{} // _id -> times sent
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		if r.URL.Path != "/_bulk" || r.Header.Get("Content-Type") != "application/x-ndjson" {
			t.Errorf("request %s %s", r.URL.Path, r.Header.Get("Content-Type"))
		}
		data, _ := io.ReadAll(r.Body)
		lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		mu.Lock()
		defer mu.Unlock()
		var ids []string
		var items []string
		errs := false
		for i := 0; i+1 < len(lines); i += 2 {
			var action struct {
				Create struct {
					Index string `json:"_index"`
					ID    string `json:"_id"`
				} `json:"create"`
			}
			var doc struct {
				ID     string `json:"id"`
				Offset int    `json:"offset"`
			}
			if err := json.Unmarshal([]byte(lines[i]), &action); err != nil || json.Unmarshal([]byte(lines[i+1]), &doc) != nil {
				t.Errorf("bad bulk pair %q %q", lines[i], lines[i+1])
				continue
			}
			id := action.Create.ID
			if id != doc.ID || action.Create.Index != "logs" {
				t.Errorf("action %+v for doc %+v", action, doc)
			}
			ids = append(ids, id)
			attempts[id]++
			item := func(status int, errType string) {
				e := ""
				if errType != "" {
					errs = true
					e = fmt.Sprintf(`,"error":{"type":%q,"reason":"because"}`, errType)
				}
				items = append(items, fmt.Sprintf(`{"create":{"_index":"logs","_id":%q,"status":%d%s}}`, id, status, e))
			}
			switch {
			case doc.Offset == 13:
				item(400, "mapper_parsing_exception")
			case doc.Offset%7 == 0 && attempts[id] == 1:
				item(429, "es_rejected_execution_exception")
			case doc.Offset%11 == 0 && attempts[id] == 1:
				// Indexed, but the response says 503 for it: the retry
				// must be answered 409 and count as done.
				indexed[id]++
				item(503, "unavailable_shards_exception")
			case indexed[id] > 0:
				item(409, "version_conflict_engine_exception")
			default:
				indexed[id]++
				item(201, "")
			}
		}
		retried := 0
		for _, id := range ids {
			if attempts[id] > 1 {
				retried++
			}
		}
		if retried > 0 && retried < len(ids) {
			t.Errorf("a retry mixed %d resent items with %d new ones", retried, len(ids)-retried)
		}
		fmt.Fprintf(w, `{"took":3,"errors":%v,"items":[%s]}`, errs, strings.Join(items, ","))
	}))
	defer srv.Close()
	cfg := httpConfig(srv.URL)
	cfg.Format, cfg.ESIndex, cfg.BatchMaxRecords = "elasticsearch", "logs", 20
	r := startHTTP(t, cfg, 100, 0)
	r.wait(t, 100)
	enc := record.NewEncoder("i", record.Kubernetes{}, nil)
	mu.Lock()
	defer mu.Unlock()
	for i := range 100 {
		var rec record.Record
		rec.Decode(sinktest.Record(i, 0))
		id := enc.ID(&rec)
		wantAttempts := 1
		if i%7 == 0 || (i%11 == 0 && i != 13) {
			wantAttempts = 2
		}
		if i == 77 { // 7 and 11: 429 first
			wantAttempts = 2
		}
		if attempts[id] != wantAttempts {
			t.Errorf("record %d sent %d times, want %d", i, attempts[id], wantAttempts)
		}
		if want := 1; i != 13 && indexed[id] != want {
			t.Errorf("record %d indexed %d times", i, indexed[id])
		}
	}
	if dl := r.deadLettered(t); len(dl) != 1 || dl[0] != 13 {
		t.Errorf("dead letters %v, want [13]", dl)
	}
}

func TestHTTPNoDeadLetters(t *testing.T) {
	in := newIngest(t)
	in.setFault(func(i int, req *ingestRequest, w nethttp.ResponseWriter, _ *nethttp.Request) bool {
		if len(req.offsets) == 1 && req.offsets[0] == 5 {
			w.WriteHeader(422)
			return true
		}
		for _, o := range req.offsets {
			if o == 5 {
				w.WriteHeader(422)
				return true
			}
		}
		return false
	})
	reg := prometheus.NewRegistry()
	sink, err := New("web", httpConfig(in.URL), sinks.Deps{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	b := &sinks.Batch{Records: sinktest.Decoded(0, 10, 0)}
	if err := sink.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(sink.rejected); v != 1 {
		t.Errorf("rejected = %v, want 1", v)
	}
	in.checkComplete(t, 10, 5)
}

// TestHTTPDeadLetterFailureKeepsData: when rejected records cannot be
// dead-lettered, Send fails with KindRejected and keeps them.
func TestHTTPDeadLetterFailureKeepsData(t *testing.T) {
	in := newIngest(t)
	in.setFault(func(i int, req *ingestRequest, w nethttp.ResponseWriter, _ *nethttp.Request) bool {
		if slices.Contains(req.offsets, 2) {
			w.WriteHeader(400)
			return true
		}
		return false
	})
	sink, err := New("web", httpConfig(in.URL), sinks.Deps{DeadLetters: failingDL{}})
	if err != nil {
		t.Fatal(err)
	}
	b := &sinks.Batch{Records: sinktest.Decoded(0, 4, 0)}
	err = sink.Send(context.Background(), b)
	var se *sinks.SendError
	if !errors.As(err, &se) || se.Kind != sinks.KindRejected || !slices.ContainsFunc(b.Records, func(r record.Record) bool { return r.Offset == 2 }) {
		t.Fatalf("Send = %v with %d records left, want rejected, keeping record 2", err, len(b.Records))
	}
}

type failingDL struct{}

func (failingDL) Write(string, string, []record.Record) error { return errors.New("disk full") }

func TestHTTPRedirectIsConfigError(t *testing.T) {
	srv := httptest.NewServer(nethttp.RedirectHandler("/elsewhere", nethttp.StatusPermanentRedirect))
	defer srv.Close()
	sink, err := New("web", httpConfig(srv.URL), sinks.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	err = sink.Send(context.Background(), &sinks.Batch{Records: sinktest.Decoded(0, 1, 0)})
	var se *sinks.SendError
	if !errors.As(err, &se) || se.Kind != sinks.KindAuth || !strings.Contains(err.Error(), "/elsewhere") {
		t.Fatalf("Send = %v, want an auth-kind error naming the redirect", err)
	}
}

func TestHTTPEndpoint(t *testing.T) {
	tests := map[string]struct{ url, format, want string }{
		"ndjson as is":   {"http://h:1/x", "ndjson", "http://h:1/x"},
		"loki base":      {"http://loki:3100", "loki", "http://loki:3100/loki/api/v1/push"},
		"loki full":      {"http://loki:3100/loki/api/v1/push", "loki", "http://loki:3100/loki/api/v1/push"},
		"loki proxy":     {"https://gw/tenant/push", "loki", "https://gw/tenant/push"},
		"es base":        {"http://es:9200/", "elasticsearch", "http://es:9200/_bulk"},
		"es index path":  {"http://es:9200/logs", "elasticsearch", "http://es:9200/logs/_bulk"},
		"es full":        {"http://es:9200/_bulk", "elasticsearch", "http://es:9200/_bulk"},
		"es with params": {"http://es:9200/_bulk?pipeline=p", "elasticsearch", "http://es:9200/_bulk?pipeline=p"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got, err := endpoint(tc.url, tc.format); err != nil || got != tc.want {
				t.Errorf("endpoint = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestHTTPProxy: HTTP_PROXY/HTTPS_PROXY and NO_PROXY are honoured. The
// standard library reads them once per process, so the check runs in a
// child process with the variables set.
func TestHTTPProxy(t *testing.T) {
	if target := os.Getenv("SKIFF_TEST_PROXY_TARGET"); target != "" {
		sink, err := New("web", httpConfig(target), sinks.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		defer sink.Close()
		if err := sink.Send(context.Background(), &sinks.Batch{Records: sinktest.Decoded(0, 1, 0)}); err != nil {
			t.Fatal(err)
		}
		return
	}
	var proxied atomic.Int64
	proxy := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		if r.URL.Host == "logs.invalid" {
			proxied.Add(1)
		}
		w.WriteHeader(200)
	}))
	defer proxy.Close()
	tests := map[string]struct {
		noProxy  string
		viaProxy bool
	}{
		"through the proxy": {viaProxy: true},
		// Excluded: dialled directly, and .invalid never resolves.
		"NO_PROXY": {noProxy: "logs.invalid"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			before := proxied.Load()
			cmd := exec.Command(os.Args[0], "-test.run=^TestHTTPProxy$", "-test.count=1")
			cmd.Env = append(os.Environ(), "SKIFF_TEST_PROXY_TARGET=http://logs.invalid/ingest", "HTTP_PROXY="+proxy.URL,
				"http_proxy="+proxy.URL, "NO_PROXY="+tc.noProxy, "no_proxy="+tc.noProxy)
			if out, err := cmd.CombinedOutput(); (err == nil) != tc.viaProxy {
				t.Fatalf("child: %v\n%s", err, out)
			}
			if got := proxied.Load() - before; tc.viaProxy != (got == 1) {
				t.Errorf("%d requests through the proxy, want via proxy = %v", got, tc.viaProxy)
			}
		})
	}
}

// TestHTTPBulkUnreadable: a 200 bulk response that does not parse, or
// whose items do not match the request, means the batch is resent whole.
func TestHTTPBulkUnreadable(t *testing.T) {
	tests := map[string]string{
		"not json":       `<html>proxy says hi</html>`,
		"items mismatch": `{"errors":true,"items":[{"create":{"status":201}}]}`,
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
				io.Copy(io.Discard, r.Body)
				io.WriteString(w, body)
			}))
			defer srv.Close()
			cfg := httpConfig(srv.URL)
			cfg.Format = "elasticsearch"
			sink, err := New("es", cfg, sinks.Deps{})
			if err != nil {
				t.Fatal(err)
			}
			defer sink.Close()
			b := &sinks.Batch{Records: sinktest.Decoded(0, 3, 0)}
			err = sink.Send(context.Background(), b)
			var se *sinks.SendError
			if !errors.As(err, &se) || se.Kind != sinks.KindServer || len(b.Records) != 3 {
				t.Errorf("Send = %v with %d records left; want a server error keeping all 3", err, len(b.Records))
			}
		})
	}
}

func TestHTTPLoopOptions(t *testing.T) {
	cfg := httpConfig("http://x")
	cfg.BatchMaxRecords, cfg.BatchMaxBytes, cfg.Linger, cfg.Concurrency = 7, 4096, time.Second, 3
	cfg.BackoffMin, cfg.BackoffMax, cfg.BackoffFirstMinuteMax, cfg.RetryAfterMax = time.Second, time.Minute, 2*time.Second, time.Hour
	sink, err := New("x", cfg, sinks.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	o := sinks.LoopOptions{Name: "x", StallTimeout: time.Minute}
	sink.LoopOptions(&o)
	want := sinks.LoopOptions{Name: "x", StallTimeout: time.Minute, MaxRecords: 7, MaxBytes: 4096, Linger: time.Second, Concurrency: 3,
		BackoffMin: time.Second, BackoffMax: time.Minute, BackoffFirstMinuteMax: 2 * time.Second, RetryAfterMax: time.Hour, BreakerFailures: -1}
	if o != want {
		t.Errorf("LoopOptions = %+v, want %+v (BREAKER_FAILURES=0 disables)", o, want)
	}
}

// TestHTTPOddStatus: answers outside the known ranges are retried as
// server errors, in requests and in bulk items alike.
func TestHTTPOddStatus(t *testing.T) {
	tests := map[string]struct {
		format string
		code   int
		body   string
	}{
		"status 999":      {format: "ndjson", code: 999},
		"status 600":      {format: "ndjson", code: 600},
		"bulk item 700":   {format: "elasticsearch", code: 200, body: `{"errors":true,"items":[{"create":{"status":700}}]}`},
		"bulk item -1":    {format: "elasticsearch", code: 200, body: `{"errors":true,"items":[{"create":{"status":-1}}]}`},
		"bulk item no st": {format: "elasticsearch", code: 200, body: `{"errors":true,"items":[{"create":{}}]}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
				io.Copy(io.Discard, r.Body)
				w.WriteHeader(tc.code)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			cfg := httpConfig(srv.URL)
			cfg.Format = tc.format
			sink, err := New("odd", cfg, sinks.Deps{DeadLetters: failingDL{}})
			if err != nil {
				t.Fatal(err)
			}
			defer sink.Close()
			b := &sinks.Batch{Records: sinktest.Decoded(0, 1, 0)}
			err = sink.Send(context.Background(), b)
			var se *sinks.SendError
			if !errors.As(err, &se) || se.Kind != sinks.KindServer || len(b.Records) != 1 {
				t.Errorf("Send = %v with %d records left; want a server error keeping the record", err, len(b.Records))
			}
		})
	}
}

// reasonDL fails the dead-letter writes of the reasons in fail and keeps
// the others' records.
type reasonDL struct {
	mu     sync.Mutex
	fail   func(reason string) bool
	stored map[string][]int64
}

func (d *reasonDL) Write(_, reason string, recs []record.Record) error {
	if d.fail(reason) {
		return errors.New("disk full")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range recs {
		d.stored[reason] = append(d.stored[reason], r.Offset)
	}
	return nil
}

// TestHTTPElasticsearchDeadLetterFailure: a bulk response rejects items
// for two reasons (and asks for one retry) while the dead-letter store
// fails for one reason or both; every rejected record is either stored
// or left in the batch to retry, never dropped.
func TestHTTPElasticsearchDeadLetterFailure(t *testing.T) {
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		data, _ := io.ReadAll(r.Body)
		lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		var items []string
		for i := 0; i+1 < len(lines); i += 2 {
			var doc struct {
				Offset int `json:"offset"`
			}
			json.Unmarshal([]byte(lines[i+1]), &doc)
			switch doc.Offset % 3 {
			case 0:
				items = append(items, `{"create":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"a"}}}`)
			case 1:
				items = append(items, `{"create":{"status":400,"error":{"type":"illegal_argument_exception","reason":"b"}}}`)
			default:
				if doc.Offset == 5 {
					items = append(items, `{"create":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"busy"}}}`)
				} else {
					items = append(items, `{"create":{"status":201}}`)
				}
			}
		}
		fmt.Fprintf(w, `{"errors":true,"items":[%s]}`, strings.Join(items, ","))
	}))
	defer srv.Close()
	cfg := httpConfig(srv.URL)
	cfg.Format = "elasticsearch"
	for name, tc := range map[string]struct {
		fail       func(string) bool
		wantKept   []int64 // left in the batch, in order
		wantStored int
	}{
		"both reasons fail": {
			fail:     func(string) bool { return true },
			wantKept: []int64{0, 1, 3, 4, 5, 6, 7, 9},
		},
		"first reason fails": {
			fail:       func(r string) bool { return strings.Contains(r, "mapper_parsing") },
			wantKept:   []int64{0, 3, 5, 6, 9},
			wantStored: 3, // 1, 4, 7
		},
		"second reason fails": {
			fail:       func(r string) bool { return strings.Contains(r, "illegal_argument") },
			wantKept:   []int64{1, 4, 5, 7},
			wantStored: 4, // 0, 3, 6, 9
		},
	} {
		t.Run(name, func(t *testing.T) {
			dl := &reasonDL{fail: tc.fail, stored: map[string][]int64{}}
			sink, err := New("es", cfg, sinks.Deps{DeadLetters: dl})
			if err != nil {
				t.Fatal(err)
			}
			defer sink.Close()
			b := &sinks.Batch{Records: sinktest.Decoded(0, 10, 0)}
			err = sink.Send(context.Background(), b)
			if err == nil {
				t.Fatal("Send succeeded with records undelivered")
			}
			var kept []int64
			for _, r := range b.Records {
				kept = append(kept, r.Offset)
			}
			slices.Sort(kept)
			if !slices.Equal(kept, tc.wantKept) {
				t.Errorf("kept %v, want %v (err %v)", kept, tc.wantKept, err)
			}
			stored := 0
			for _, offs := range dl.stored {
				stored += len(offs)
			}
			if stored != tc.wantStored {
				t.Errorf("stored %d dead letters (%v), want %d", stored, dl.stored, tc.wantStored)
			}
		})
	}
}

// TestHTTPConfigErrorKeepsData: an endpoint that refuses every record for
// the same reason (an empty Loki label set, a bad index) has a
// configuration problem, not bad data: the records are kept and retried,
// a few requests tell (not two per record), the sink raises
// config_failing; a single record refused meanwhile is kept too, while
// one refused when the others are accepted is dead-lettered.
func TestHTTPConfigErrorKeepsData(t *testing.T) {
	in := newIngest(t)
	var broken atomic.Bool
	broken.Store(true)
	in.setFault(func(i int, req *ingestRequest, w nethttp.ResponseWriter, _ *nethttp.Request) bool {
		if broken.Load() || slices.Contains(req.offsets, 7) {
			w.WriteHeader(400)
			io.WriteString(w, "error at least one label pair is required per stream")
			return true
		}
		return false
	})
	cfg := httpConfig(in.URL)
	cfg.BatchMaxRecords = 100
	reg := prometheus.NewRegistry()
	dlDir := filepath.Join(t.TempDir(), "deadletter")
	dl, err := sinks.OpenDeadLetter(sinks.DeadLetterOptions{Dir: dlDir, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	sink, err := New("loki", cfg, sinks.Deps{DeadLetters: dl, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()

	b := &sinks.Batch{Records: sinktest.Decoded(0, 100, 0)}
	err = sink.Send(context.Background(), b)
	var se *sinks.SendError
	if !errors.As(err, &se) || se.Kind != sinks.KindConfig || len(b.Records) != 100 {
		t.Fatalf("Send = %v with %d records left, want kind config keeping all 100", err, len(b.Records))
	}
	if n := len(in.requests()); n > 3 {
		t.Errorf("%d requests to find a configuration error, want 3", n)
	}
	one := &sinks.Batch{Records: b.Records[:1:1]}
	if err := sink.Send(context.Background(), one); !errors.As(err, &se) || se.Kind != sinks.KindConfig || len(one.Records) != 1 {
		t.Fatalf("a single record during the configuration error: Send = %v, want it kept (kind config)", err)
	}
	if dead := sinktest.ReadDeadLetters(t, dlDir); len(dead) != 0 {
		t.Fatalf("%d records dead-lettered for a configuration error", len(dead))
	}

	// Through the loop: kept, retried, alerted on; delivered once fixed.
	src := sinktest.NewMemSource(sinktest.Records(100, 0)...)
	o := sinks.LoopOptions{Name: "loki", Registerer: reg}
	sink.LoopOptions(&o)
	l := sinks.NewLoop(sink, src, o)
	stop := sinktest.RunLoop(t, l)
	sinktest.WaitUntil(t, "config_failing", func() bool { return sinktest.Metric(t, reg, "skiff_sink_config_failing") == 1 })
	if st := l.Status(); !st.ConfigFailing || !strings.Contains(st.LastError, "http 400") || strings.Contains(st.LastError, "label pair") {
		t.Errorf("status %+v, want config_failing with the status and without the answer's text", st)
	}
	broken.Store(false)
	sinktest.WaitUntil(t, "delivered", func() bool { return src.Committed() == 100 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if v := sinktest.Metric(t, reg, "skiff_sink_config_failing"); v != 0 {
		t.Errorf("config_failing %v after recovery", v)
	}
	// Record 7 is refused alone while its neighbours are accepted: bad
	// data, dead-lettered.
	in.checkComplete(t, 100, 7)
	if dead := sinktest.ReadDeadLetters(t, dlDir); len(dead) != 1 || dead[0]["offset"].(float64) != 7 {
		t.Errorf("dead letters %v, want record 7 only", dead)
	}
}

// TestHTTPElasticsearchConfigError: a bulk response refusing every item
// for the same reason (a bad index name, a mapping every document
// breaks) keeps the records, kind config.
func TestHTTPElasticsearchConfigError(t *testing.T) {
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		data, _ := io.ReadAll(r.Body)
		n := strings.Count(string(data), "\n") / 2
		items := make([]string, n)
		for i := range items {
			items[i] = `{"create":{"status":400,"error":{"type":"invalid_index_name_exception","reason":"bad"}}}`
		}
		fmt.Fprintf(w, `{"errors":true,"items":[%s]}`, strings.Join(items, ","))
	}))
	defer srv.Close()
	cfg := httpConfig(srv.URL)
	cfg.Format = "elasticsearch"
	dl := &reasonDL{fail: func(string) bool { return false }, stored: map[string][]int64{}}
	sink, err := New("es", cfg, sinks.Deps{DeadLetters: dl})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	b := &sinks.Batch{Records: sinktest.Decoded(0, 10, 0)}
	err = sink.Send(context.Background(), b)
	var se *sinks.SendError
	if !errors.As(err, &se) || se.Kind != sinks.KindConfig || len(b.Records) != 10 || len(dl.stored) != 0 {
		t.Fatalf("Send = %v, %d records kept, dead letters %v; want kind config keeping all 10", err, len(b.Records), dl.stored)
	}
}
