package tailer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// errSymlink marks a file that is not read because of a symbolic link: one
// not followed (the default), or one whose target (or the real path of
// what an open reached) lies outside every base directory of the globs.
// The application container writes the log volume: without this a link
// such as logs/evil.log -> /etc/skiff/secrets/token would ship skiff's own
// credentials as log lines.
var errSymlink = errors.New("symbolic link")

// resolveBases recomputes the base directories with their symlinks
// resolved. A base that does not exist yet has no files to read.
func (m *matcher) resolveBases() {
	m.bases = m.bases[:0]
	for _, p := range m.patterns {
		dir := p.base
		if len(p.segs) == 0 { // a plain file name: its directory is the base
			dir = filepath.Dir(dir)
		}
		if real, err := filepath.EvalSymlinks(dir); err == nil {
			m.bases = append(m.bases, real)
		}
	}
}

// inBase reports whether real, a path without symlinks, lies inside a
// resolved base directory.
func (m *matcher) inBase(real string) bool {
	for _, b := range m.bases {
		if real == b || strings.HasPrefix(real, b+"/") || b == "/" {
			return true
		}
	}
	return false
}

// symlinkTarget returns the info of the file a symlink at path points to,
// when links are followed and the target is inside a base directory.
func (m *matcher) symlinkTarget(path string) (os.FileInfo, error) {
	if !m.follow {
		return nil, fmt.Errorf("%w: not followed (SKIFF_FOLLOW_SYMLINKS=false)", errSymlink)
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, err
	}
	if !m.inBase(real) {
		return nil, fmt.Errorf("%w to %s, outside every base directory of SKIFF_PATHS", errSymlink, real)
	}
	return os.Stat(real)
}

// openFile opens the file at path for reading, refusing symlinks: the last
// component is opened with O_NOFOLLOW (with follow on, after resolving a
// link whose target is inside a base directory), so a file swapped for a
// link between the scan and the open fails; and the real path of what was
// opened must lie inside a base directory, so a directory swapped for a
// link on the way is refused too.
func (t *Tailer) openFile(path string) (*os.File, error) {
	target := path
	if t.match.follow {
		if st, err := os.Lstat(path); err == nil && st.Mode()&os.ModeSymlink != 0 {
			if _, err := t.match.symlinkTarget(path); err != nil {
				return nil, err
			}
			if target, err = filepath.EvalSymlinks(path); err != nil {
				return nil, err
			}
		}
	}
	f, err := os.OpenFile(target, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%w: not followed (SKIFF_FOLLOW_SYMLINKS=false)", errSymlink)
		}
		return nil, err
	}
	if real, ok := fdPath(f); ok && !t.match.inBase(real) {
		_ = f.Close() // read-only: nothing to lose
		return nil, fmt.Errorf("%w on the way: opened %s, outside every base directory of SKIFF_PATHS", errSymlink, real)
	}
	return f, nil
}

// fdPath returns the path the kernel gives for an open file, when /proc
// is mounted.
func fdPath(f *os.File) (string, bool) {
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil || !strings.HasPrefix(p, "/") {
		return "", false
	}
	return strings.TrimSuffix(p, " (deleted)"), true
}
