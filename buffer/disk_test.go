package buffer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func testOpenFS(t testing.TB, o Options, fs fileSystem) *Log {
	t.Helper()
	o = withTestHot(o)
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	l, err := open(o, fs)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return l
}

// diskErrGauge reads skiff_buffer_disk_error from the Log's registry.
func diskErrGauge(t testing.TB, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "skiff_buffer_disk_error" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no skiff_buffer_disk_error")
	return 0
}

// TestWriteErrorWaitsAndRecovers: a write failing with ENOSPC (after a
// short write) makes Append wait, shows in Err and the disk-error gauge,
// and once the fault clears the batch lands exactly once, with no torn
// frame left behind.
func TestWriteErrorWaitsAndRecovers(t *testing.T) {
	for name, fsync := range map[string]string{"batch": FsyncBatch, "interval": FsyncInterval} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			fs := &faultFS{}
			reg := prometheus.NewRegistry()
			o := Options{Dir: dir, Fsync: fsync, Cursors: []string{"a"}, Registerer: reg}
			l := testOpenFS(t, o, fs)
			appendN(t, l, 0, 10, 10, 100)
			fs.set(func(f *faultFS) { f.writeErr = syscall.ENOSPC })
			done := make(chan error)
			go func() { done <- l.Append(context.Background(), [][]byte{rec(10, 100), rec(11, 100)}) }()
			waitFor(t, "Err to report the disk error", func() bool { return errors.Is(l.Err(), syscall.ENOSPC) })
			if g := diskErrGauge(t, reg); g != 1 {
				t.Fatalf("disk error gauge %v, want 1", g)
			}
			waitFor(t, "a retry", func() bool { fs.mu.Lock(); defer fs.mu.Unlock(); return fs.writes >= 3 })
			fs.set(func(f *faultFS) { f.writeErr = nil })
			if err := <-done; err != nil {
				t.Fatalf("Append: %v", err)
			}
			if l.Err() != nil || diskErrGauge(t, reg) != 0 {
				t.Fatalf("error not cleared: %v", l.Err())
			}
			appendN(t, l, 12, 3, 3, 100)
			c, _ := l.Cursor("a")
			checkSeq(t, nums(drain(t, c)), 0, 15)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			// And on disk: reopen reads the same, nothing truncated.
			l = testOpen(t, o)
			defer l.Close()
			c, _ = l.Cursor("a")
			checkSeq(t, nums(drain(t, c)), 0, 15)
			if v := testutil.ToFloat64(l.m.truncated); v != 0 {
				t.Fatalf("%v bytes truncated at reopen", v)
			}
		})
	}
}

// TestAppendWaitHonoursCtx: while writes fail, Append returns ctx's error.
func TestAppendWaitHonoursCtx(t *testing.T) {
	fs := &faultFS{}
	l := testOpenFS(t, Options{Dir: t.TempDir()}, fs)
	defer l.Close()
	fs.set(func(f *faultFS) { f.writeErr = syscall.EROFS })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Append(ctx, [][]byte{rec(1, 10)}) }()
	waitFor(t, "Err", func() bool { return l.Err() != nil })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Append: %v", err)
	}
}

// TestFsyncFailureIsNotRetried: under batch, a failed fsync fails that
// attempt; the batch is rewritten in a new segment (never trusting the
// failed one) and lands exactly once.
func TestFsyncFailureIsNotRetried(t *testing.T) {
	dir := t.TempDir()
	fs := &faultFS{}
	o := Options{Dir: dir, Fsync: FsyncBatch, Cursors: []string{"a"}}
	l := testOpenFS(t, o, fs)
	appendN(t, l, 0, 5, 5, 100)
	segsBefore := len(segFiles(t, dir))
	fs.set(func(f *faultFS) { f.syncErr, f.syncFails = syscall.EIO, 1 })
	appendN(t, l, 5, 5, 5, 100)
	if n := len(segFiles(t, dir)); n != segsBefore+1 {
		t.Fatalf("segments %d -> %d, want a new one after the failed fsync", segsBefore, n)
	}
	c, _ := l.Cursor("a")
	checkSeq(t, nums(drain(t, c)), 0, 10)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = testOpen(t, o)
	defer l.Close()
	c, _ = l.Cursor("a")
	checkSeq(t, nums(drain(t, c)), 0, 10)
}

