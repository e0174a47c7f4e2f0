package tailer

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// matcher decides which paths are followed and which directories can hold
// them. It is immutable after newMatcher.
type matcher struct {
	patterns []pattern
	exclude  []string // patterns with "/": matched against the whole path
	excludeB []string // patterns without "/": matched against the base name
	follow   bool     // follow symlinked files whose target is inside a base (Options.FollowSymlinks)

	// bases are the patterns' base directories with their symlinks
	// resolved, as of the last scan: a file is read only if its real path
	// lies inside one. Owned by the Run goroutine.
	bases []string
}

type pattern struct {
	glob string
	base string   // the longest directory prefix without glob syntax
	segs []string // the path segments after base
}

func newMatcher(paths, exclude []string) (*matcher, error) {
	m := &matcher{}
	for _, p := range paths {
		p = filepath.Clean(p)
		if !filepath.IsAbs(p) {
			return nil, errors.New("path " + p + " is not absolute")
		}
		if !doublestar.ValidatePattern(p) {
			return nil, errors.New("path " + p + " is not a valid glob")
		}
		base, rest := doublestar.SplitPattern(p)
		pt := pattern{glob: p, base: base}
		if rest != "" {
			pt.segs = strings.Split(rest, "/")
		}
		m.patterns = append(m.patterns, pt)
	}
	for _, x := range exclude {
		if !doublestar.ValidatePattern(x) {
			return nil, errors.New("exclude " + x + " is not a valid glob")
		}
		if strings.Contains(x, "/") {
			m.exclude = append(m.exclude, x)
		} else {
			m.excludeB = append(m.excludeB, x)
		}
	}
	return m, nil
}

// excluded reports whether path matches an exclude pattern.
func (m *matcher) excluded(path string) bool {
	base := filepath.Base(path)
	for _, x := range m.excludeB {
		if ok, _ := doublestar.Match(x, base); ok {
			return true
		}
	}
	for _, x := range m.exclude {
		if ok, _ := doublestar.Match(x, path); ok {
			return true
		}
	}
	return false
}

// match returns the index of the first pattern path matches, or -1 when it
// matches none or is excluded.
func (m *matcher) match(path string) int {
	for i, p := range m.patterns {
		if ok, _ := doublestar.Match(p.glob, path); ok {
			if m.excluded(path) {
				return -1
			}
			return i
		}
	}
	return -1
}

// dirCanHold reports whether files matching pattern p can lie at or below
// dir (dir is base or below it).
func (p *pattern) dirCanHold(dir string) bool {
	rel := strings.TrimPrefix(strings.TrimPrefix(dir, p.base), "/")
	if rel == "" {
		return true
	}
	ds := strings.Split(rel, "/")
	for i, d := range ds {
		if i < len(p.segs) && p.segs[i] == "**" {
			return true
		}
		if i >= len(p.segs)-1 { // the last segment names files
			return false
		}
		if ok, _ := doublestar.Match(p.segs[i], d); !ok {
			return false
		}
	}
	return true
}

// scanResult is what one pass over the file system found.
type scanResult struct {
	files []found
	dirs  []string // directories to watch, in walk order
}

type found struct {
	path    string
	pattern int
	info    os.FileInfo // of the file itself, or of a followed symlink's target
}

// scanProblem is a path the scan could not use, with the error kind for
// skiff_tailer_errors_total.
type scanProblem struct {
	path string
	kind string
	err  error
}

// scan walks every pattern's base directory. Missing base directories are
// represented by their nearest existing ancestor in dirs, so that their
// creation is noticed. It never follows symlinked directories (no loops);
// symlinked files are skipped (reported as problems), or with follow
// taken when their target lies inside a base directory, and deduplicated
// by identity later.
func (m *matcher) scan(problem func(scanProblem)) scanResult {
	m.resolveBases()
	var r scanResult
	seenDir := map[string]bool{}
	seenFile := map[string]bool{}
	addDir := func(d string) {
		if !seenDir[d] {
			seenDir[d] = true
			r.dirs = append(r.dirs, d)
		}
	}
	for pi := range m.patterns {
		p := &m.patterns[pi]
		if _, err := os.Stat(p.base); err != nil {
			// Watch the nearest existing parent so the base is seen when
			// the application creates it.
			d := p.base
			for {
				parent := filepath.Dir(d)
				if parent == d {
					break
				}
				d = parent
				if st, err := os.Stat(d); err == nil && st.IsDir() {
					addDir(d)
					break
				}
			}
			continue
		}
		if len(p.segs) == 0 { // a pattern without glob syntax: one file
			m.consider(&r, seenFile, p.base, pi, problem)
			if dir := filepath.Dir(p.base); dir != p.base {
				addDir(dir)
			}
			continue
		}
		m.walk(&r, p, pi, p.base, addDir, seenFile, problem)
	}
	return r
}

func (m *matcher) walk(r *scanResult, p *pattern, pi int, dir string, addDir func(string), seenFile map[string]bool, problem func(scanProblem)) {
	addDir(dir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			problem(scanProblem{path: dir, kind: errKind(err), err: err})
		}
		return
	}
	for _, e := range ents {
		path := dir + "/" + e.Name()
		if dir == "/" {
			path = "/" + e.Name()
		}
		if e.IsDir() {
			if p.dirCanHold(path) {
				m.walk(r, p, pi, path, addDir, seenFile, problem)
			}
			// A directory can also match the file pattern: consider reports it.
		}
		if ok, _ := doublestar.Match(p.glob, path); ok {
			m.consider(r, seenFile, path, pi, problem)
		}
	}
}

// consider stats a path that matched pattern pi and adds it to r when it is
// a regular file that is not excluded (or, with follow, a symlink to one
// inside a base directory).
func (m *matcher) consider(r *scanResult, seenFile map[string]bool, path string, pi int, problem func(scanProblem)) {
	if seenFile[path] || m.excluded(path) {
		return
	}
	seenFile[path] = true
	st, err := os.Lstat(path)
	if err == nil && st.Mode()&fs.ModeSymlink != 0 {
		st, err = m.symlinkTarget(path)
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return // vanished, or a dangling symlink: nothing to read
		}
		problem(scanProblem{path: path, kind: errKind(err), err: err})
		return
	}
	if st.IsDir() {
		problem(scanProblem{path: path, kind: "directory", err: errors.New("matches a glob but is a directory")})
		return
	}
	if !st.Mode().IsRegular() {
		problem(scanProblem{path: path, kind: "not_regular", err: errors.New("matches a glob but is not a regular file")})
		return
	}
	r.files = append(r.files, found{path: path, pattern: pi, info: st})
}

// errKind classifies an error for the errors_total metric.
func errKind(err error) string {
	switch {
	case errors.Is(err, errSymlink):
		return "symlink"
	case errors.Is(err, fs.ErrPermission):
		return "permission"
	case errors.Is(err, fs.ErrNotExist):
		return "vanished"
	default:
		return "io"
	}
}
