package fsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Modes of everything skiff keeps in its data dir. Buffered lines,
// checkpoints (which hold the first bytes of each file) and dead letters
// are log content: only skiff's own user may read them. The data dir is
// often an emptyDir, which is 0777, so any UID in the pod could read
// files created 0644.
const (
	PrivateDir  os.FileMode = 0o700
	PrivateFile os.FileMode = 0o600
)

// Tighten creates root (PrivateDir) if needed and makes it and everything
// below it private: directories PrivateDir, regular files without group,
// other or execute bits. Files left by an earlier version (0755
// directories, 0644 files) are changed in place. Symbolic links are
// neither followed nor changed. It returns how many modes it changed and
// every error it met (a file owned by another user cannot be changed);
// the walk goes on past them.
func Tighten(root string) (int, error) {
	if err := os.MkdirAll(root, PrivateDir); err != nil {
		return 0, fmt.Errorf("create %s: %w", root, err)
	}
	changed := 0
	var errs []error
	walkErr := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, err)
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		var want func(fs.FileMode) fs.FileMode
		switch {
		case d.IsDir():
			want = func(fs.FileMode) fs.FileMode { return PrivateDir }
		case d.Type().IsRegular():
			want = func(m fs.FileMode) fs.FileMode { return m & PrivateFile }
		default:
			return nil // symlinks, sockets: not ours to change
		}
		info, err := d.Info()
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			return nil
		}
		perm := info.Mode().Perm()
		if w := want(perm); w != perm {
			if err := os.Chmod(path, w); err != nil {
				errs = append(errs, fmt.Errorf("make %s private: %w", path, err))
				return nil
			}
			changed++
		}
		return nil
	})
	if walkErr != nil {
		errs = append(errs, walkErr)
	}
	return changed, errors.Join(errs...)
}
