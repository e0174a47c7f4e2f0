package tailer

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/buffer"
)

// countingLog is the real buffer, counting what it accepted.
type countingLog struct {
	*buffer.Log
	n atomic.Int64
}

func (c *countingLog) AppendBatch(ctx context.Context, recs *buffer.Batch) error {
	if err := c.Log.AppendBatch(ctx, recs); err != nil {
		return err
	}
	c.n.Add(int64(recs.Len()))
	return nil
}

// BenchmarkIntoBuffer runs the whole tailer over a pre-written 100k-line
// file into a real buffer.Log with the default interval fsync; one op is
// one file, from Run's start to its return (final Sync and checkpoint).
func BenchmarkIntoBuffer(b *testing.B) {
	path := benchFile(b)
	st, _ := os.Stat(path)
	b.SetBytes(st.Size())
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), "buf")
		l, err := buffer.Open(buffer.Options{Dir: dir, MaxBytes: 1 << 30, Fsync: buffer.FsyncInterval})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ldone := make(chan error, 1)
		go func() { ldone <- l.Run(ctx) }()
		app := &countingLog{Log: l}
		tl, err := New(Options{Paths: []string{path}, DataDir: b.TempDir()}, app)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		tctx, tcancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- tl.Run(tctx) }()
		for app.n.Load() < benchLines {
			time.Sleep(100 * time.Microsecond)
		}
		tcancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if app.n.Load() != benchLines {
			b.Fatalf("appended %d", app.n.Load())
		}
		cancel()
		<-ldone
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
		os.RemoveAll(dir)
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N)*benchLines/b.Elapsed().Seconds(), "lines/s")
}
