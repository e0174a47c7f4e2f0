package http

import (
	"context"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/skiff-dev/skiff/internal/record"
	"github.com/skiff-dev/skiff/sinks"
	"github.com/skiff-dev/skiff/sinks/internal/sinktest"
)

// ringSource serves n records cycling over a fixed set of encoded
// records: an endless in-memory source with no allocation per read.
type ringSource struct {
	recs [][]byte
	n    int // records to serve in total

	mu        sync.Mutex
	read      int
	committed atomic.Int64
	done      chan struct{}
}

func newRingSource(distinct, n, size int) *ringSource {
	return &ringSource{recs: sinktest.Records(distinct, size), n: n, done: make(chan struct{})}
}

func (s *ringSource) Next(ctx context.Context, maxRecords, maxBytes int) ([]sinks.Entry[int], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.read == s.n {
		s.mu.Unlock()
		<-ctx.Done()
		s.mu.Lock()
		return nil, ctx.Err()
	}
	es := make([]sinks.Entry[int], 0, min(maxRecords, s.n-s.read))
	size := 0
	for s.read < s.n && len(es) < maxRecords {
		d := s.recs[s.read%len(s.recs)]
		if len(es) > 0 && size+len(d) > maxBytes {
			break
		}
		size += len(d)
		s.read++
		es = append(es, sinks.Entry[int]{Pos: s.read, Data: d})
	}
	return es, nil
}

func (s *ringSource) Commit(pos int) error {
	s.committed.Store(int64(pos))
	if pos == s.n {
		close(s.done)
	}
	return nil
}

// BenchmarkHTTPNDJSON measures in-memory source -> Loop -> HTTP sink
// (ndjson, uncompressed) -> local server, in input line bytes per second
// with 200-byte lines.
func BenchmarkHTTPNDJSON(b *testing.B) {
	for _, bc := range []struct {
		name        string
		compression string
		concurrency int
	}{
		{"none/c2", "none", 2},
		{"none/c4", "none", 4},
		{"gzip/c2", "gzip", 2},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const lineBytes = 200
			var received atomic.Int64
			srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
				n, _ := io.Copy(io.Discard, r.Body)
				received.Add(n)
				w.WriteHeader(nethttp.StatusNoContent)
			}))
			defer srv.Close()
			cfg := httpConfig(srv.URL)
			cfg.Compression, cfg.Concurrency = bc.compression, bc.concurrency
			cfg.BatchMaxRecords, cfg.BatchMaxBytes, cfg.Linger = 2000, 1<<20, 0
			sink, err := New("bench", cfg, sinks.Deps{Encoder: record.NewEncoder("0f8e2c1a-5b7d-4e11-9a3c-2b6f1d0e9c44", record.Kubernetes{Pod: "web-7d9f", Namespace: "prod"}, nil)})
			if err != nil {
				b.Fatal(err)
			}
			defer sink.Close()
			src := newRingSource(4096, b.N, lineBytes)
			o := sinks.LoopOptions{Name: "bench"}
			sink.LoopOptions(&o)
			l := sinks.NewLoop(sink, src, o)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			b.SetBytes(lineBytes)
			b.ReportAllocs()
			b.ResetTimer()
			go func() { done <- l.Run(ctx) }()
			<-src.done
			b.StopTimer()
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(received.Load())/float64(b.N), "wire-B/line")
		})
	}
}
