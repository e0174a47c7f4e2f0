package buffer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Benchmarks compare the buffer with a plain loop over the same bytes in
// the same run (the disk's speed varies by machine and hour). Records are
// 200 bytes. See docs/BENCHMARKS.md for figures and commands.

const benchRec = 200

func benchBatch(n int) [][]byte {
	recs := make([][]byte, n)
	for i := range recs {
		recs[i] = rec(uint64(i), benchRec)
	}
	return recs
}

// batch1MiB is how many framed 200-byte records make 1 MiB.
var batch1MiB = (1 << 20) / int(frameSize(benchRec))

func benchOpen(b *testing.B, fsync string) *Log {
	b.Helper()
	// No cursors: sealed segments are deleted as soon as the bound is
	// reached, so a long run never blocks.
	return testOpen(b, Options{Dir: b.TempDir(), MaxBytes: 1 << 30, Fsync: fsync})
}

// BenchmarkAppend: group commit at batch sizes 1, 64, 1024 and 1 MiB under
// each fsync policy. allocs/op is per batch.
func BenchmarkAppend(b *testing.B) {
	for _, fsync := range []string{FsyncBatch, FsyncInterval, FsyncNever} {
		for _, n := range []int{1, 64, 1024, batch1MiB} {
			b.Run(fmt.Sprintf("fsync=%s/batch=%d", fsync, n), func(b *testing.B) {
				l := benchOpen(b, fsync)
				defer l.Close()
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error)
				go func() { done <- l.Run(ctx) }()
				defer func() { cancel(); <-done }()
				recs := benchBatch(n)
				b.SetBytes(int64(n * benchRec))
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					if err := l.Append(ctx, recs); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// plainWriter writes to files of segBytes, like the buffer's segments,
// deleting each one when the next starts.
type plainWriter struct {
	dir  string
	f    *os.File
	n    int
	size int64
}

func (p *plainWriter) write(b []byte, sync bool) error {
	if p.f == nil || p.size+int64(len(b)) > maxSegmentBytes {
		if p.f != nil {
			if err := p.f.Close(); err != nil {
				return err
			}
			if err := os.Remove(p.f.Name()); err != nil {
				return err
			}
		}
		p.n++
		f, err := os.Create(filepath.Join(p.dir, fmt.Sprintf("plain%d", p.n)))
		if err != nil {
			return err
		}
		p.f, p.size = f, 0
	}
	if _, err := p.f.Write(b); err != nil {
		return err
	}
	p.size += int64(len(b))
	if sync {
		return datasync(p.f)
	}
	return nil
}

func (p *plainWriter) close() error {
	if p.f == nil {
		return nil
	}
	return p.f.Close()
}

// BenchmarkBatchFsync1MiB: Append with FsyncBatch and 1 MiB batches, and
// the baseline: write+fdatasync of 1 MiB. Target: buffer >= 80% of plain.
func BenchmarkBatchFsync1MiB(b *testing.B) {
	b.Run("buffer", func(b *testing.B) {
		l := benchOpen(b, FsyncBatch)
		defer l.Close()
		recs := benchBatch(batch1MiB)
		b.SetBytes(int64(batch1MiB) * frameSize(benchRec))
		for b.Loop() {
			if err := l.Append(context.Background(), recs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("plain", func(b *testing.B) {
		p := &plainWriter{dir: b.TempDir()}
		defer p.close()
		buf := make([]byte, int64(batch1MiB)*frameSize(benchRec))
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			if err := p.write(buf, true); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchTotal is the fixed size each iteration of the interval benchmark
// writes, large enough that page-cache writeback is part of the cost.
const benchTotal = 1 << 30

// BenchmarkInterval1GiB: 1 GiB appended in 1 MiB batches under
// FsyncInterval (with Run fsyncing every second), and the baseline: plain
// 1 MiB writes, no fsync. Target: buffer >= 70% of plain.
func BenchmarkInterval1GiB(b *testing.B) {
	b.Run("buffer", func(b *testing.B) {
		recs := benchBatch(batch1MiB)
		batchBytes := int64(batch1MiB) * frameSize(benchRec)
		b.SetBytes(benchTotal / batchBytes * batchBytes)
		for b.Loop() {
			b.StopTimer()
			l := testOpen(b, Options{Dir: b.TempDir(), MaxBytes: 2 * benchTotal})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			go func() { done <- l.Run(ctx) }()
			b.StartTimer()
			for written := int64(0); written+batchBytes <= benchTotal; written += batchBytes {
				if err := l.Append(ctx, recs); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			cancel()
			<-done
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
			if err := os.RemoveAll(l.o.Dir); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	b.Run("plain", func(b *testing.B) {
		batchBytes := int64(batch1MiB) * frameSize(benchRec)
		buf := make([]byte, batchBytes)
		b.SetBytes(benchTotal / batchBytes * batchBytes)
		for b.Loop() {
			b.StopTimer()
			dir := b.TempDir()
			b.StartTimer()
			// Same file sizes as the buffer's segments, none deleted.
			var files []*os.File
			var f *os.File
			var size int64
			for written := int64(0); written+batchBytes <= benchTotal; written += batchBytes {
				if f == nil || size+batchBytes > maxSegmentBytes {
					var err error
					f, err = os.Create(filepath.Join(dir, fmt.Sprintf("plain%d", len(files))))
					if err != nil {
						b.Fatal(err)
					}
					files, size = append(files, f), 0
				}
				if _, err := f.Write(buf); err != nil {
					b.Fatal(err)
				}
				size += batchBytes
			}
			b.StopTimer()
			for _, f := range files {
				_ = f.Close()
			}
			if err := os.RemoveAll(dir); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
}

// BenchmarkRead256MiB: a cursor reading 256 MiB of 200-byte records in
// 1 MiB batches, and the baseline: sequential 1 MiB reads of the same
// segment files. Both from the page cache. Target: cursor >= 70% of plain.
// allocs/op is per 256 MiB.
func BenchmarkRead256MiB(b *testing.B) {
	const total = 256 << 20
	dir := b.TempDir()
	o := Options{Dir: dir, MaxBytes: 2 * total, Fsync: FsyncNever, Cursors: []string{"r"}}
	l := testOpen(b, o)
	recs := benchBatch(batch1MiB)
	batchBytes := int64(batch1MiB) * frameSize(benchRec)
	var written int64
	for ; written+batchBytes <= total; written += batchBytes {
		if err := l.Append(context.Background(), recs); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	var fileBytes int64
	for _, s := range segFiles(b, dir) {
		info, _ := os.Stat(s)
		fileBytes += info.Size()
	}
	b.Run("cursor", func(b *testing.B) {
		b.SetBytes(fileBytes)
		b.ReportAllocs()
		done, cancel := context.WithCancel(context.Background())
		cancel() // Next returns what is readable, then ctx.Err()
		for b.Loop() {
			b.StopTimer()
			_ = os.Remove(filepath.Join(dir, "r"+cursorSuffix))
			l := testOpen(b, o)
			c, _ := l.Cursor("r")
			b.StartTimer()
			var n int
			for {
				recs, err := c.Next(done, 1<<20, 1<<20)
				if err != nil {
					break
				}
				n += len(recs)
			}
			b.StopTimer()
			if n != int(written/frameSize(benchRec)) {
				b.Fatalf("read %d records", n)
			}
			_ = l.Close()
			b.StartTimer()
		}
	})
	b.Run("plain", func(b *testing.B) {
		b.SetBytes(fileBytes)
		b.ReportAllocs()
		buf := make([]byte, 1<<20)
		for b.Loop() {
			for _, s := range segFiles(b, dir) {
				f, err := os.Open(s)
				if err != nil {
					b.Fatal(err)
				}
				for {
					n, err := f.Read(buf)
					if n == 0 || err != nil {
						break
					}
				}
				_ = f.Close()
			}
		}
	})
}
