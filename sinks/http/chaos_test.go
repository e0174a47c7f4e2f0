package http

import (
	"math/rand/v2"
	nethttp "net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestHTTPChaos mixes every fault at random over many requests, with
// several in flight and the breaker on: every record still arrives,
// duplicates come only from failed requests, and exactly the rejected
// records are dead-lettered. SKIFF_LONG=1 runs it 50 times longer.
func TestHTTPChaos(t *testing.T) {
	n := 3000
	if os.Getenv("SKIFF_LONG") == "1" {
		n = 150_000
	}
	in := newIngest(t)
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	in.setFault(func(i int, req *ingestRequest, w nethttp.ResponseWriter, r *nethttp.Request) bool {
		for _, o := range req.offsets {
			if o%997 == 0 {
				nethttp.Error(w, "rejected", 400)
				return true
			}
		}
		mu.Lock()
		p := rng.IntN(100)
		mu.Unlock()
		switch {
		case p < 8:
			w.WriteHeader(500)
		case p < 12:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(429)
		case p < 15:
			w.WriteHeader(503)
		case p < 18:
			if conn, _, err := w.(nethttp.Hijacker).Hijack(); err == nil {
				conn.Close()
			}
		case p < 20:
			in.accept(req.offsets) // stored, but the answer comes too late
			<-r.Context().Done()
		default:
			return false
		}
		return true
	})
	cfg := httpConfig(in.URL)
	cfg.Concurrency, cfg.BatchMaxRecords, cfg.Timeout = 4, 50, 200*time.Millisecond
	cfg.BreakerFailures, cfg.BackoffFirstMinuteMax = 4, 20*time.Millisecond
	cfg.Compression = "gzip"
	r := startHTTP(t, cfg, n, 50)
	r.wait(t, n)
	var rejected []int64
	for o := int64(0); o < int64(n); o += 997 {
		rejected = append(rejected, o)
	}
	in.checkComplete(t, n, rejected...)
	got := r.deadLettered(t)
	slices.Sort(got)
	if !slices.Equal(got, rejected) {
		t.Errorf("dead-lettered %v, want %v", got, rejected)
	}
}