// TestSyncFailureWritesRecordsAgain: a failed fsync of the active segment
// is reported, the segment is sealed, and its fsync is never tried again
// (a retry can succeed over pages the kernel dropped). The next Sync, even
// with no append in between, writes the segment's records again into a
// new segment and fsyncs that before it reports success, so a checkpoint
// never skips records that no successful fsync covered. Readers see the
// records twice, never lose them.
func TestSyncFailureWritesRecordsAgain(t *testing.T) {
	dir := t.TempDir()
	fs := &faultFS{}
	l := testOpenFS(t, Options{Dir: dir, Cursors: []string{"a"}}, fs)
	defer l.Close()
	appendN(t, l, 0, 5, 5, 100)
	_, failed := segNames(l)
	fs.set(func(f *faultFS) { f.syncErr, f.syncFails = syscall.EIO, 1 })
	if err := l.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync: %v", err)
	}
	if l.Err() == nil {
		t.Fatal("Err is nil after a failed sync")
	}
	before := fs.syncs(failed)
	n := len(segFiles(t, dir))
	if err := l.Sync(); err != nil {
		t.Fatalf("Sync after the records were written again: %v", err)
	}
	if len(segFiles(t, dir)) != n+1 {
		t.Fatal("the records were not written again into a new segment")
	}
	if fs.syncs(failed) != before {
		t.Fatal("the failed fsync was tried again")
	}
	_, copies := segNames(l)
	if fs.syncs(copies) == 0 {
		t.Fatal("Sync succeeded before an fsync covered the copies")
	}
	c, _ := l.Cursor("a")
	got := nums(drain(t, c))
	checkSeq(t, got[:5], 0, 5)
	checkSeq(t, got[5:], 0, 5)
	appendN(t, l, 5, 5, 5, 100)
	if err := l.Sync(); err != nil || l.Err() != nil {
		t.Fatalf("Sync after recovery: %v / %v", err, l.Err())
	}
	checkSeq(t, nums(drain(t, c)), 5, 5)
}

// mountTmpfs mounts a small tmpfs on a new directory, or skips.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		skipUnprivileged(t, "needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		skipUnprivileged(t, "cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
		}
	})
	return dir
}

