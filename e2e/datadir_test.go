package e2e

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestDataDirPrivate: buffered lines, checkpoints, cursors and dead
// letters are log content, and the data dir is often an emptyDir (0777):
// after a run every directory of the data dir is 0700 and every file
// 0600 or stricter, including what an earlier version left 0755/0644
// (tightened at start).
func TestDataDirPrivate(t *testing.T) {
	logs, data := t.TempDir(), filepath.Join(t.TempDir(), "data")
	path := filepath.Join(logs, "app.log")
	es := newESServer(t, func(msg string) bool { return msg == "refused" })
	env := esEnv(data, es, filepath.Join(logs, "*.log"))

	var lines []string
	for i := range 200 {
		lines = append(lines, fmt.Sprintf("line %d", i))
	}
	appendLines(t, path, lines...)
	p := start(t, env)
	waitFor(t, 20*time.Second, "the first lines", func() bool { return es.has(lines...) })
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	// What an earlier version left: readable by all.
	err := filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.Chmod(p, 0o755)
		}
		return os.Chmod(p, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}

	appendLines(t, path, "refused", "after")
	p = start(t, env)
	waitFor(t, 20*time.Second, "the line after the refused one", func() bool { return es.has("after") })
	waitFor(t, 10*time.Second, "a dead letter", func() bool {
		ents, _ := os.ReadDir(filepath.Join(data, "deadletter"))
		return len(ents) > 0
	})
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	files := 0
	err = filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch m := info.Mode(); {
		case m.IsDir() && m.Perm() != 0o700:
			t.Errorf("directory %s is %v, want 0700", p, m.Perm())
		case m.IsRegular():
			files++
			if m.Perm()&^0o600 != 0 {
				t.Errorf("file %s is %v, want 0600 or stricter", p, m.Perm())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 5 { // instance id, checkpoint, lock, segment, cursor, dead letter
		t.Errorf("only %d files in the data dir: the test covers less than it should", files)
	}
}
