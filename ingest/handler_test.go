package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/protobuf/proto"

	"github.com/skiff-dev/skiff/buffer"
	"github.com/skiff-dev/skiff/internal/record"
)

func errorOf(t *testing.T, resp response) string {
	t.Helper()
	var e struct{ Error string }
	if err := json.Unmarshal(resp.body, &e); err != nil {
		t.Fatalf("error body %q: %v", resp.body, err)
	}
	return e.Error
}

// TestRefusedBeforeReading: path, method, type, encoding and declared
// length are refused with the right status, a message naming the problem,
// and nothing appended.
func TestRefusedBeforeReading(t *testing.T) {
	f := newFixture(t, Options{MaxBodyBytes: 1 << 10}, buffer.Options{})
	big := bytes.Repeat([]byte("x\n"), 1<<10)
	for name, c := range map[string]struct {
		method, path, ct string
		body             []byte
		hdr              []string
		status           int
		want             string
	}{
		"path":           {"POST", "/v1/traces", "application/x-protobuf", nil, nil, 404, "no endpoint /v1/traces"},
		"method":         {"GET", "/v1/text", "", nil, nil, 405, "only POST"},
		"no type":        {"POST", "/v1/text", "", []byte("a"), nil, 415, "Content-Type none is not accepted"},
		"form":           {"POST", "/v1/json", "application/x-www-form-urlencoded", []byte("a=1"), nil, 415, "accepted: application/json"},
		"text on json":   {"POST", "/v1/json", "text/plain", []byte("a"), nil, 415, "not accepted on /v1/json"},
		"encoding":       {"POST", "/v1/text", "text/plain", []byte("a"), []string{"Content-Encoding", "br"}, 415, "Content-Encoding br"},
		"declared large": {"POST", "/v1/text", "text/plain", big, nil, 413, "larger than 1024 bytes as sent"},
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, f.url+c.path, bytes.NewReader(c.body))
			if c.ct != "" {
				req.Header.Set("Content-Type", c.ct)
			}
			for i := 0; i < len(c.hdr); i += 2 {
				req.Header.Set(c.hdr[i], c.hdr[i+1])
			}
			resp := f.do(req)
			if resp.status != c.status {
				t.Fatalf("status %d, want %d: %s", resp.status, c.status, resp.body)
			}
			if msg := errorOf(t, resp); !strings.Contains(msg, c.want) {
				t.Fatalf("error %q lacks %q", msg, c.want)
			}
			if c.status == 405 && resp.header.Get("Allow") != "POST" {
				t.Errorf("Allow = %q", resp.header.Get("Allow"))
			}
		})
	}
	// An OTLP client gets a Status in its own encoding.
	resp := f.post("/v1/logs", "text/plain", []byte("x"))
	var st struct {
		Code    int
		Message string
	}
	if resp.status != 415 || json.Unmarshal(resp.body, &st) != nil || !strings.Contains(st.Message, "application/x-protobuf") {
		t.Fatalf("OTLP 415: %d %s", resp.status, resp.body)
	}
	if got := f.records(); len(got) != 0 {
		t.Fatalf("%d records appended", len(got))
	}
	if n := testutil.ToFloat64(f.srv.m.rejected.WithLabelValues(endpointText, reasonMediaType)); n != 2 {
		t.Errorf("rejected{text,unsupported_media_type} = %v, want 2", n)
	}
}

