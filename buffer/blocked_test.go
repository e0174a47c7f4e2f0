package buffer

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// TestBlockedSince: only an Append that waits for space or for a failing
// write reports itself blocked, from when it began to wait; a slow
// Append (an fsync that takes its time) never does, and the clock stops
// as soon as a write goes through. The tailer lets go of deleted files on
// this signal alone.
func TestBlockedSince(t *testing.T) {
	t.Run("slow fsync", func(t *testing.T) {
		fs := &faultFS{}
		o := Options{Dir: t.TempDir(), Fsync: FsyncBatch, Cursors: []string{"a"}}
		l := testOpenFS(t, o, fs)
		defer l.Close()
		appendN(t, l, 0, 1, 1, 100)
		_, active := segNames(l)
		hook, held, release := holdFirst(active)
		fs.set(func(f *faultFS) { f.onSync = hook })
		done := make(chan error, 1)
		go func() { done <- l.Append(context.Background(), [][]byte{rec(1, 100)}) }()
		<-held
		if s := l.BlockedSince(); !s.IsZero() {
			t.Errorf("an Append held in fsync reports itself blocked since %v", s)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("full", func(t *testing.T) {
		l := testOpen(t, fullOptions(t, WhenFullBlock))
		defer l.Close()
		c, _ := l.Cursor("slow")
		fast, _ := l.Cursor("fast")
		before := time.Now()
		done := make(chan error, 1)
		go func() {
			var err error
			for i := 0; i < 2000 && err == nil; i += 50 { // ~400 KB: past the 256 KiB bound
				var recs [][]byte
				for j := i; j < i+50; j++ {
					recs = append(recs, rec(uint64(j), 200))
				}
				err = l.Append(context.Background(), recs)
			}
			done <- err
		}()
		waitFor(t, "the writer to block on the bound", func() bool { return l.Stats().Blocked })
		s := l.BlockedSince()
		if s.IsZero() || s.Before(before) || s.After(time.Now()) {
			t.Fatalf("blocked since %v, want a time since the test began (%v)", s, before)
		}
		for {
			drainCommit(t, c)
			drainCommit(t, fast)
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				if s := l.BlockedSince(); !s.IsZero() {
					t.Errorf("still blocked since %v after the appends went through", s)
				}
				return
			case <-time.After(time.Millisecond):
			}
		}
	})
	t.Run("disk error", func(t *testing.T) {
		fs := &faultFS{}
		l := testOpenFS(t, Options{Dir: t.TempDir(), Cursors: []string{"a"}}, fs)
		defer l.Close()
		fs.set(func(f *faultFS) { f.writeErr = syscall.ENOSPC })
		done := make(chan error, 1)
		go func() { done <- l.Append(context.Background(), [][]byte{rec(0, 100)}) }()
		waitFor(t, "a retry", func() bool { fs.mu.Lock(); defer fs.mu.Unlock(); return fs.writes >= 2 })
		if l.BlockedSince().IsZero() {
			t.Error("an Append retrying a failing write does not report itself blocked")
		}
		fs.set(func(f *faultFS) { f.writeErr = nil })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if s := l.BlockedSince(); !s.IsZero() {
			t.Errorf("still blocked since %v after the write went through", s)
		}
	})
}
