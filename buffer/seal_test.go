package buffer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// sealOptions: 16 KiB segments, 78 records of 200 bytes each.
func sealOptions(t *testing.T, fsync string) Options {
	return Options{Dir: t.TempDir(), MaxBytes: 64 << 20, SegmentBytes: 16 << 10, Fsync: fsync, Cursors: []string{"a"}}
}

// segNames returns the file names of the sealed segments and the active one.
func segNames(l *Log) (sealed []string, active string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.segs {
		sealed = append(sealed, segmentName(s.id))
	}
	return sealed[:len(sealed)-1], sealed[len(sealed)-1]
}

// created is how many fsyncs the i-th segment of a new Log got when it was
// created: the first, created by Open, is made durable at once; those
// created by a roll under interval or never wait for Sync.
func created(i int) int {
	if i == 0 {
		return 1
	}
	return 0
}

// TestSealLeavesFsyncToSync: under interval, sealing a segment does not
// fsync it on the append path; the next Sync fsyncs the sealed segments,
// oldest first, then the active one. Under never nothing fsyncs them.
func TestSealLeavesFsyncToSync(t *testing.T) {
	for name, fsync := range map[string]string{"interval": FsyncInterval, "never": FsyncNever} {
		t.Run(name, func(t *testing.T) {
			fs := &faultFS{}
			l := testOpenFS(t, sealOptions(t, fsync), fs)
			defer l.Close()
			appendN(t, l, 0, 1000, 50, 200) // 12 sealed
			sealed, active := segNames(l)
			if len(sealed) < 2 {
				t.Fatalf("%d sealed segments, want several", len(sealed))
			}
			for i, s := range sealed {
				if n := fs.syncs(s); n != created(i) {
					t.Fatalf("%s: %d fsyncs before Sync, want %d", s, n, created(i))
				}
			}
			fs.mu.Lock()
			before := len(fs.synced)
			fs.mu.Unlock()
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			fs.mu.Lock()
			got := append([]string(nil), fs.synced[before:]...)
			fs.mu.Unlock()
			want := append(append([]string(nil), sealed...), active)
			if fsync == FsyncNever {
				want = nil
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("Sync fsynced %v, want %v", got, want)
			}
		})
	}
}

// TestSealBoundsUnsynced: without any Sync, at most maxUnsynced sealed
// segments wait for an fsync; sealing one more fsyncs the oldest.
func TestSealBoundsUnsynced(t *testing.T) {
	fs := &faultFS{}
	l := testOpenFS(t, sealOptions(t, FsyncInterval), fs)
	defer l.Close()
	appendN(t, l, 0, 3000, 50, 200)
	sealed, _ := segNames(l)
	if len(sealed) <= maxUnsynced+2 {
		t.Fatalf("%d sealed segments, want more than %d", len(sealed), maxUnsynced+2)
	}
	for i, s := range sealed {
		want := created(i) + 1 // sealed
		if i >= len(sealed)-maxUnsynced {
			want = created(i) // still waiting
		}
		if n := fs.syncs(s); n != want {
			t.Fatalf("sealed segment %d of %d: %d fsyncs, want %d", i, len(sealed), n, want)
		}
	}
	l.syncMu.Lock()
	n := len(l.unsynced)
	l.syncMu.Unlock()
	if n != maxUnsynced {
		t.Fatalf("%d unsynced, want %d", n, maxUnsynced)
	}
}