// TestBodyLimits: the limit holds for a chunked body (no declared length)
// and after decompression, so a gzip bomb is read no further than the
// limit; nothing of such a request is appended.
func TestBodyLimits(t *testing.T) {
	const limit = 64 << 10
	f := newFixture(t, Options{MaxBodyBytes: limit}, buffer.Options{})
	lines := bytes.Repeat([]byte("0123456789abcde\n"), limit/16+1) // just over
	chunked := func(b []byte, hdr ...string) response {
		req, _ := http.NewRequest("POST", f.url+"/v1/text", io.MultiReader(bytes.NewReader(b))) // unknown length
		req.Header.Set("Content-Type", "text/plain")
		for i := 0; i < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		return f.do(req)
	}
	if resp := chunked(lines); resp.status != 413 || !strings.Contains(errorOf(t, resp), "as sent") {
		t.Fatalf("chunked over the limit: %d %s", resp.status, resp.body)
	}
	noise := make([]byte, 2*limit)
	rand.Read(noise)
	incompressible := gzipped(t, noise) // too large as sent
	var small bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&small, gzip.BestCompression)
	zw.Write(make([]byte, 32<<20))
	zw.Close()
	if small.Len() > limit {
		t.Fatalf("test bomb is %d bytes compressed", small.Len())
	}
	before := testutil.ToFloat64(f.srv.m.bytes.WithLabelValues(endpointText))
	if resp := chunked(small.Bytes(), "Content-Encoding", "gzip"); resp.status != 413 || !strings.Contains(errorOf(t, resp), "after decompression") {
		t.Fatalf("gzip bomb: %d %s", resp.status, resp.body)
	}
	if read := testutil.ToFloat64(f.srv.m.bytes.WithLabelValues(endpointText)) - before; read > 2*limit {
		t.Fatalf("read %v decompressed bytes of the bomb, limit %d", read, limit)
	}
	if resp := chunked(incompressible, "Content-Encoding", "gzip"); resp.status != 413 || !strings.Contains(errorOf(t, resp), "as sent") {
		t.Fatalf("large compressed body: %d %s", resp.status, resp.body)
	}
	if resp := chunked([]byte("not gzip"), "Content-Encoding", "gzip"); resp.status != 400 || !strings.Contains(errorOf(t, resp), "gzip") {
		t.Fatalf("bad gzip: %d %s", resp.status, resp.body)
	}
	if got := f.records(); len(got) != 0 {
		t.Fatalf("%d records appended", len(got))
	}
	// Within the limit, gzip or not, it works.
	ok := lines[:limit-16]
	if resp := chunked(gzipped(t, ok), "Content-Encoding", "gzip"); resp.status != 200 {
		t.Fatalf("gzip within the limit: %d %s", resp.status, resp.body)
	}
	if got := f.records(); len(got) != len(ok)/16 {
		t.Fatalf("%d records, want %d", len(got), len(ok)/16)
	}
	// Records that take more than batchFactor times the limit (here: many
	// empty lines) are refused too.
	if resp := f.post("/v1/text", "text/plain", bytes.Repeat([]byte("\n"), limit-1)); resp.status != 413 || !strings.Contains(errorOf(t, resp), "in the buffer") {
		t.Fatalf("amplified: %d %s", resp.status, resp.body)
	}
	if got := f.records(); len(got) != 0 {
		t.Fatalf("%d records of the amplified request appended", len(got))
	}
}

// TestFullBuffer: under block, a request that does not fit is answered 503
// with Retry-After within MaxWait, nothing of it appended, while the
// server goes on answering; once the sink catches up the same request
// goes in whole.
func TestFullBuffer(t *testing.T) {
	f := newFixture(t, Options{MaxWait: 200 * time.Millisecond},
		buffer.Options{MaxBytes: 256 << 10, SegmentBytes: 32 << 10, WhenFull: buffer.WhenFullBlock})
	body := bytes.Repeat([]byte(strings.Repeat("x", 149)+"\n"), 100) // 15 KB: requests straddle segments
	accepted := 0
	var resp response
	for range 100 {
		resp = f.post("/v1/text", "text/plain", body)
		if resp.status != 200 {
			break
		}
		accepted++
	}
	if resp.status != 503 || resp.header.Get("Retry-After") == "" || !strings.Contains(errorOf(t, resp), "buffer is full") {
		t.Fatalf("after %d requests: %d %q %s", accepted, resp.status, resp.header.Get("Retry-After"), resp.body)
	}
	// The OTLP form of the same answer.
	big := &collogspb.ExportLogsServiceRequest{}
	for range 40 {
		big.ResourceLogs = append(big.ResourceLogs, sampleRequest().ResourceLogs...)
	}
	pb, _ := proto.Marshal(big)
	if r := f.post("/v1/logs", "application/x-protobuf", pb); r.status != 503 || r.header.Get("Retry-After") == "" {
		t.Fatalf("OTLP on a full buffer: %d %q", r.status, r.header.Get("Retry-After"))
	} else if code, _ := status(t, r.body); code != grpcUnavailable {
		t.Fatalf("Status code %d", code)
	}
	got := f.records() // the sink catches up (and commits)
	if len(got) != accepted*100 {
		t.Fatalf("%d records in the buffer, want %d (the refused requests must add none)", len(got), accepted*100)
	}
	if resp := f.post("/v1/text", "text/plain", body); resp.status != 200 {
		t.Fatalf("after the sink caught up: %d %s", resp.status, resp.body)
	}
	if got := f.records(); len(got) != 100 {
		t.Fatalf("%d records, want 100", len(got))
	}
	if n := testutil.ToFloat64(f.srv.m.rejected.WithLabelValues(endpointText, reasonFull)); n != 1 {
		t.Errorf("rejected{buffer_full} = %v", n)
	}
}

