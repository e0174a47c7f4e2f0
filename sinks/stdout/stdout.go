package stdout

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/skiff-dev/skiff/internal/config"
	"github.com/skiff-dev/skiff/internal/record"
	"github.com/skiff-dev/skiff/sinks"
)

// Sink writes one record per line to a writer (the process's stdout): the
// JSON form, or the raw line. It is the default sink and the one the
// built-in example uses.
type Sink struct {
	w    io.Writer
	raw  bool
	enc  sinks.Deps // only Encoder is used
	mu   sync.Mutex // serialises writes so that lines of two batches never interleave
	line []byte     // reused output buffer; guarded by mu
	// parts caches the JSON of the file of the last record; guarded by mu
	parts record.FileParts
}

var _ sinks.Sink = (*Sink)(nil)

// New returns a stdout sink writing to w.
func New(w io.Writer, cfg config.Stdout, d sinks.Deps) *Sink {
	return &Sink{w: w, raw: cfg.Format == "raw", enc: d}
}

// Send writes the whole batch with one write call, so that a reader of a
// pipe sees whole lines, and reports the write's error. It is safe for
// concurrent use.
func (s *Sink) Send(ctx context.Context, b *sinks.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	buf := s.line[:0]
	for i := range b.Records {
		r := &b.Records[i]
		if s.raw {
			buf = append(buf, r.Message...)
		} else {
			buf = s.enc.Encoder.AppendJSONWith(buf, r, &s.parts)
		}
		buf = append(buf, '\n')
	}
	// Keep a big buffer only while batches are big: one burst must not pin
	// many MiB for the life of the process.
	if cap(buf) <= 4<<20 {
		s.line = buf
	} else {
		s.line = nil
	}
	if _, err := s.w.Write(buf); err != nil {
		return &sinks.SendError{Kind: sinks.KindNetwork, Err: fmt.Errorf("write stdout: %w", err)}
	}
	return nil
}

// Close does nothing: the process owns stdout.
func (s *Sink) Close() error { return nil }
