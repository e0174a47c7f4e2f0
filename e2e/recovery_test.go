package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Failure kinds of a faultyServer.
const (
	fail503     = "s503"    // 503 without Retry-After
	fail429     = "s429"    // 429 without Retry-After
	fail429RA   = "s429ra"  // 429 with Retry-After: 1
	failReset   = "reset"   // the connection is reset, no answer
	failRefused = "refused" // nothing listens on the port
	failHang    = "hang"    // the request is accepted and never answered
)

// faultyServer is an ndjson endpoint on a fixed loopback port that fails
// in one way while down, and records when each line first arrived.
type faultyServer struct {
	kind string
	addr string

	mu       sync.Mutex
	srv      *http.Server
	conns    map[net.Conn]bool
	down     bool
	first    map[int]time.Time // seq -> first arrival
	accepted []time.Time       // arrivals of the requests answered 2xx
	active   int               // requests being accepted
	maxAfter int               // most requests accepted at once since the last recovery
}

func newFaultyServer(t *testing.T, kind string) *faultyServer {
	s := &faultyServer{kind: kind, addr: freeAddr(t), conns: map[net.Conn]bool{}, first: map[int]time.Time{}}
	s.listen(t)
	t.Cleanup(func() {
		s.mu.Lock()
		srv := s.srv
		s.mu.Unlock()
		if srv != nil {
			srv.Close()
		}
	})
	return s
}

func (s *faultyServer) listen(t *testing.T) {
	var ln net.Listener
	var err error
	for range 100 { // the port was just ours; another process may hold it a moment
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen %s again: %v", s.addr, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(s.serve), ConnState: func(c net.Conn, st http.ConnState) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if st == http.StateClosed || st == http.StateHijacked {
			delete(s.conns, c)
		} else {
			s.conns[c] = true
		}
	}}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go srv.Serve(ln)
}

func (s *faultyServer) url() string { return "http://" + s.addr + "/ingest" }

// setDown starts or ends the outage.
func (s *faultyServer) setDown(t *testing.T, down bool) {
	s.mu.Lock()
	s.down = down
	if !down {
		s.maxAfter = 0
	}
	srv := s.srv
	s.mu.Unlock()
	if s.kind != failRefused {
		return
	}
	if down {
		srv.Close() // the listener and every connection
		return
	}
	s.listen(t)
}

func (s *faultyServer) serve(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	s.mu.Lock()
	down := s.down
	s.mu.Unlock()
	if down {
		switch s.kind {
		case fail503:
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusServiceUnavailable)
		case fail429:
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusTooManyRequests)
		case fail429RA:
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		case failReset:
			if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}
		case failHang:
			<-r.Context().Done() // never answered, even once the server is back
		}
		return
	}
	var seqs []int
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var rec shipped
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if n, ok := strings.CutPrefix(strings.Fields(rec.Message)[0], "seq="); ok {
			if v, err := strconv.Atoi(n); err == nil {
				seqs = append(seqs, v)
			}
		}
	}
	if sc.Err() != nil {
		return
	}
	s.mu.Lock()
	s.active++
	s.maxAfter = max(s.maxAfter, s.active)
	s.mu.Unlock()
	time.Sleep(5 * time.Millisecond) // an endpoint takes a moment: concurrent requests overlap
	s.mu.Lock()
	s.active--
	for _, v := range seqs {
		if _, ok := s.first[v]; !ok {
			s.first[v] = now
		}
	}
	s.accepted = append(s.accepted, now)
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// recovery reports, for an outage that ended at up after lines [0, n) had
// been written, when the first request after it was accepted and when
// the last of those lines had arrived (zero while some are missing).
func (s *faultyServer) recovery(up time.Time, n int) (firstOK, caughtUp time.Time, concurrency int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.accepted {
		if !a.Before(up) {
			firstOK = a
			break
		}
	}
	for i := range n {
		at, ok := s.first[i]
		if !ok {
			return firstOK, time.Time{}, s.maxAfter
		}
		if at.After(caughtUp) {
			caughtUp = at
		}
	}
	return firstOK, caughtUp, s.maxAfter
}

