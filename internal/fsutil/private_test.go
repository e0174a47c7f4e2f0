package fsutil

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestTighten: a data dir left by an earlier version (0755 directories,
// 0644 and 0755 files) becomes 0700/0600 throughout; a symlink's target
// outside it is left alone.
func TestTighten(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "data")
	outside := filepath.Join(base, "outside")
	if err := os.WriteFile(outside, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{root, filepath.Join(root, "buffer"), filepath.Join(root, "deadletter", "deep")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]os.FileMode{
		"tailer.checkpoint":        0o644,
		"buffer/00000001.seg":      0o666,
		"buffer/cursor-a":          0o600,
		"deadletter/deep/1.ndjson": 0o755,
		"instance-id":              0o400,
	}
	for name, mode := range files {
		p := filepath.Join(root, name)
		if err := os.WriteFile(p, []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	n, err := Tighten(root)
	if err != nil {
		t.Fatal(err)
	}
	if n != 7 { // 4 directories, 3 files (cursor-a and instance-id are private already)
		t.Errorf("changed %d modes, want 7", n)
	}
	checkPrivate(t, root)
	if st, err := os.Stat(outside); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("the symlink's target outside the tree was changed: %v %v", st.Mode(), err)
	}
	if st, err := os.Stat(filepath.Join(root, "instance-id")); err != nil || st.Mode().Perm() != 0o400 {
		t.Errorf("a file stricter than 0600 was loosened: %v %v", st.Mode(), err)
	}
	if n, err := Tighten(root); n != 0 || err != nil {
		t.Errorf("second Tighten changed %d (%v), want 0", n, err)
	}
}

// checkPrivate fails for any directory under root that is not 0700 and
// any regular file with group, other or execute bits.
func checkPrivate(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch m := info.Mode(); {
		case m.IsDir() && m.Perm() != PrivateDir:
			t.Errorf("directory %s is %v, want %v", p, m.Perm(), PrivateDir)
		case m.IsRegular() && m.Perm()&^PrivateFile != 0:
			t.Errorf("file %s is %v, want 0600 or stricter", p, m.Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