// TestSyncReportsSealedFsyncFailure: when the fsync of a sealed segment
// fails, Sync fails and does not report the data durable; the failed fsync
// is not retried.
func TestSyncReportsSealedFsyncFailure(t *testing.T) {
	fs := &faultFS{}
	l := testOpenFS(t, sealOptions(t, FsyncInterval), fs)
	defer l.Close()
	appendN(t, l, 0, 700, 50, 200)
	sealed, _ := segNames(l)
	// The fsyncs of the two oldest sealed segments fail.
	fs.set(func(f *faultFS) { f.syncErr, f.syncFails = syscall.EIO, 2 })
	if err := l.Sync(); err == nil {
		t.Fatal("Sync succeeded over a failed fsync")
	}
	l.mu.Lock()
	durable := l.synced == l.written
	l.mu.Unlock()
	if durable {
		t.Fatal("synced advanced over a failed fsync")
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := fs.syncs(sealed[1]); n != 0 {
		t.Fatalf("%s: %d fsyncs, want none (the failed one is not retried)", sealed[1], n)
	}
	// The records of the two segments whose fsync failed were written
	// again, after the others: each of them is read twice, every other
	// record once.
	c, _ := l.Cursor("a")
	seen := map[uint64]int{}
	got := nums(drain(t, c))
	for _, n := range got {
		seen[n]++
	}
	twice := 0
	for n := range uint64(700) {
		switch seen[n] {
		case 1:
		case 2:
			twice++
		default:
			t.Fatalf("record %d read %d times", n, seen[n])
		}
	}
	if twice == 0 || len(got) != 700+twice {
		t.Fatalf("%d records read, %d of them twice: the failed segments' records were not written again", len(got), twice)
	}
}

// TestGCClosesUnsynced: a segment deleted while it waits for an fsync has
// its file closed at once, so that its blocks are freed (an open file
// keeps them after the unlink).
func TestGCClosesUnsynced(t *testing.T) {
	l := testOpen(t, sealOptions(t, FsyncInterval))
	defer l.Close()
	appendN(t, l, 0, 1000, 50, 200)
	c, _ := l.Cursor("a")
	recs := drain(t, c)
	if err := c.Commit(recs[len(recs)-1].Pos); err != nil {
		t.Fatal(err)
	}
	if s := l.Stats(); s.Segments != 1 {
		t.Fatalf("%d segments after committing everything, want 1", s.Segments)
	}
	l.syncMu.Lock()
	n := len(l.unsynced)
	l.syncMu.Unlock()
	if n != 0 {
		t.Fatalf("%d deleted segments still open", n)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	for _, fd := range fds {
		target, _ := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if strings.HasPrefix(target, l.o.Dir) && strings.HasSuffix(target, "(deleted)") {
			t.Fatalf("deleted segment still open: %s", target)
		}
	}
}

// TestCloseSyncsUnsynced: Close fsyncs the sealed segments waiting for it.
func TestCloseSyncsUnsynced(t *testing.T) {
	fs := &faultFS{}
	l := testOpenFS(t, sealOptions(t, FsyncInterval), fs)
	appendN(t, l, 0, 1000, 50, 200)
	sealed, _ := segNames(l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for i, s := range sealed {
		if n := fs.syncs(s); n != created(i)+1 {
			t.Fatalf("%s: %d fsyncs, want %d", s, n, created(i)+1)
		}
	}
}

// TestSyncCoversNewSegmentNames: under interval a segment created by a
// roll is not made durable on the append path (file or directory); the
// next Sync fsyncs the directory, once.
func TestSyncCoversNewSegmentNames(t *testing.T) {
	fs := &faultFS{}
	l := testOpenFS(t, sealOptions(t, FsyncInterval), fs)
	defer l.Close()
	appendN(t, l, 0, 10, 10, 200)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	before := fs.dirSyncCount()
	appendN(t, l, 10, 700, 50, 200) // several rolls
	if n := fs.dirSyncCount(); n != before {
		t.Fatalf("%d directory fsyncs on the append path", n-before)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := fs.dirSyncCount(); n != before+1 {
		t.Fatalf("Sync made %d directory fsyncs, want 1", n-before)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := fs.dirSyncCount(); n != before+1 {
		t.Fatalf("a Sync with nothing new fsynced the directory")
	}
}

// TestOpenSyncsNewestSealed: a process that crashed may have left the
// newest sealed segments unsynced; Open fsyncs them (and the tail), not
// the older ones.
func TestOpenSyncsNewestSealed(t *testing.T) {
	o := sealOptions(t, FsyncInterval)
	l := testOpen(t, o)
	appendN(t, l, 0, 3000, 50, 200)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	fs := &faultFS{}
	l = testOpenFS(t, o, fs)
	defer l.Close()
	sealed, active := segNames(l)
	for i, s := range sealed {
		want := 0
		if i >= len(sealed)-maxUnsynced {
			want = 1
		}
		if n := fs.syncs(s); n != want {
			t.Fatalf("sealed segment %d of %d: %d fsyncs at open, want %d", i, len(sealed), n, want)
		}
	}
	if n := fs.syncs(active); n != 1 {
		t.Fatalf("tail: %d fsyncs at open, want 1", n)
	}
}

// TestRunStartsWriteback: the writeback hints are not given on the append
// path but by Run. Without Run nothing is hinted and nothing breaks.
func TestRunStartsWriteback(t *testing.T) {
	fs := &faultFS{}
	o := sealOptions(t, FsyncInterval)
	o.SegmentBytes = 4 << 20
	l := testOpenFS(t, o, fs)
	defer l.Close()
	appendN(t, l, 0, 100000, 1000, 200) // 20 MiB
	if n := fs.hintedBytes(); n != 0 {
		t.Fatalf("%d bytes hinted without Run", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()
	defer func() { cancel(); <-done }()
	appendN(t, l, 100000, 50000, 1000, 200) // 10 MiB more: a hint is due
	waitFor(t, "Run to start writeback", func() bool { return fs.hintedBytes() > 0 })
}

// TestWritebackCoversSealed: a hint covers, once, what the sealed
// segments waiting for Sync got since their last hint, and the active
// segment.
func TestWritebackCoversSealed(t *testing.T) {
	fs := &faultFS{}
	o := sealOptions(t, FsyncInterval)
	o.FsyncInterval = time.Hour
	l := testOpenFS(t, o, fs)
	defer l.Close()
	appendN(t, l, 0, 1000, 50, 200) // 12 sealed segments
	l.writeback()
	var want int64
	l.mu.Lock()
	for _, s := range l.segs {
		want += s.size - segmentHeaderSize
	}
	l.mu.Unlock()
	if got := fs.hintedBytes(); got != want {
		t.Fatalf("hinted %d bytes, want %d", got, want)
	}
	l.writeback()
	if got := fs.hintedBytes(); got != want {
		t.Fatalf("hinted %d bytes after a second hint, want %d again", got, want)
	}
}

// TestRollDoesNotWaitForSync: while a Sync waits for the disk (its fsync
// of the active segment held), an append that fills the segment seals it
// and goes on into a new one: sealing only moves the file to the next
// Sync's list. The held Sync then reports success, and the next one
// covers the rest.
func TestRollDoesNotWaitForSync(t *testing.T) {
	fs := &faultFS{}
	l := testOpenFS(t, sealOptions(t, FsyncInterval), fs)
	defer l.Close()
	appendN(t, l, 0, 10, 10, 200)
	_, active := segNames(l)
	hook, held, release := holdFirst(active)
	fs.set(func(f *faultFS) { f.onSync = hook })
	syncDone := make(chan error, 1)
	go func() { syncDone <- l.Sync() }()
	<-held
	appended := make(chan error, 1)
	go func() {
		var err error
		for i := 10; i < 400 && err == nil; i += 10 { // 80 KB: several rolls of 16 KiB segments
			var recs [][]byte
			for j := i; j < i+10; j++ {
				recs = append(recs, rec(uint64(j), 200))
			}
			err = l.Append(context.Background(), recs)
		}
		appended <- err
	}()
	select {
	case err := <-appended:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		close(release)
		t.Fatal("appends that roll waited for a Sync's fsync")
	}
	if sealed, _ := segNames(l); len(sealed) < 3 {
		t.Fatalf("%d sealed segments, want several rolls", len(sealed))
	}
	close(release)
	if err := <-syncDone; err != nil {
		t.Fatalf("held Sync: %v", err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	durable := l.synced == l.written
	l.mu.Unlock()
	if !durable {
		t.Fatal("the next Sync did not cover the records appended meanwhile")
	}
	c, _ := l.Cursor("a")
	checkSeq(t, nums(drain(t, c)), 0, 400)
}

// TestSyncWaitsForRewrite: while one Sync writes the records of a failed
// segment again, another Sync must not report success (its fsyncs cover
// neither the failed segment nor the copies still being written); it
// returns errRewriting, and succeeds once the copies are durable.
func TestSyncWaitsForRewrite(t *testing.T) {
	fs := &faultFS{}
	l := testOpenFS(t, sealOptions(t, FsyncInterval), fs)
	defer l.Close()
	appendN(t, l, 0, 10, 10, 200)
	_, failed := segNames(l)
	fs.set(func(f *faultFS) { f.syncErr, f.syncFails = syscall.EIO, 1 })
	if err := l.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync: %v", err)
	}
	hook, held, release := holdFirst(failed)
	fs.set(func(f *faultFS) { f.onRead = hook })
	rewriting := make(chan error, 1)
	go func() { rewriting <- l.Sync() }()
	<-held // the rewrite is reading the failed segment back
	err := l.Sync()
	close(release)
	if !errors.Is(err, errRewriting) {
		t.Fatalf("Sync during the rewrite: %v, want errRewriting", err)
	}
	if err := <-rewriting; err != nil {
		t.Fatalf("Sync that wrote the records again: %v", err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestSealDuringSyncPass: while a Sync pass fsyncs the active segment's
// file, appends seal it and more than maxUnsynced segments after it, so
// that the seal path fsyncs it too and would close it. It must leave the
// closing to the pass: the pass's fsync then succeeds, and no record is
// taken for lost and written again.
func TestSealDuringSyncPass(t *testing.T) {
	fs := &faultFS{}
	l := testOpenFS(t, sealOptions(t, FsyncInterval), fs)
	defer l.Close()
	appendN(t, l, 0, 10, 10, 200)
	_, active := segNames(l)
	// Only the pass's fsync is held; the seal path's of the same file
	// goes through.
	hook, held, release := holdFirst(active)
	fs.set(func(f *faultFS) { f.onSync = hook })
	syncDone := make(chan error, 1)
	go func() { syncDone <- l.Sync() }()
	<-held
	// 16 KiB segments of 208-byte frames: 78 records each. Enough for
	// maxUnsynced+2 rolls, so that the pass's file is fsynced by the seal.
	n := 78 * (maxUnsynced + 3)
	appendN(t, l, 10, n, 10, 200)
	close(release)
	if err := <-syncDone; err != nil {
		t.Fatalf("Sync pass whose file the seal path also fsynced: %v", err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	c, _ := l.Cursor("a")
	checkSeq(t, nums(drain(t, c)), 0, 10+n)
}

// holdFirst returns a fault hook that blocks the first call for the file
// named name until release is closed, closing held when it starts; later
// calls, also concurrent ones from other paths, go through.
func holdFirst(name string) (hook func(string), held, release chan struct{}) {
	held, release = make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	return func(n string) {
		if n == name && first.CompareAndSwap(false, true) {
			close(held)
			<-release
		}
	}, held, release
}
