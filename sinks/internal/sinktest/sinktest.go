// Package sinktest holds what the tests of several sink packages share: an
// in-memory Source to run a delivery Loop over, test records, and helpers
// to run a Loop and wait for a condition. Tests only.
//
// The core package's own tests cannot import it (sinktest imports sinks),
// so they keep their in-package memSource.
package sinktest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skiff-dev/skiff/internal/record"
	"github.com/skiff-dev/skiff/sinks"
)

// MemSource is an in-memory sinks.Source[int]: position i means "the first
// i entries". It implements sinks.Lagger. Safe for concurrent use.
type MemSource struct {
	mu      sync.Mutex
	data    [][]byte
	read    int
	commits []int
	avail   chan struct{} // closed and replaced by Push
}

var (
	_ sinks.Source[int] = (*MemSource)(nil)
	_ sinks.Lagger      = (*MemSource)(nil)
)

// NewMemSource returns a MemSource holding data, records' binary forms.
func NewMemSource(data ...[]byte) *MemSource {
	return &MemSource{data: data, avail: make(chan struct{})}
}

// Push appends records, waking a blocked Next.
func (s *MemSource) Push(data ...[]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data = append(s.data, data...)
	close(s.avail)
	s.avail = make(chan struct{})
}

// Next implements sinks.Source.
func (s *MemSource) Next(ctx context.Context, maxRecords, maxBytes int) ([]sinks.Entry[int], error) {
	for {
		s.mu.Lock()
		if s.read < len(s.data) {
			var es []sinks.Entry[int]
			size := 0
			for s.read < len(s.data) && len(es) < maxRecords {
				d := s.data[s.read]
				if len(es) > 0 && size+len(d) > maxBytes {
					break
				}
				size += len(d)
				s.read++
				es = append(es, sinks.Entry[int]{Pos: s.read, Data: d})
			}
			s.mu.Unlock()
			return es, nil
		}
		ch := s.avail
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Commit implements sinks.Source; a position not after the last commit is
// an error.
func (s *MemSource) Commit(pos int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.commits); n > 0 && pos <= s.commits[n-1] {
		return fmt.Errorf("commit %d after %d", pos, s.commits[n-1])
	}
	s.commits = append(s.commits, pos)
	return nil
}

// Lag implements sinks.Lagger.
func (s *MemSource) Lag() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.data) - s.committedLocked())
}

// Committed is the last committed position (0 before any commit).
func (s *MemSource) Committed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.committedLocked()
}

func (s *MemSource) committedLocked() int {
	if len(s.commits) == 0 {
		return 0
	}
	return s.commits[len(s.commits)-1]
}

// Record is record i of a test stream, in binary form: offset i, message
// "line i" padded to size bytes when size > 0.
func Record(i, size int) []byte {
	msg := fmt.Appendf(nil, "line %d ", i)
	for len(msg) < size {
		msg = append(msg, 'x')
	}
	r := record.Record{Collected: time.Now(), Source: 0xabc, Offset: int64(i), Path: []byte("/var/log/app.log"), Message: msg}
	return r.AppendBinary(nil)
}

// Records are records 0 to n-1 of the test stream (see Record).
func Records(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = Record(i, size)
	}
	return out
}

// Decoded are records from to from+n-1 of the test stream (see Record),
// decoded.
func Decoded(from, n, size int) []record.Record {
	out := make([]record.Record, n)
	for i := range out {
		if err := out[i].Decode(Record(from+i, size)); err != nil {
			panic(err)
		}
	}
	return out
}

// ReadDeadLetters returns every line in dir's dead-letter files, parsed.
func ReadDeadLetters(t *testing.T, dir string) []map[string]any {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, n := range names {
		f, err := os.Open(n)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("%s: %v: %s", n, err, sc.Bytes())
			}
			out = append(out, m)
		}
		f.Close()
	}
	return out
}

// Metric is the value of the counter or gauge name in g whose labels
// include labels (name, value pairs), or 0 when there is none: what a
// test outside the core package reads of a Loop's metrics.
func Metric(t *testing.T, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

// RunLoop starts l.Run and returns a function that stops it and returns
// Run's error. The test's cleanup stops it too.
func RunLoop[P any](t *testing.T, l *sinks.Loop[P]) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// WaitUntil polls cond; in a synctest bubble the sleeps are virtual.
func WaitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
