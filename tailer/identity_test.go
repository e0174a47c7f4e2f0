package tailer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func inode(t *testing.T, path string) fileKey {
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return keyOf(st)
}

// lines returns "<prefix>-<i>\n" for i in [from, to).
func lines(prefix string, from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "%s-%d\n", prefix, i)
	}
	return b.String()
}

// A graceful stop and restart resumes exactly at the checkpoint.
func TestRestartResumes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	writeFile(t, path, lines("x", 0, 100))
	o := testOptions(t, path)
	app := &memAppender{}
	_, stop := start(t, o, app)
	waitFor(t, "first 100", func() bool { return app.count() == 100 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, lines("x", 100, 200))
	o.Registerer = nil
	_, stop = start(t, o, app)
	waitFor(t, "next 100", func() bool { return app.count() >= 200 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if g, w := strings.Join(app.messages(), "\n")+"\n", lines("x", 0, 200); g != w {
		t.Errorf("got %d lines, want exactly x-0..x-199 once", app.count())
	}
}

// A file deleted and recreated while skiff is stopped, even on the same
// inode and longer than the checkpoint, is read from its start; the first
// bytes (fingerprint) tell it apart.
func TestInodeReuseWhileStopped(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	writeFile(t, path, lines("old", 0, 50))
	o := testOptions(t, path)
	app := &memAppender{}
	_, stop := start(t, o, app)
	waitFor(t, "old lines", func() bool { return app.count() == 50 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	old := inode(t, path)
	oldSource := app.snapshot()[0].Source
	// Recreate until the inode is reused (ext4 and tmpfs reuse at once).
	reused := false
	for i := 0; i < 20 && !reused; i++ {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		writeFile(t, path, lines("new", 0, 200))
		reused = inode(t, path) == old
	}
	t.Logf("inode reused: %v", reused)
	o.Registerer = nil
	tl, stop := start(t, o, app)
	waitFor(t, "new lines", func() bool { return app.count() == 250 })
	if err := tl.WaitQuiet(t.Context(), 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := app.messages()[50:]
	if g, w := strings.Join(got, "\n")+"\n", lines("new", 0, 200); g != w {
		t.Errorf("new file not read exactly once from its start: %d lines", len(got))
	}
	if app.snapshot()[50].Source == oldSource {
		t.Errorf("new file shares the old file's Source")
	}
	if reused {
		if v := testutil.ToFloat64(tl.m.rotations.WithLabelValues("inode_reuse")); v != 1 {
			t.Errorf("rotations_total{kind=inode_reuse} = %v, want 1", v)
		}
	}
}

// Inode reuse while running: the deleted file is read to its end and
// released, and the new file on the same inode is read from its start.
func TestInodeReuseWhileRunning(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	app := &memAppender{}
	o := testOptions(t, path)
	_, stop := start(t, o, app)
	want := ""
	for round := 0; round < 5; round++ {
		p := fmt.Sprintf("r%d", round)
		writeFile(t, path, lines(p, 0, 30))
		want += lines(p, 0, 30)
		waitFor(t, "round "+p, func() bool { return app.count() == 30*(round+1) })
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if g := strings.Join(app.messages(), "\n") + "\n"; g != want {
		t.Errorf("got %q", g)
	}
}

func TestReadFromTail(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "old.log"), "skipped\n")
	o := testOptions(t, filepath.Join(dir, "*.log"))
	o.ReadFrom = "tail"
	app := &memAppender{}
	tl, stop := start(t, o, app)
	if err := tl.WaitQuiet(t.Context(), 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	appendFile(t, filepath.Join(dir, "old.log"), "appended\n")
	writeFile(t, filepath.Join(dir, "new.log"), "new file from its head\n")
	waitFor(t, "two lines", func() bool { return app.count() == 2 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(app.messages(), "|")
	if strings.Contains(got, "skipped") || !strings.Contains(got, "appended") || !strings.Contains(got, "new file") {
		t.Errorf("got %q", got)
	}
	// The documented exception is counted: the bytes skipped at the tail.
	if v := testutil.ToFloat64(tl.m.dropped.WithLabelValues("read_from_tail")); v != float64(len("skipped\n")) {
		t.Errorf("read_from_tail dropped %v bytes, want %d", v, len("skipped\n"))
	}
}

// A checkpointed file that is gone at start (rotated out of the globs and
// not found by its inode, or deleted, while skiff was stopped) is counted
// and logged; one found at its old place with nothing unread is not.
func TestLostWhileStoppedIsCounted(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "gone.log"), "a\n")
	writeFile(t, filepath.Join(dir, "kept.log"), "b\n")
	o := testOptions(t, filepath.Join(dir, "*.log"))
	app := &memAppender{}
	_, stop := start(t, o, app)
	waitFor(t, "two lines", func() bool { return app.count() == 2 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "gone.log")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "kept.log"), filepath.Join(dir, "kept.log.1")); err != nil {
		t.Fatal(err)
	}
	o.Registerer = nil
	tl, stop := start(t, o, app)
	if err := tl.WaitQuiet(t.Context(), 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(tl.m.lostFiles); v != 1 {
		t.Errorf("lost files = %v, want 1 (gone.log; kept.log.1 was found and fully read)", v)
	}
}

// Symlinks to a followed file are read once; a directory matching the
// glob is reported, not fatal; an unreadable file is reported.
func TestOddPaths(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "real.log"), "once\n")
	if err := os.Symlink(filepath.Join(dir, "real.log"), filepath.Join(dir, "link.log")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "nowhere"), filepath.Join(dir, "dangling.log")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "dir.log"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "secret.log"), "secret\n")
	if err := os.Chmod(filepath.Join(dir, "secret.log"), 0); err != nil {
		t.Fatal(err)
	}
	o := testOptions(t, filepath.Join(dir, "*.log"))
	app := &memAppender{}
	tl, stop := start(t, o, app)
	waitFor(t, "the real file", func() bool { return app.count() >= 1 })
	waitFor(t, "the directory reported", func() bool {
		return testutil.ToFloat64(tl.m.errors.WithLabelValues("directory")) > 0
	})
	if os.Geteuid() != 0 {
		waitFor(t, "permission denied reported", func() bool {
			return testutil.ToFloat64(tl.m.errors.WithLabelValues("permission")) > 0
		})
	}
	if err := tl.WaitQuiet(t.Context(), 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	n := strings.Count(strings.Join(app.messages(), "|"), "once")
	if n != 1 {
		t.Errorf("symlinked file read %d times, want 1", n)
	}
}

func TestCloseInactive(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	writeFile(t, path, "one\n")
	o := testOptions(t, path)
	o.CloseInactive = 100 * time.Millisecond
	app := &memAppender{}
	tl, stop := start(t, o, app)
	waitFor(t, "one", func() bool { return app.count() == 1 })
	waitFor(t, "the idle file closed", func() bool { return testutil.ToFloat64(tl.m.filesOpen) == 0 })
	if v := testutil.ToFloat64(tl.m.filesWatched); v != 1 {
		t.Errorf("files_watched = %v, want 1", v)
	}
	appendFile(t, path, "two\n")
	waitFor(t, "two", func() bool { return app.count() == 2 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