// TestDropNewestRefusesAtOnce: under drop_newest a request that does not
// fit is refused at once rather than dropped silently after a 200.
func TestDropNewestRefusesAtOnce(t *testing.T) {
	f := newFixture(t, Options{MaxWait: time.Hour},
		buffer.Options{MaxBytes: 256 << 10, SegmentBytes: 32 << 10, WhenFull: buffer.WhenFullDropNewest})
	body := bytes.Repeat([]byte(strings.Repeat("x", 199)+"\n"), 100)
	for i := 0; ; i++ {
		resp := f.post("/v1/text", "text/plain", body)
		if resp.status == 503 {
			break
		}
		if resp.status != 200 || i > 100 {
			t.Fatalf("request %d: %d", i, resp.status)
		}
	}
}

// slowBody is a request body that waits for release before its last byte.
type slowBody struct {
	first   []byte
	release chan struct{}
	sent    bool
}

func (b *slowBody) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		return copy(p, b.first), nil
	}
	<-b.release
	return 0, io.EOF
}

// TestBusy: with every slot taken, a request waits MaxWait at most, then
// gets 429 with Retry-After; the slot's own request still succeeds.
func TestBusy(t *testing.T) {
	f := newFixture(t, Options{Concurrency: 1, MaxWait: 100 * time.Millisecond}, buffer.Options{})
	slow := &slowBody{first: []byte("held\n"), release: make(chan struct{})}
	done := make(chan response, 1)
	go func() {
		req, _ := http.NewRequest("POST", f.url+"/v1/text", slow)
		req.Header.Set("Content-Type", "text/plain")
		done <- f.do(req)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for f.srv.inFlight.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the slow request never arrived")
		}
		time.Sleep(5 * time.Millisecond)
	}
	resp := f.post("/v1/text", "text/plain", []byte("waits\n"))
	if resp.status != 429 || resp.header.Get("Retry-After") == "" {
		t.Fatalf("got %d %q: %s", resp.status, resp.header.Get("Retry-After"), resp.body)
	}
	close(slow.release)
	if r := <-done; r.status != 200 {
		t.Fatalf("slow request: %d %s", r.status, r.body)
	}
	if got := f.records(); len(got) != 1 || string(got[0].Message) != "held" {
		t.Fatalf("records %v", got)
	}
}

