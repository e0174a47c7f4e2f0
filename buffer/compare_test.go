package buffer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The Compare benchmarks interleave the buffer and the plain baseline step
// by step, so that the noise of a shared machine hits both alike, and
// report both throughputs and their ratio (buffer/plain).

func reportCompare(b *testing.B, bytes int64, buf, plain time.Duration) {
	b.ReportMetric(float64(bytes)/buf.Seconds()/1e6, "buffer-MB/s")
	b.ReportMetric(float64(bytes)/plain.Seconds()/1e6, "plain-MB/s")
	b.ReportMetric(plain.Seconds()/buf.Seconds(), "ratio")
}

// BenchmarkCompareBatchFsync: 1 MiB Append under FsyncBatch against
// write+fdatasync of 1 MiB. Target ratio >= 0.8.
func BenchmarkCompareBatchFsync(b *testing.B) {
	l := benchOpen(b, FsyncBatch)
	defer l.Close()
	p := &plainWriter{dir: b.TempDir()}
	defer p.close()
	recs := benchBatch(batch1MiB)
	raw := make([]byte, int64(batch1MiB)*frameSize(benchRec))
	var tb, tp time.Duration
	var bytes int64
	for b.Loop() {
		t0 := time.Now()
		if err := l.Append(context.Background(), recs); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := p.write(raw, true); err != nil {
			b.Fatal(err)
		}
		tb, tp = tb+t1.Sub(t0), tp+time.Since(t1)
		bytes += int64(len(raw))
	}
	reportCompare(b, bytes, tb, tp)
}

// BenchmarkCompareInterval: 1 GiB per iteration in 1 MiB Appends under
// FsyncInterval (Run fsyncing every second) against plain 1 MiB writes
// without fsync, interleaved. Target ratio >= 0.7.
func BenchmarkCompareInterval(b *testing.B) {
	recs := benchBatch(batch1MiB)
	compareInterval(b, func(ctx context.Context, l *Log) error { return l.Append(ctx, recs) })
}

// BenchmarkCompareIntervalBatch is BenchmarkCompareInterval appending
// through AppendBatch, as the tailer does. The Batch is built once, like
// recs above; every AppendBatch call still computes all its checksums,
// since it refills the headers (TestAppendBatchRefillsHeaders).
func BenchmarkCompareIntervalBatch(b *testing.B) {
	var bt Batch
	for _, r := range benchBatch(batch1MiB) {
		bt.Add(r)
	}
	compareInterval(b, func(ctx context.Context, l *Log) error { return l.AppendBatch(ctx, &bt) })
}

func compareInterval(b *testing.B, appendMiB func(context.Context, *Log) error) {
	raw := make([]byte, int64(batch1MiB)*frameSize(benchRec))
	var tb, tp time.Duration
	var bytes int64
	for b.Loop() {
		l := testOpen(b, Options{Dir: b.TempDir(), MaxBytes: 2 * benchTotal})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- l.Run(ctx) }()
		p := &plainWriter{dir: b.TempDir()}
		for written := int64(0); written+int64(len(raw)) <= benchTotal; written += int64(len(raw)) {
			t0 := time.Now()
			if err := appendMiB(ctx, l); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if p.f == nil || p.size+int64(len(raw)) > maxSegmentBytes {
				// Keep the plain files, like the buffer keeps segments.
				if p.f != nil {
					_ = p.f.Close()
				}
				p.n++
				f, err := os.Create(filepath.Join(p.dir, fmt.Sprintf("plain%d", p.n)))
				if err != nil {
					b.Fatal(err)
				}
				p.f, p.size = f, 0
			}
			if _, err := p.f.Write(raw); err != nil {
				b.Fatal(err)
			}
			p.size += int64(len(raw))
			tb, tp = tb+t1.Sub(t0), tp+time.Since(t1)
			bytes += int64(len(raw))
		}
		b.StopTimer()
		cancel()
		<-done
		_ = p.close()
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
		_ = os.RemoveAll(l.o.Dir)
		_ = os.RemoveAll(p.dir)
		b.StartTimer()
	}
	reportCompare(b, bytes, tb, tp)
}

// BenchmarkCompareRead: a cursor reading 256 MiB of 200-byte records in
// 1 MiB batches against sequential 1 MiB reads of the same segment files,
// alternating whole passes. "cold" drops the files from the page cache
// before each pass (fadvise DONTNEED), so both read the disk; "warm" reads
// the page cache, where the plain loop is a memcpy into one hot buffer.
// The "-release" variants hand each batch back with Release once counted,
// as a consumer that recycles batch memory would. Target ratio >= 0.7.
func BenchmarkCompareRead(b *testing.B) {
	const total = 256 << 20
	dir := b.TempDir()
	o := Options{Dir: dir, MaxBytes: 2 * total, Fsync: FsyncBatch, Cursors: []string{"r"}}
	l := testOpen(b, o)
	recs := benchBatch(batch1MiB)
	batchBytes := int64(batch1MiB) * frameSize(benchRec)
	for written := int64(0); written+batchBytes <= total; written += batchBytes {
		if err := l.Append(context.Background(), recs); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	var fileBytes int64
	segs := segFiles(b, dir)
	for _, s := range segs {
		info, _ := os.Stat(s)
		fileBytes += info.Size()
	}
	for _, v := range []struct {
		name          string
		cold, release bool
	}{{"warm", false, false}, {"cold", true, false}, {"warm-release", false, true}, {"cold-release", true, true}} {
		cold := v.cold
		b.Run(v.name, func(b *testing.B) {
			done, cancel := context.WithCancel(context.Background())
			cancel() // Next returns what is readable, then ctx.Err()
			buf := make([]byte, 1<<20)
			var tb, tp time.Duration
			var bytes int64
			for b.Loop() {
				b.StopTimer()
				_ = os.Remove(filepath.Join(dir, "r"+cursorSuffix))
				l := testOpen(b, o)
				c, _ := l.Cursor("r")
				if cold {
					dropCache(b, segs)
				}
				b.StartTimer()
				t0 := time.Now()
				n := 0
				for {
					recs, err := c.Next(done, 1<<20, 1<<20)
					if err != nil {
						break
					}
					n += len(recs)
					if v.release {
						c.Release(recs)
					}
				}
				t1 := time.Now()
				b.StopTimer()
				if n != total/int(batchBytes)*batch1MiB {
					b.Fatalf("read %d records", n)
				}
				if cold {
					dropCache(b, segs)
				}
				b.StartTimer()
				t2 := time.Now()
				for _, s := range segs {
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
				tb, tp = tb+t1.Sub(t0), tp+time.Since(t2)
				bytes += fileBytes
				b.StopTimer()
				_ = l.Close()
				b.StartTimer()
			}
			reportCompare(b, bytes, tb, tp)
		})
	}
}
