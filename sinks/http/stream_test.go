package http

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skiff-dev/skiff/internal/config"
	"github.com/skiff-dev/skiff/internal/record"
	"github.com/skiff-dev/skiff/sinks"
	"github.com/skiff-dev/skiff/sinks/internal/sinktest"
)

// TestStreamedBodyIsTheBuiltBody: an ndjson or Elasticsearch batch far
// larger than a chunk arrives as a chunked request whose content (gzipped
// or not) is exactly the body the format builds whole, and the request
// bytes metric counts what went on the wire.
func TestStreamedBodyIsTheBuiltBody(t *testing.T) {
	recs := sinktest.Decoded(0, 3000, 300) // ~2 MB of JSON: many chunks
	for _, format := range []string{config.FormatNDJSON, config.FormatElasticsearch} {
		for _, compression := range []string{"none", "gzip"} {
			t.Run(format+"/"+compression, func(t *testing.T) {
				var mu sync.Mutex
				var got []byte
				var wire int64
				var chunked bool
				srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
					raw, _ := io.ReadAll(r.Body)
					body := raw
					if r.Header.Get("Content-Encoding") == "gzip" {
						zr, err := gzip.NewReader(bytes.NewReader(raw))
						if err != nil {
							t.Errorf("gzip: %v", err)
							return
						}
						body, _ = io.ReadAll(zr)
					}
					mu.Lock()
					got, wire = body, int64(len(raw))
					chunked = len(r.TransferEncoding) == 1 && r.TransferEncoding[0] == "chunked" && r.ContentLength == -1
					mu.Unlock()
					if format == config.FormatElasticsearch {
						io.WriteString(w, `{"errors":false,"items":[]}`)
					}
				}))
				defer srv.Close()
				cfg := httpConfig(srv.URL)
				cfg.Format, cfg.Compression = format, compression
				reg := prometheus.NewRegistry()
				enc := record.NewEncoder("i", record.Kubernetes{}, nil)
				h, err := New("web", cfg, sinks.Deps{Encoder: enc, Registerer: reg})
				if err != nil {
					t.Fatal(err)
				}
				defer h.Close()
				if err := h.Send(context.Background(), &sinks.Batch{Records: recs}); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				defer mu.Unlock()
				if !chunked {
					t.Error("the body was not sent chunked")
				}
				if want := h.format.encode(nil, recs); !bytes.Equal(got, want) {
					t.Fatalf("streamed body differs from the built one: %d vs %d bytes", len(got), len(want))
				}
				if v := sinktest.Metric(t, reg, "skiff_sink_http_request_bytes_total"); v != float64(wire) {
					t.Fatalf("request bytes counted %v, %d on the wire", v, wire)
				}
			})
		}
	}
}

// TestStreamedBodyRead: read with Read instead of WriteTo (as the HTTP/2
// transport does), a streamed body is the same bytes, gzipped or not.
func TestStreamedBodyRead(t *testing.T) {
	recs := sinktest.Decoded(0, 2000, 300)
	for _, gz := range []bool{false, true} {
		h := &Sink{}
		f := ndjsonFormat{record.NewEncoder("i", record.Kubernetes{}, nil)}
		sb := &streamBody{h: h, f: f, recs: recs, gz: gz}
		r := sb.reader()
		var got []byte
		p := make([]byte, 1000) // reads smaller than a chunk
		for {
			n, err := r.Read(p)
			got = append(got, p[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		r.Close()
		if gz {
			zr, err := gzip.NewReader(bytes.NewReader(got))
			if err != nil {
				t.Fatal(err)
			}
			got, _ = io.ReadAll(zr)
		}
		if want := f.encode(nil, recs); !bytes.Equal(got, want) {
			t.Fatalf("gzip %v: read %d bytes, want %d", gz, len(got), len(want))
		}
		if sb.finish() == 0 {
			t.Fatalf("gzip %v: no bytes counted", gz)
		}
	}
}

// TestStreamedBodyEndsWithSend: once Send is over (its records may be
// reused by the delivery loop), a reader of the body the transport still
// holds gets an error and reads no record: a body never carries records
// changed after the attempt.
func TestStreamedBodyEndsWithSend(t *testing.T) {
	recs := sinktest.Decoded(0, 2000, 300)
	sb := &streamBody{h: &Sink{}, f: ndjsonFormat{record.NewEncoder("i", record.Kubernetes{}, nil)}, recs: recs}
	r := sb.reader()
	p := make([]byte, 1000)
	if _, err := r.Read(p); err != nil {
		t.Fatal(err)
	}
	sb.finish()
	for i := range recs {
		recs[i].Message = []byte("REUSED")
	}
	var rest []byte
	var err error
	for err == nil {
		var n int
		n, err = r.Read(p)
		rest = append(rest, p[:n]...)
	}
	if !errors.Is(err, errBodyDone) {
		t.Fatalf("read after Send: %v, want errBodyDone", err)
	}
	if strings.Contains(string(rest), "REUSED") {
		t.Fatal("a record changed after Send reached the body")
	}
	if _, err := sb.reader().(io.WriterTo).WriteTo(io.Discard); !errors.Is(err, errBodyDone) {
		t.Fatalf("WriteTo after Send: %v, want errBodyDone", err)
	}
}
