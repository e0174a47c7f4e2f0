package sinks

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/skiff-dev/skiff/internal/record"
)

// memSource is an in-memory Source[int]: position i means "the first i
// entries". It implements Lagger; wrap it in noLag to hide that.
type memSource struct {
	mu      sync.Mutex
	data    [][]byte
	read    int
	commits []int
	avail   chan struct{} // closed and replaced by push
}

func newMemSource(data ...[]byte) *memSource {
	return &memSource{data: data, avail: make(chan struct{})}
}

func (s *memSource) push(data ...[]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data = append(s.data, data...)
	close(s.avail)
	s.avail = make(chan struct{})
}

func (s *memSource) Next(ctx context.Context, maxRecords, maxBytes int) ([]Entry[int], error) {
	for {
		s.mu.Lock()
		if s.read < len(s.data) {
			var es []Entry[int]
			size := 0
			for s.read < len(s.data) && len(es) < maxRecords {
				d := s.data[s.read]
				if len(es) > 0 && size+len(d) > maxBytes {
					break
				}
				size += len(d)
				s.read++
				es = append(es, Entry[int]{Pos: s.read, Data: d})
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

func (s *memSource) Commit(pos int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.commits); n > 0 && pos <= s.commits[n-1] {
		return fmt.Errorf("commit %d after %d", pos, s.commits[n-1])
	}
	s.commits = append(s.commits, pos)
	return nil
}

func (s *memSource) Lag() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.data) - s.committedLocked())
}

func (s *memSource) committed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.committedLocked()
}

func (s *memSource) committedLocked() int {
	if len(s.commits) == 0 {
		return 0
	}
	return s.commits[len(s.commits)-1]
}

// noLag hides memSource's Lag.
type noLag struct{ s *memSource }

func (n noLag) Next(ctx context.Context, r, b int) ([]Entry[int], error) { return n.s.Next(ctx, r, b) }
func (n noLag) Commit(p int) error                                       { return n.s.Commit(p) }

// testRecord is record i of a test stream: offset i, message "line i"
// padded to size bytes when size > 0.
func testRecord(i, size int) []byte {
	msg := fmt.Appendf(nil, "line %d ", i)
	for len(msg) < size {
		msg = append(msg, 'x')
	}
	r := record.Record{Collected: time.Now(), Source: 0xabc, Offset: int64(i), Path: []byte("/var/log/app.log"), Message: msg}
	return r.AppendBinary(nil)
}

func testRecords(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = testRecord(i, size)
	}
	return out
}

// funcSink is a Sink whose Send is a function.
type funcSink func(ctx context.Context, b *Batch) error

func (f funcSink) Send(ctx context.Context, b *Batch) error { return f(ctx, b) }
func (f funcSink) Close() error                             { return nil }

// offsets collects the offsets of delivered records, counting duplicates.
type offsets struct {
	mu   sync.Mutex
	seen map[int64]int
}

func (o *offsets) add(b *Batch) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.seen == nil {
		o.seen = map[int64]int{}
	}
	for _, r := range b.Records {
		o.seen[r.Offset]++
	}
}

func (o *offsets) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.seen)
}
