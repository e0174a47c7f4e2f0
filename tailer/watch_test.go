package tailer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Without inotify (instance limit reached, a watch that cannot be added)
// the rescan takes over: new files, new directories and new lines are all
// still found, and the fallback shows in a metric.
func TestInotifyUnavailable(t *testing.T) {
	cases := map[string]struct {
		newWatcher func() (*fsnotify.Watcher, error)
	}{
		"instance limit reached": {newWatcher: func() (*fsnotify.Watcher, error) {
			return nil, fmt.Errorf("inotify_init1: %w", syscall.EMFILE)
		}},
		"watch limit reached": {newWatcher: func() (*fsnotify.Watcher, error) {
			// A closed watcher refuses every Add, as an exhausted
			// max_user_watches refuses with ENOSPC.
			w, err := fsnotify.NewWatcher()
			if err != nil {
				return nil, err
			}
			return w, w.Close()
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "a.log"), "a1\n")
			o := testOptions(t, filepath.Join(dir, "**", "*.log"))
			o.NewWatcher = tc.newWatcher
			app := &memAppender{}
			tl, stop := start(t, o, app)
			waitFor(t, "a1", func() bool { return app.count() == 1 })
			appendFile(t, filepath.Join(dir, "a.log"), "a2\n")
			writeFile(t, filepath.Join(dir, "new", "b.log"), "b1\n")
			waitFor(t, "a2 and b1", func() bool { return app.count() == 3 })
			if v := testutil.ToFloat64(tl.m.inotifyFallbk); v != 1 {
				t.Errorf("skiff_tailer_inotify_fallback = %v, want 1", v)
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// One inotify instance serves every pattern and directory.
func TestOneWatcher(t *testing.T) {
	dir := t.TempDir()
	var made atomic.Int32
	o := testOptions(t, filepath.Join(dir, "x", "**", "*.log"), filepath.Join(dir, "y", "*.log"))
	o.ScanInterval = time.Hour // only inotify can find the new files in time
	o.NewWatcher = func() (*fsnotify.Watcher, error) {
		made.Add(1)
		return fsnotify.NewWatcher()
	}
	app := &memAppender{}
	tl, stop := start(t, o, app)
	// The directories do not exist yet: their nearest existing parent is
	// watched, and each level is watched as it appears.
	time.Sleep(50 * time.Millisecond)
	writeFile(t, filepath.Join(dir, "x", "deep", "er", "a.log"), "a\n")
	writeFile(t, filepath.Join(dir, "y", "b.log"), "b\n")
	waitFor(t, "both files", func() bool { return app.count() == 2 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := made.Load(); n != 1 {
		t.Errorf("%d watchers created, want 1", n)
	}
	if v := testutil.ToFloat64(tl.m.inotifyFallbk); v != 0 {
		t.Errorf("skiff_tailer_inotify_fallback = %v, want 0", v)
	}
}

// openDeleted counts this process's descriptors of deleted files under dir.
func openDeleted(t *testing.T, dir string) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	n := 0
	for _, e := range ents {
		l, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err == nil && strings.HasPrefix(l, dir) && strings.HasSuffix(l, "(deleted)") {
			n++
		}
	}
	return n
}

func bigFile(t *testing.T, path string, lines int) {
	var b strings.Builder
	for i := 0; i < lines; i++ {
		b.WriteString(seqLine(i, 100))
	}
	writeFile(t, path, b.String())
}

// While Append blocks, a deleted file is held open only up to the hold
// limits, then released with its unread bytes counted.
func TestDeletedHoldUnderFullBuffer(t *testing.T) {
	cases := map[string]struct {
		holdTime  time.Duration
		holdBytes int64
	}{
		"hold time":  {holdTime: 100 * time.Millisecond, holdBytes: 1 << 40},
		"hold bytes": {holdTime: time.Hour, holdBytes: 1 << 10},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "app.log")
			bigFile(t, path, 40000) // ~6 MiB: far more than one batch
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			size := st.Size()
			o := testOptions(t, path)
			o.DeletedHoldTime, o.DeletedHoldBytes = tc.holdTime, tc.holdBytes
			app := &memAppender{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
			tl, stop := start(t, o, app)
			<-app.entered
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the deleted file released", func() bool { return openDeleted(t, dir) == 0 })
			dropped := testutil.ToFloat64(tl.m.dropped.WithLabelValues("deleted_unread"))
			if dropped <= 0 {
				t.Errorf("dropped_bytes_total{reason=deleted_unread} = %v, want > 0", dropped)
			}
			close(app.gate)
			// What was read before the release still ships.
			waitFor(t, "the released file forgotten", func() bool {
				tl.filesMu.Lock()
				defer tl.filesMu.Unlock()
				return len(tl.files) == 0
			})
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			_, repeated := seqCheck(app.messages(), 40000)
			if len(repeated) > 0 {
				t.Errorf("repeated %s", short(repeated))
			}
			// Every byte is either shipped or counted as dropped.
			var shipped int64
			for _, m := range app.messages() {
				shipped += int64(len(m)) + 1
			}
			dropped = testutil.ToFloat64(tl.m.dropped.WithLabelValues("deleted_unread"))
			if shipped+int64(dropped) != size {
				t.Errorf("shipped %d + dropped %v != file size %d", shipped, dropped, size)
			}
			t.Logf("shipped %d lines, dropped %v bytes", app.count(), dropped)
		})
	}
}

// TestDeletedFileUnderSlowAppender: an Append that takes its time (an
// fsync under SKIFF_BUFFER_FSYNC=batch) is not a full buffer. A file
// deleted while it is being read is read to its end, however low the hold
// limits: only an Appender that reports itself blocked lets the janitor
// drop a deleted file. (The janitor once took "an Append is in progress"
// for "the buffer is full" and dropped most of such a file.)
func TestDeletedFileUnderSlowAppender(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	const n = 20000
	bigFile(t, path, n) // ~3 MiB: a dozen batches, 20 ms each
	o := testOptions(t, path)
	o.DeletedHoldTime, o.DeletedHoldBytes = 20*time.Millisecond, 1
	app := &memAppender{delay: 20 * time.Millisecond}
	tl, stop := start(t, o, app)
	waitFor(t, "the first batch", func() bool { return app.count() > 0 })
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deleted file let go", func() bool {
		tl.filesMu.Lock()
		defer tl.filesMu.Unlock()
		return len(tl.files) == 0
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	missing, repeated := seqCheck(app.messages(), n)
	if len(missing)+len(repeated) > 0 {
		t.Errorf("missing %s, repeated %s", short(missing), short(repeated))
	}
	if v := testutil.ToFloat64(tl.m.dropped.WithLabelValues("deleted_unread")); v != 0 {
		t.Errorf("dropped_bytes_total{reason=deleted_unread} = %v, want 0: the buffer was never blocked", v)
	}
}

// The hold limits count from when the Appender became blocked (or from
// when the file was found deleted during the block, if later), never from
// an earlier block.
func TestHoldExpired(t *testing.T) {
	o := &Options{DeletedHoldTime: time.Minute, DeletedHoldBytes: 1 << 20}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name        string
		since, seen time.Duration // after t0
		now         time.Duration
		unread      int64
		want        bool
	}{
		{"blocked less than the hold time", 0, 0, 59 * time.Second, 10, false},
		{"blocked the hold time", 0, 0, time.Minute, 10, true},
		{"deleted during the block: its own hold time", 0, 30 * time.Second, 80 * time.Second, 10, false},
		{"deleted during the block, held long enough", 0, 30 * time.Second, 90 * time.Second, 10, true},
		{"seen in an earlier block: the clock restarted", 2 * time.Minute, 0, 2*time.Minute + 30*time.Second, 10, false},
		{"many bytes unread, blocked only a moment", 0, 0, 100 * time.Millisecond, 2 << 20, false},
		{"many bytes unread, blocked a second", 0, 0, time.Second, 2 << 20, true},
	}
	for _, c := range cases {
		got := holdExpired(o, t0.Add(c.since), t0.Add(c.seen), t0.Add(c.now), c.unread)
		if got != c.want {
			t.Errorf("%s: holdExpired = %v, want %v", c.name, got, c.want)
		}
	}
}

// When Append blocks, reading stops: no more than one batch is read ahead.
func TestBackpressure(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	bigFile(t, path, 40000)
	o := testOptions(t, path)
	app := &memAppender{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	tl, stop := start(t, o, app)
	<-app.entered
	time.Sleep(100 * time.Millisecond) // give a wrong implementation time to read on
	tl.filesMu.Lock()
	var off int64
	for _, f := range tl.files {
		f.mu.Lock()
		off = f.off
		f.mu.Unlock()
	}
	tl.filesMu.Unlock()
	if off > 2*maxBatchBytes {
		t.Errorf("read %d bytes ahead while Append blocks", off)
	}
	close(app.gate)
	waitFor(t, "every line", func() bool { return app.count() == 40000 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	missing, repeated := seqCheck(app.messages(), 40000)
	if len(missing)+len(repeated) > 0 {
		t.Errorf("missing %s, repeated %s", short(missing), short(repeated))
	}
}

// An inotify queue overflow hands discovery to the rescan for good.
func TestInotifyOverflow(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.log"), "a1\n")
	o := testOptions(t, filepath.Join(dir, "*.log"))
	made := make(chan *fsnotify.Watcher, 1)
	o.NewWatcher = func() (*fsnotify.Watcher, error) {
		w, err := fsnotify.NewWatcher()
		if err == nil {
			made <- w
		}
		return w, err
	}
	app := &memAppender{}
	tl, stop := start(t, o, app)
	w := <-made
	waitFor(t, "a1", func() bool { return app.count() == 1 })
	w.Errors <- fsnotify.ErrEventOverflow
	waitFor(t, "the fallback", func() bool { return testutil.ToFloat64(tl.m.inotifyFallbk) == 1 })
	writeFile(t, filepath.Join(dir, "b.log"), "b1\n")
	appendFile(t, filepath.Join(dir, "a.log"), "a2\n")
	waitFor(t, "a2 and b1", func() bool { return app.count() == 3 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// WaitQuiet returns only after the writer has stopped and every line it
// wrote has been appended.
func TestWaitQuiet(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	writeFile(t, path, "")
	o := testOptions(t, path)
	app := &memAppender{}
	tl, stop := start(t, o, app)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for i := 0; i < 100; i++ {
			appendFile(t, path, seqLine(i, 10))
			time.Sleep(3 * time.Millisecond)
		}
	}()
	time.Sleep(20 * time.Millisecond)
	if err := tl.WaitQuiet(t.Context(), 150*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stopped:
	default:
		t.Fatal("WaitQuiet returned while the file was still growing")
	}
	if missing, _ := seqCheck(app.messages(), 100); len(missing) > 0 {
		t.Errorf("WaitQuiet returned before %s were appended", short(missing))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestReadDelayCoalesces: with a ReadDelay, lines written one write(2) at
// a time to several files, as a live application writes them, are read
// and appended together: one append for all of them (two if the periodic
// poll happens to fall among the writes), not one per write or per file.
func TestReadDelayCoalesces(t *testing.T) {
	dir := t.TempDir()
	paths := []string{filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log"), filepath.Join(dir, "c.log")}
	files := make([]*os.File, len(paths))
	for i, p := range paths {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files[i] = f
	}
	o := testOptions(t, filepath.Join(dir, "*.log"))
	o.ScanInterval = time.Hour // no rescans; the poll still runs every 250 ms
	o.ReadDelay = 2 * time.Second
	app := &memAppender{}
	_, stop := start(t, o, app)
	time.Sleep(100 * time.Millisecond) // the first scan: the files are followed
	const lines = 40
	for i := range lines {
		if _, err := fmt.Fprintf(files[i%len(files)], "seq=%08d\n", i); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Microsecond) // a write at a time, as an application logs
	}
	waitFor(t, "every line", func() bool { return app.count() == lines })
	app.mu.Lock()
	appends := app.appends
	app.mu.Unlock()
	if appends > 2 {
		t.Errorf("%d appends for %d lines written over %d files, want 1 (2 with a poll among the writes)", appends, lines, len(files))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if missing, repeated := seqCheck(app.messages(), lines); len(missing) > 0 || len(repeated) > 0 {
		t.Fatalf("missing %v, repeated %v", missing, repeated)
	}
	// Each file's checkpoint moved past its own lines.
	ck, err := loadCheckpoints(o.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ck.Files {
		st, err := os.Stat(e.Path)
		if err != nil || e.Offset != st.Size() {
			t.Errorf("%s: checkpoint at %d, file holds %d bytes", e.Path, e.Offset, st.Size())
		}
	}
	if len(ck.Files) != len(paths) {
		t.Errorf("%d checkpoints, want %d", len(ck.Files), len(paths))
	}
}
