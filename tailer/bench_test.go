package tailer

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/buffer"
)

// countAppender counts what it gets: the cheapest possible buffer.
type countAppender struct {
	recs  atomic.Int64
	bytes atomic.Int64
	w     *os.File // when set, each batch is also written here in one write
	buf   []byte
}

func (a *countAppender) AppendBatch(_ context.Context, recs *buffer.Batch) error {
	n := 0
	for i := range recs.Len() {
		n += len(recs.Record(i))
	}
	if a.w != nil {
		a.buf = a.buf[:0]
		for i := range recs.Len() {
			a.buf = append(a.buf, recs.Record(i)...)
		}
		if _, err := a.w.Write(a.buf); err != nil {
			return err
		}
	}
	a.recs.Add(int64(recs.Len()))
	a.bytes.Add(int64(n))
	return nil
}

func (a *countAppender) Sync() error { return nil }

const benchLines = 100000

// benchFile writes benchLines lines of 200 bytes (newline included).
func benchFile(b *testing.B) string {
	path := filepath.Join(b.TempDir(), "bench.log")
	var sb strings.Builder
	line := strings.Repeat("x", 199) + "\n"
	for i := 0; i < benchLines; i++ {
		sb.WriteString(line)
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkReadPath measures the hot path alone (read, split, encode,
// Append) on one goroutine: one op is one pass over a 100k-line file in
// the page cache.
func BenchmarkReadPath(b *testing.B) {
	for _, sink := range []string{"count", "write"} {
		b.Run(sink, func(b *testing.B) {
			path := benchFile(b)
			app := &countAppender{}
			if sink == "write" {
				w, err := os.Create(filepath.Join(b.TempDir(), "out"))
				if err != nil {
					b.Fatal(err)
				}
				defer w.Close()
				app.w = w
			}
			tl, err := New(Options{Paths: []string{path}, DataDir: b.TempDir()}, app)
			if err != nil {
				b.Fatal(err)
			}
			file, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			st, _ := file.Stat()
			f := newFollower(keyOf(st), path, 0, file, time.Now())
			defer f.closeFile()
			ctx := context.Background()
			b.SetBytes(st.Size())
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				f.setOff(0)
				for {
					eof, err := tl.readFile(ctx, f, -1)
					if err != nil {
						b.Fatal(err)
					}
					if eof {
						break
					}
				}
				if err := tl.flush(ctx); err != nil {
					b.Fatal(err)
				}
				if w := app.w; w != nil && i%10 == 9 {
					_ = w.Truncate(0) // keep the output file small
					_, _ = w.Seek(0, 0)
				}
			}
			b.StopTimer()
			if got := app.recs.Load(); got != int64(b.N)*benchLines {
				b.Fatalf("appended %d records, want %d", got, int64(b.N)*benchLines)
			}
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N)*benchLines/sec, "lines/s")
		})
	}
}

// BenchmarkRun measures the whole tailer: discovery, open, read, append,
// checkpoint and shutdown, per 100k-line file.
func BenchmarkRun(b *testing.B) {
	path := benchFile(b)
	st, _ := os.Stat(path)
	b.SetBytes(st.Size())
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		app := &countAppender{}
		tl, err := New(Options{Paths: []string{path}, DataDir: b.TempDir()}, app)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- tl.Run(ctx) }()
		for app.recs.Load() < benchLines {
			time.Sleep(100 * time.Microsecond)
		}
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*benchLines/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkIdleFiles reports the CPU the tailer spends per second of
// wall time following 1,000 files that do not change (polls and checks
// alone). One op is one second.
func BenchmarkIdleFiles(b *testing.B) {
	dir := b.TempDir()
	for i := 0; i < 1000; i++ {
		if err := os.WriteFile(filepath.Join(dir, "f"+strconv.Itoa(i)+".log"), []byte("line\n"), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	app := &countAppender{}
	tl, err := New(Options{Paths: []string{filepath.Join(dir, "*.log")}, DataDir: b.TempDir()}, app)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tl.Run(ctx) }()
	if err := tl.WaitQuiet(ctx, 500*time.Millisecond); err != nil {
		b.Fatal(err)
	}
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		time.Sleep(time.Second)
	}
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) * time.Nanosecond
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/s")
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