// TestRealDiskFull fills a real 2 MiB tmpfs with a bound larger than the
// volume: Append waits on ENOSPC, the condition shows, and when a sink
// consumes and GC frees space the append completes by itself.
func TestRealDiskFull(t *testing.T) {
	dir := mountTmpfs(t, "2m")
	l := testOpen(t, Options{Dir: dir, MaxBytes: 8 << 20, SegmentBytes: 256 << 10, Fsync: FsyncBatch, Cursors: []string{"a"}})
	defer l.Close()
	c, _ := l.Cursor("a")
	done := make(chan error)
	const total = 40000 // ~4.6 MiB framed: more than the volume
	go func() {
		var err error
		for i := 0; i < total && err == nil; i += 100 {
			var recs [][]byte
			for j := i; j < i+100; j++ {
				recs = append(recs, rec(uint64(j), 100))
			}
			err = l.Append(context.Background(), recs)
		}
		done <- err
	}()
	waitFor(t, "ENOSPC", func() bool { return errors.Is(l.Err(), syscall.ENOSPC) })
	var next uint64
	for next < total {
		recs, err := c.Next(context.Background(), 1000, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if recNum(r.Data) != next {
				t.Fatalf("record %d, want %d", recNum(r.Data), next)
			}
			next++
		}
		if err := c.Commit(recs[len(recs)-1].Pos); err != nil {
			t.Fatalf("Commit: %v", err) // cursor files are tiny; tmpfs has room once segments go
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Append: %v", err)
	}
	if l.Err() != nil {
		t.Fatalf("Err after recovery: %v", l.Err())
	}
}

// TestFullVolumeFreesConsumedActiveSegment: the volume fills below the
// bound (the application's files share it) while every record the buffer
// holds sits, consumed, in the active segment, and the sink waits for
// more. GC cannot delete an active segment, so without sealing it early
// the append would wait for ever; with it, the consumed segment goes (the
// waiting cursor lets go of its file) and the append completes.
func TestFullVolumeFreesConsumedActiveSegment(t *testing.T) {
	for _, fsync := range []string{FsyncInterval, FsyncBatch} {
		t.Run(fsync, func(t *testing.T) {
			dir := mountTmpfs(t, "2m")
			l := testOpen(t, Options{Dir: filepath.Join(dir, "buffer"), MaxBytes: 64 << 20, SegmentBytes: 8 << 20, Fsync: fsync, Cursors: []string{"a"}})
			defer l.Close()
			c, _ := l.Cursor("a")
			// The sink: reads and commits everything, as the delivery
			// loop does.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var consumed atomic.Uint64
			sinkDone := make(chan error, 1)
			go func() {
				for {
					recs, err := c.Next(ctx, 1000, 1<<20)
					if err != nil {
						sinkDone <- err
						return
					}
					for _, r := range recs {
						if n := recNum(r.Data); n != consumed.Load() {
							sinkDone <- fmt.Errorf("record %d, want %d", n, consumed.Load())
							return
						}
						consumed.Add(1)
					}
					if err := c.Commit(recs[len(recs)-1].Pos); err != nil {
						sinkDone <- err
						return
					}
				}
			}()
			appendN(t, l, 0, 1000, 100, 1000) // ~1 MiB, all in the active segment
			waitFor(t, "the sink to consume everything", func() bool { return consumed.Load() == 1000 })
			if s := l.Stats(); s.Segments != 1 {
				t.Fatalf("%d segments, want the active one alone", s.Segments)
			}
			// The application's file takes the rest of the volume but 64 KiB.
			fill, err := os.Create(filepath.Join(dir, "app.log"))
			if err != nil {
				t.Fatal(err)
			}
			defer fill.Close()
			chunk := make([]byte, 4096)
			for {
				if _, err := fill.Write(chunk); err != nil {
					break
				}
			}
			info, _ := fill.Stat()
			if err := fill.Truncate(info.Size() - 64<<10); err != nil {
				t.Fatal(err)
			}

			var recs [][]byte
			for i := range 256 { // 256 KiB: more than the volume has left
				recs = append(recs, rec(uint64(1000+i), 1000))
			}
			if err := l.Append(ctx, recs); err != nil {
				t.Fatalf("Append on a full volume whose only segment is consumed: %v", err)
			}
			waitFor(t, "the sink to read the new records", func() bool { return consumed.Load() == 1256 })
			cancel()
			if err := <-sinkDone; !errors.Is(err, context.Canceled) {
				t.Fatalf("sink: %v", err)
			}
		})
	}
}

// TestReadOnlyVolume opens a buffer on a volume that has become
// read-only: it starts, what is buffered is readable, appends wait with the
// condition shown, and complete once the volume is writable again.
func TestReadOnlyVolume(t *testing.T) {
	dir := mountTmpfs(t, "4m")
	o := Options{Dir: dir, MaxBytes: 2 << 20, Fsync: FsyncBatch, Cursors: []string{"a"}}
	l := testOpen(t, o)
	appendN(t, l, 0, 10, 10, 100)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		skipUnprivileged(t, "remount ro: %v: %s", err, out)
	}
	l = testOpen(t, o)
	defer l.Close()
	if !errors.Is(l.Err(), syscall.EROFS) {
		t.Fatalf("Err on a read-only volume: %v", l.Err())
	}
	c, _ := l.Cursor("a")
	recs, err := c.Next(context.Background(), 100, 1<<20)
	if err != nil || len(recs) != 10 {
		t.Fatalf("read on a read-only volume: %d records, %v", len(recs), err)
	}
	done := make(chan error)
	go func() { done <- l.Append(context.Background(), [][]byte{rec(10, 100)}) }()
	if out, err := exec.Command("mount", "-o", "remount,rw", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount rw: %v: %s", err, out)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if l.Err() != nil {
		t.Fatalf("Err after the volume is writable: %v", l.Err())
	}
	more, err := c.Next(context.Background(), 100, 1<<20)
	if err != nil || len(more) != 1 || recNum(more[0].Data) != 10 {
		t.Fatalf("after recovery: %v %v", more, err)
	}
	if err := c.Commit(more[0].Pos); err != nil {
		t.Fatal(err)
	}
}

// skipUnprivileged skips a test that needs root (mounts, another user)
// where it cannot run, or fails it when SKIFF_REQUIRE_PRIVILEGED=1, as
// .ci/run sets it: a CI that cannot exercise ENOSPC or EROFS must show.
func skipUnprivileged(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("SKIFF_REQUIRE_PRIVILEGED") == "1" {
		t.Fatalf("SKIFF_REQUIRE_PRIVILEGED=1, but: "+format, args...)
	}
	t.Skipf(format, args...)
}
