package otlp

import (
	"bytes"
	"compress/gzip"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/skiff-dev/skiff/internal/config"
	"github.com/skiff-dev/skiff/internal/record"
	"github.com/skiff-dev/skiff/sinks"
)

// collector is an OTLP/HTTP logs endpoint for tests: it decodes every
// request with the official OTLP definitions (go.opentelemetry.io/proto/otlp)
// and answers as answer says.
type collector struct {
	t   *testing.T
	srv *httptest.Server

	mu     sync.Mutex
	reqs   []received
	answer func(n int, req *collogspb.ExportLogsServiceRequest, w nethttp.ResponseWriter) // nil: 200, empty body
}

// received is one decoded request.
type received struct {
	path, contentType, encoding string
	wire                        []byte // the body as sent
	raw                         []byte // decompressed
	req                         *collogspb.ExportLogsServiceRequest
}

func newCollector(t *testing.T) *collector {
	c := &collector{t: t}
	c.srv = httptest.NewServer(nethttp.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *collector) serve(w nethttp.ResponseWriter, r *nethttp.Request) {
	wire, err := io.ReadAll(r.Body)
	if err != nil {
		c.t.Errorf("read request: %v", err)
		return
	}
	rec := received{path: r.URL.Path, contentType: r.Header.Get("Content-Type"), encoding: r.Header.Get("Content-Encoding"), wire: wire, raw: wire}
	if rec.encoding == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(wire))
		if err != nil {
			c.t.Errorf("Content-Encoding gzip, but: %v", err)
			w.WriteHeader(400)
			return
		}
		if rec.raw, err = io.ReadAll(zr); err != nil {
			c.t.Errorf("gunzip: %v", err)
		}
	}
	rec.req = &collogspb.ExportLogsServiceRequest{}
	switch rec.contentType {
	case "application/x-protobuf":
		err = proto.Unmarshal(rec.raw, rec.req)
	case "application/json":
		err = protojson.Unmarshal(rec.raw, rec.req)
	default:
		c.t.Errorf("Content-Type %q", rec.contentType)
	}
	if err != nil {
		c.t.Errorf("the official OTLP definitions do not decode the request: %v", err)
		w.WriteHeader(400)
		return
	}
	c.mu.Lock()
	c.reqs = append(c.reqs, rec)
	n, answer := len(c.reqs), c.answer
	c.mu.Unlock()
	if answer != nil {
		answer(n, rec.req, w)
	}
}

func (c *collector) setAnswer(f func(n int, req *collogspb.ExportLogsServiceRequest, w nethttp.ResponseWriter)) {
	c.mu.Lock()
	c.answer = f
	c.mu.Unlock()
}

func (c *collector) received() []received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]received(nil), c.reqs...)
}

// testConfig is an OTLP sink's configuration with the defaults of its
// variables, pointing at url.
func testConfig(url string) config.OTLP {
	return config.OTLP{
		URL: url, Encoding: "protobuf", Compression: "gzip",
		HTTPClient: config.HTTPClient{
			Auth:    "none",
			Timeout: 5 * time.Second, BatchMaxBytes: 1 << 20, BatchMaxRecords: 2000, Concurrency: 2,
			BackoffMin: time.Millisecond, BackoffMax: 20 * time.Millisecond, BackoffFirstMinuteMax: 20 * time.Millisecond, RetryAfterMax: time.Minute,
		},
		RetryableStatus: []int{429, 502, 503, 504},
		SeverityNumbers: "syslog",
	}
}

// deadLetters records what a sink dead-letters.
type deadLetters struct {
	mu      sync.Mutex
	reasons []string
	recs    []record.Record
}

func (d *deadLetters) Write(_, reason string, recs []record.Record) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reasons = append(d.reasons, reason)
	for _, r := range recs {
		r.Message = bytes.Clone(r.Message)
		d.recs = append(d.recs, r)
	}
	return nil
}

func (d *deadLetters) messages() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, r := range d.recs {
		out = append(out, string(r.Message))
	}
	return out
}

var _ sinks.DeadLetters = (*deadLetters)(nil)

func joined(ss []string) string { return strings.Join(ss, "|") }
