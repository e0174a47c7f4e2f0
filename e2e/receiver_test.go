package e2e

import (
	"bufio"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/loggen"
)

// Fault modes of a receiver.
const (
	modeOK     = iota
	mode503    // answer 503 without Retry-After
	modeReset  // close the connection without answering
	mode429    // answer 429 with Retry-After: 1
	modeStall  // hold the request until the mode changes
	modeSlowOK // answer after a delay (beyond a short client timeout)
)

// receiver is an HTTP endpoint that takes skiff's ndjson and feeds every
// record's message to a loggen.Checker, with injectable faults.
type receiver struct {
	srv      *httptest.Server
	mode     atomic.Int32
	requests atomic.Int64
	mu       sync.Mutex
	checker  *loggen.Checker
	other    []string // messages that are not loggen lines
	records  int
	latency  []time.Duration // write time (ts field) → receipt, for lines that carry one
	last429  time.Time
	early    int // requests that arrived before a Retry-After had passed
	// sizes holds, for each request taken, its arrival and how many
	// loggen lines it carried.
	sizes []reqSize
}

type reqSize struct {
	at    time.Time
	lines int
}

// largestSince is the most loggen lines one request carried since t.
func (r *receiver) largestSince(t time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for i := len(r.sizes) - 1; i >= 0 && r.sizes[i].at.After(t); i-- {
		n = max(n, r.sizes[i].lines)
	}
	return n
}

func newReceiver(t testing.TB) *receiver {
	r := &receiver{checker: loggen.NewChecker()}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		r.mode.Store(modeOK)
		r.srv.CloseClientConnections()
		r.srv.Close()
	})
	return r
}

func (r *receiver) url() string { return r.srv.URL + "/ingest" }

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.requests.Add(1)
	now := time.Now()
	r.mu.Lock()
	// A request that arrives within 100ms of a 429 was already in flight
	// when the 429 left; one that arrives later but before the second of
	// Retry-After passed did not wait.
	if d := now.Sub(r.last429); !r.last429.IsZero() && d > 100*time.Millisecond && d < time.Second-50*time.Millisecond {
		r.early++
	}
	r.mu.Unlock()
	switch r.mode.Load() {
	case mode503:
		io.Copy(io.Discard, req.Body)
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	case modeReset:
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				if tc, ok := c.(*net.TCPConn); ok {
					tc.SetLinger(0) // RST, not FIN
				}
				c.Close()
				return
			}
		}
		w.WriteHeader(http.StatusBadGateway)
		return
	case mode429:
		io.Copy(io.Discard, req.Body)
		r.mu.Lock()
		r.last429 = time.Now()
		r.mu.Unlock()
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	case modeStall:
		for r.mode.Load() == modeStall {
			select {
			case <-req.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	case modeSlowOK:
		time.Sleep(3 * time.Second)
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		body = zr
	}
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 32<<20)
	var batch []shipped
	for sc.Scan() {
		var s shipped
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		batch = append(batch, s)
	}
	if sc.Err() != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	lines := 0
	for _, s := range batch {
		r.records++
		msg := []byte(s.Message)
		if s.Base64 != "" {
			msg, _ = base64.StdEncoding.DecodeString(s.Base64)
		}
		if l, err := loggen.Decode(msg); err == nil {
			lines++
			r.checker.Add(msg)
			if !l.Time.IsZero() {
				r.latency = append(r.latency, now.Sub(l.Time))
			}
		} else {
			r.other = append(r.other, string(msg))
		}
	}
	r.sizes = append(r.sizes, reqSize{now, lines})
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// distinct is how many distinct lines of stream arrived.
func (r *receiver) distinct(stream string) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.checker.Result(stream, 0).Distinct
}

// verify checks that every stream arrived whole.
func (r *receiver) verify(t *testing.T, want map[string]uint64, allowDuplicates bool) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.checker.Verify(want, allowDuplicates); err != nil {
		t.Fatal(err)
	}
}

func (r *receiver) duplicates(stream string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.checker.Result(stream, 0).Duplicates
}
