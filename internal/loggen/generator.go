package loggen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// RotateMode selects how a Generator rotates a file that reached
// Options.RotateBytes.
type RotateMode int

const (
	// RotateRename renames path to path.1 (after shifting path.1 to path.2
	// and so on, dropping path.<Keep>) and creates a new path, the way
	// kubelet and logrotate's default do. With Keep 0 the file is unlinked.
	RotateRename RotateMode = iota
	// RotateCopyTruncate copies path to path.1 (after the same shift) and
	// truncates path to zero, the way logrotate's copytruncate does.
	RotateCopyTruncate
)

// ParseRotateMode maps "rename" and "copytruncate" to a RotateMode.
func ParseRotateMode(s string) (RotateMode, error) {
	switch s {
	case "rename":
		return RotateRename, nil
	case "copytruncate":
		return RotateCopyTruncate, nil
	}
	return 0, fmt.Errorf("rotation mode %q is not accepted (accepted: rename, copytruncate)", s)
}

// Stream is one sequence of lines written to one file.
type Stream struct {
	// ID is the stream id written into every line; see ValidStream.
	ID string
	// Path is the file appended to (created, with its directory, if
	// absent), or "-" for stdout.
	Path string
}

// Options configures a Generator. The zero value of each field is a
// documented default.
type Options struct {
	Streams []Stream
	Format  Format
	// Size is the length of a line without its newline; lines are never
	// shorter than their header (about 40 bytes).
	Size int
	// Rate is lines per second per stream; 0 writes as fast as possible.
	Rate float64
	// Lines stops each stream after this many lines; 0 means no limit.
	Lines uint64
	// Duration stops the generator after this long; 0 means no limit.
	Duration time.Duration
	// Timestamp adds the ts field to every line.
	Timestamp bool
	// RotateBytes rotates a file before a line would take it past this
	// size; 0 never rotates.
	RotateBytes int64
	// Keep is how many rotated files (path.1 … path.<Keep>) are kept.
	Keep       int
	RotateMode RotateMode
	// BufferBytes is the write buffer per stream; 0 means 256 KiB. With
	// Rate > 0 the buffer is flushed whenever the generator waits, so
	// lines reach the file when they are due.
	BufferBytes int
	// Stdout receives the lines of a stream whose Path is "-"; nil means
	// os.Stdout.
	Stdout io.Writer
}

// Stats is a stream's progress so far.
type Stats struct {
	Stream    Stream
	Lines     uint64
	Bytes     int64
	Rotations int
}

// Generator writes Options.Streams concurrently, one goroutine per stream
// while Run runs.
type Generator struct {
	opts  Options
	stats []streamStats
}

type streamStats struct {
	lines, bytes, rotations atomic.Int64
}

// New validates opts and returns a Generator. It opens nothing.
func New(opts Options) (*Generator, error) {
	var errs []error
	if len(opts.Streams) == 0 {
		errs = append(errs, errors.New("no streams"))
	}
	ids, paths, stdout := map[string]bool{}, map[string]bool{}, 0
	for _, s := range opts.Streams {
		if !ValidStream(s.ID) {
			errs = append(errs, fmt.Errorf("stream id %q is not accepted (accepted: 1-64 bytes of A-Z a-z 0-9 _ . -)", s.ID))
		}
		if ids[s.ID] {
			errs = append(errs, fmt.Errorf("stream id %q is used twice", s.ID))
		}
		if s.Path == "" {
			errs = append(errs, fmt.Errorf("stream %q has no path", s.ID))
		}
		if s.Path == "-" {
			stdout++
		} else if paths[s.Path] {
			errs = append(errs, fmt.Errorf("path %q is used twice", s.Path))
		}
		ids[s.ID], paths[s.Path] = true, true
	}
	if stdout > 1 {
		errs = append(errs, errors.New("only one stream may write to stdout"))
	}
	if stdout > 0 && opts.RotateBytes > 0 {
		errs = append(errs, errors.New("stdout cannot be rotated"))
	}
	if opts.Size < 0 || opts.Size > 16<<20 {
		errs = append(errs, fmt.Errorf("line size %d is out of range (accepted: 0 to 16MiB)", opts.Size))
	}
	if opts.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate %g is negative", opts.Rate))
	}
	if opts.RotateBytes < 0 || opts.Keep < 0 || opts.Duration < 0 || opts.BufferBytes < 0 {
		errs = append(errs, errors.New("rotate bytes, keep, duration and buffer bytes must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if opts.BufferBytes == 0 {
		opts.BufferBytes = 256 << 10
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	return &Generator{opts: opts, stats: make([]streamStats, len(opts.Streams))}, nil
}

// Stats returns each stream's progress. Safe to call concurrently with Run.
func (g *Generator) Stats() []Stats {
	out := make([]Stats, len(g.stats))
	for i := range g.stats {
		s := &g.stats[i]
		out[i] = Stats{Stream: g.opts.Streams[i], Lines: uint64(s.lines.Load()), Bytes: s.bytes.Load(), Rotations: int(s.rotations.Load())}
	}
	return out
}

// Run writes every stream until its Lines are written, Duration has
// passed or ctx is done, flushes what it buffered, and closes the files.
// Stopping through ctx or Duration is not an error: every line counted in
// Stats was handed to the file. Run returns the first write error of each
// stream, joined; call it once.
func (g *Generator) Run(ctx context.Context) error {
	if g.opts.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.opts.Duration)
		defer cancel()
	}
	errs := make([]error, len(g.opts.Streams))
	var wg sync.WaitGroup
	for i := range g.opts.Streams {
		wg.Go(func() { errs[i] = g.runStream(ctx, i) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (g *Generator) runStream(ctx context.Context, i int) (err error) {
	s := g.opts.Streams[i]
	w := &streamWriter{opts: &g.opts, stats: &g.stats[i], path: s.Path}
	if err := w.open(); err != nil {
		return fmt.Errorf("stream %s: %w", s.ID, err)
	}
	defer func() {
		if cerr := w.close(); cerr != nil && err == nil {
			err = fmt.Errorf("stream %s: %w", s.ID, cerr)
		}
	}()
	if err := g.write(ctx, s, w); err != nil {
		return fmt.Errorf("stream %s: %w", s.ID, err)
	}
	return nil
}

func (g *Generator) write(ctx context.Context, s Stream, w *streamWriter) error {
	o := &g.opts
	var line []byte
	var timer *time.Timer
	start := time.Now()
	for seq := uint64(1); o.Lines == 0 || seq <= o.Lines; seq++ {
		if o.Rate > 0 {
			// Pace by the absolute schedule so that rounding and slow
			// writes do not accumulate drift; a late generator catches up
			// in a burst.
			due := start.Add(time.Duration(float64(seq-1) * float64(time.Second) / o.Rate))
			if wait := time.Until(due); wait > 0 {
				if err := w.flush(); err != nil {
					return err
				}
				if timer == nil {
					timer = time.NewTimer(wait)
					defer timer.Stop()
				} else {
					timer.Reset(wait)
				}
				select {
				case <-ctx.Done():
					return nil
				case <-timer.C:
				}
			}
		}
		if seq%1024 == 1 || o.Rate > 0 {
			select {
			case <-ctx.Done():
				return nil
			default:
			}
		}
		l := Line{Stream: s.ID, Seq: seq}
		if o.Timestamp {
			l.Time = time.Now()
		}
		line = AppendLine(line[:0], o.Format, l, o.Size)
		line = append(line, '\n')
		if err := w.writeLine(line); err != nil {
			return err
		}
	}
	return nil
}