func TestToken(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("first-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, Options{TokenFile: tokenFile}, buffer.Options{})
	for name, c := range map[string]struct {
		auth   string
		status int
	}{"none": {"", 401}, "wrong": {"Bearer nope", 401}, "basic": {"Basic Zmlyc3QtdG9rZW4=", 401}, "right": {"Bearer first-token", 200}, "case": {"bearer first-token", 200}} {
		t.Run(name, func(t *testing.T) {
			var hdr []string
			if c.auth != "" {
				hdr = []string{"Authorization", c.auth}
			}
			resp := f.post("/v1/text", "text/plain", []byte("x"), hdr...)
			if resp.status != c.status {
				t.Fatalf("status %d, want %d", resp.status, c.status)
			}
			if c.status == 401 && !strings.HasPrefix(resp.header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("WWW-Authenticate = %q", resp.header.Get("WWW-Authenticate"))
			}
		})
	}
	if got := f.records(); len(got) != 2 {
		t.Fatalf("%d records, want the 2 authorised", len(got))
	}
	// Rotation: replaced by rename, as kubelet does; picked up within a
	// couple of seconds, without a restart.
	if err := os.WriteFile(tokenFile+".new", []byte("second-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tokenFile+".new", tokenFile); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for f.post("/v1/text", "text/plain", []byte("y"), "Authorization", "Bearer second-token").status != 200 {
		if time.Now().After(deadline) {
			t.Fatal("the rotated token was never accepted")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if resp := f.post("/v1/text", "text/plain", []byte("z"), "Authorization", "Bearer first-token"); resp.status != 401 {
		t.Fatalf("old token after rotation: %d", resp.status)
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "skiff"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	f := newFixture(t, Options{TLSCertFile: certFile, TLSKeyFile: keyFile}, buffer.Options{})
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	f.cli = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	f.url = strings.Replace(f.url, "http://", "https://", 1)
	if resp := f.post("/v1/text", "text/plain", []byte("over tls")); resp.status != 200 {
		t.Fatalf("status %d", resp.status)
	}
	if got := f.records(); len(got) != 1 {
		t.Fatalf("%d records", len(got))
	}
	if _, err := Listen(Options{Addr: "127.0.0.1:0", TLSCertFile: certFile, TLSKeyFile: certFile}, nil); err == nil {
		t.Fatal("a key file that is not a key was accepted")
	}
}

func TestJSONEndpoint(t *testing.T) {
	f := newFixture(t, Options{}, buffer.Options{})
	for name, c := range map[string]struct {
		ct, body string
		want     []string
	}{
		"object":  {"application/json", ` {"a":1} `, []string{`{"a":1}`}},
		"array":   {"application/json", "[\n  {\"a\": 1,\n   \"b\": [1, 2]},\n  {\"c\":\"x\\ny\"}\n]", []string{`{"a":1,"b":[1,2]}`, `{"c":"x\ny"}`}},
		"empty":   {"application/json", `[]`, nil},
		"ndjson":  {"application/x-ndjson", "{\"a\":1}\r\n\n  {\"b\":2}\n{\"c\":3}", []string{`{"a":1}`, `{"b":2}`, `{"c":3}`}},
		"jsonl":   {"application/jsonl", "{\"a\":1}\n", []string{`{"a":1}`}},
		"unicode": {"application/json", `{"é":"✓"}`, []string{`{"é":"✓"}`}},
	} {
		t.Run(name, func(t *testing.T) {
			resp := f.post("/v1/json", c.ct, []byte(c.body))
			if resp.status != 200 {
				t.Fatalf("status %d: %s", resp.status, resp.body)
			}
			got := f.records()
			if len(got) != len(c.want) || !strings.Contains(string(resp.body), `"accepted":`) {
				t.Fatalf("%d records (%s), want %d", len(got), resp.body, len(c.want))
			}
			for i, r := range got {
				if r.Origin != record.OriginJSON || r.Flags&record.FlagJSON == 0 || string(r.Message) != c.want[i] {
					t.Errorf("record %d: origin %v flags %b message %s, want %s", i, r.Origin, r.Flags, r.Message, c.want[i])
				}
			}
		})
	}
	for name, c := range map[string]struct{ ct, body, want string }{
		"syntax":        {"application/json", `[{"a":1},{"b":]`, "body is not valid JSON"},
		"scalar":        {"application/json", `"hello"`, "is a JSON string"},
		"array element": {"application/json", `[{"a":1}, 2]`, "element 1 is a JSON number"},
		"ndjson line":   {"application/x-ndjson", "{\"a\":1}\n{\"b\":\n", "line 2 is not valid JSON"},
		"ndjson array":  {"application/x-ndjson", "{\"a\":1}\n[1]\n", "line 2 is a JSON array"},
		"invalid UTF-8": {"application/json", "{\"a\":\"\xff\"}", "not valid UTF-8"},
	} {
		t.Run(name, func(t *testing.T) {
			resp := f.post("/v1/json", c.ct, []byte(c.body))
			if resp.status != 400 || !strings.Contains(errorOf(t, resp), c.want) {
				t.Fatalf("status %d: %s, want 400 %q", resp.status, resp.body, c.want)
			}
			if got := f.records(); len(got) != 0 {
				t.Fatalf("%d records of a refused request appended", len(got))
			}
		})
	}
}

func TestTextEndpoint(t *testing.T) {
	f := newFixture(t, Options{MaxLineBytes: 4}, buffer.Options{})
	resp := f.post("/v1/text", "text/plain; charset=utf-8", []byte("one\r\ntwo\n\nlonger line\nbin\xff"))
	if resp.status != 200 {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	want := []struct {
		msg     string
		partial bool
	}{{"one", false}, {"two", false}, {"", false}, {"long", true}, {"er l", true}, {"ine", true}, {"bin\xff", false}}
	got := f.records()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i, r := range got {
		if string(r.Message) != want[i].msg || r.Partial() != want[i].partial || r.Origin != record.OriginText {
			t.Errorf("record %d: %q partial=%v origin %v, want %q partial=%v", i, r.Message, r.Partial(), r.Origin, want[i].msg, want[i].partial)
		}
		if r.Source != got[0].Source || r.Offset != int64(i) || r.End != r.Offset {
			t.Errorf("record %d: source %x offset %d end %d", i, r.Source, r.Offset, r.End)
		}
	}
	// Each request has its own number, so IDs never repeat.
	f.post("/v1/text", "text/plain", []byte("again"))
	if next := f.records(); next[0].Source == got[0].Source {
		t.Fatal("two requests share a request number")
	}
}

// redactFilter drops records containing "drop" and masks "secret".
type redactFilter struct{}

func (redactFilter) Apply(r *record.Record) bool {
	if bytes.Contains(r.Message, []byte("drop")) {
		return false
	}
	if bytes.Contains(r.Message, []byte("secret")) {
		r.Message = bytes.ReplaceAll(r.Message, []byte("secret"), []byte("******"))
	}
	return true
}

func TestFilter(t *testing.T) {
	f := newFixture(t, Options{Filter: redactFilter{}}, buffer.Options{})
	if resp := f.post("/v1/text", "text/plain", []byte("keep\ndrop me\nmy secret\n")); resp.status != 200 || string(resp.body) != "{\"accepted\":2}\n" {
		t.Fatalf("%d %s", resp.status, resp.body)
	}
	got := f.records()
	if len(got) != 2 || string(got[0].Message) != "keep" || string(got[1].Message) != "my ******" {
		t.Fatalf("records %v", got)
	}
	// A map body that a filter changed must not leave with its original
	// value: the OTLP parts carry the changed text instead.
	body := `{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"kvlistValue":{"values":[{"key":"password","value":{"stringValue":"secret"}}]}}}]}]}]}`
	if resp := f.post("/v1/logs", "application/json", []byte(body)); resp.status != 200 {
		t.Fatalf("%d %s", resp.status, resp.body)
	}
	got = f.records()
	lr := rebuild(t, &got[0]).lr
	if s := lr.Body.GetStringValue(); s != `{"password":"******"}` {
		t.Fatalf("body after the filter: %v", lr.Body)
	}
	enc := record.NewEncoder("i", record.Kubernetes{}, nil)
	if out := enc.AppendJSON(nil, &got[0]); bytes.Contains(out, []byte("secret")) {
		t.Fatalf("JSON form leaks the original: %s", out)
	}
	if n := testutil.ToFloat64(f.srv.m.filtered.WithLabelValues(endpointText)); n != 1 {
		t.Errorf("filtered = %v", n)
	}
}

// TestGracefulStop: a request in flight when Run's ctx ends is finished
// (appended and answered); afterwards nothing is accepted.
func TestGracefulStop(t *testing.T) {
	l, err := buffer.Open(buffer.Options{Dir: t.TempDir(), Cursors: []string{"test"}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	srv, err := Listen(Options{Addr: "127.0.0.1:0"}, l)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	url := "http://" + srv.Addr().String() + "/v1/text"
	slow := &slowBody{first: []byte("last words\n"), release: make(chan struct{})}
	cli := &http.Client{Transport: &http.Transport{}}
	defer cli.CloseIdleConnections()
	answered := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", url, slow)
		req.Header.Set("Content-Type", "text/plain")
		resp, err := cli.Do(req)
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	for srv.inFlight.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	// Run waits for the request; new connections are refused meanwhile.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener still accepts after the stop")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) with a request in flight", err)
	default:
	}
	close(slow.release)
	if code := <-answered; code != 200 {
		t.Fatalf("the request in flight got %d", code)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cur, _ := l.Cursor("test")
	c2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	recs, _ := cur.Next(c2, 10, 1<<20)
	if len(recs) != 1 {
		t.Fatalf("%d records in the buffer, want the request's one", len(recs))
	}
}

// TestWaitQuiet returns once requests stop, and not while one is in flight.
func TestWaitQuiet(t *testing.T) {
	f := newFixture(t, Options{}, buffer.Options{})
	f.post("/v1/text", "text/plain", []byte("x"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.srv.WaitQuiet(ctx, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	f.srv.inFlight.Add(1) // as if a request were running
	short, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if err := f.srv.WaitQuiet(short, time.Millisecond); err == nil {
		t.Fatal("WaitQuiet returned with a request in flight")
	}
	f.srv.inFlight.Add(-1)
	if st := f.srv.Status(); st.Requests != 1 || st.Records != 1 || st.Auth != "none" || st.LastRequest.IsZero() {
		t.Fatalf("status %+v", st)
	}
}