// TestRecoveryHTTP: one skiff with its default retry settings ships one
// steady stream to six HTTP endpoints, each failing in its own way
// (503, 429 with and without Retry-After, reset connections, refused
// connections, requests accepted and never answered) through outages of
// 1s, 15s and 2 minutes. After each, the first request the endpoint
// accepts comes within 2s of its return (5s after the 2-minute outage),
// the backlog then drains at full concurrency, and no line is lost.
func TestRecoveryHTTP(t *testing.T) {
	t.Parallel()
	outages := []time.Duration{time.Second, 15 * time.Second, 2 * time.Minute}
	if s := os.Getenv("SKIFF_RECOVERY_OUTAGES"); s != "" { // e.g. 1s,15s to try it quicker
		outages = nil
		for _, f := range strings.Split(s, ",") {
			d, err := time.ParseDuration(f)
			if err != nil {
				t.Fatal(err)
			}
			outages = append(outages, d)
		}
	}
	kinds := []string{fail503, fail429, fail429RA, failReset, failRefused, failHang}
	logs, data := t.TempDir(), t.TempDir()
	env := baseEnv(data, filepath.Join(logs, "*.log"))
	var names []string
	servers := map[string]*faultyServer{}
	for _, k := range kinds {
		servers[k] = newFaultyServer(t, k)
		names = append(names, k+":http")
		env["SKIFF_"+strings.ToUpper(k)+"_URL"] = servers[k].url()
	}
	env["SKIFF_SINKS"] = strings.Join(names, ",")
	env["SKIFF_LOG_LEVEL"] = "info"
	p := start(t, env)

	// A steady feed of 500 lines a second.
	var written atomic.Int64
	ctx, stopFeed := context.WithCancel(context.Background())
	feedDone := feedLines(t, ctx, logs, &written)
	defer func() { stopFeed(); <-feedDone }()

	waitCaughtUp := func(up time.Time, n int, limit time.Duration) {
		t.Helper()
		deadline := time.Now().Add(limit)
		for _, k := range kinds {
			for {
				if _, c, _ := servers[k].recovery(up, n); !c.IsZero() {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: lines written before %v still missing after %v", k, up.Format(time.TimeOnly), limit)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	warm := time.Now()
	time.Sleep(2 * time.Second)
	waitCaughtUp(warm, int(written.Load()), 30*time.Second)

	var report []string
	for _, outage := range outages {
		for _, k := range kinds {
			servers[k].setDown(t, true)
		}
		time.Sleep(outage)
		for _, k := range kinds {
			servers[k].setDown(t, false)
		}
		up := time.Now()
		n := int(written.Load())
		waitCaughtUp(up, n, time.Minute)
		bound := 2 * time.Second
		if outage > time.Minute {
			bound = 5 * time.Second
		}
		for _, k := range kinds {
			firstOK, caughtUp, conc := servers[k].recovery(up, n)
			resume, drained := firstOK.Sub(up), caughtUp.Sub(up)
			report = append(report, fmt.Sprintf("%-8s outage %-6v first accepted +%-7v backlog of %d lines done +%-7v concurrency %d",
				k, outage, resume.Round(time.Millisecond), n, drained.Round(time.Millisecond), conc))
			// Generous slack for a loaded machine: half the bound again.
			if resume > bound*3/2 {
				t.Errorf("%s: after a %v outage the first request was accepted %v after the endpoint was back, want within %v", k, outage, resume, bound)
			}
			// Full speed is what the machine gives: six sinks draining at
			// once under the race detector on two shared cores manage a few
			// thousand lines a second each; the bound allows 2,000.
			if limit := 10*time.Second + time.Duration(n)*time.Second/2000; drained > resume+limit {
				t.Errorf("%s: after a %v outage the backlog of %d lines took %v after the first accepted request, want within %v", k, outage, n, drained-resume, limit)
			}
			// The 15s and 2m backlogs span several batches: every slot
			// (CONCURRENCY, 2 by default) is used to drain them.
			if outage >= 15*time.Second && conc < 2 {
				t.Errorf("%s: the backlog after a %v outage drained with %d request(s) at a time, want 2", k, outage, conc)
			}
		}
	}
	stopFeed()
	<-feedDone
	n := int(written.Load())
	waitCaughtUp(time.Now(), n, time.Minute)
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
	t.Logf("recovery with the default settings, %d lines, none lost:\n%s", n, strings.Join(report, "\n"))
}
