package tailer

import (
	"path/filepath"
	"testing"
)

func TestMatcher(t *testing.T) {
	m, err := newMatcher([]string{"/logs/**/*.log*", "/var/app/*/out.txt"}, []string{"*.gz", "/logs/skip/**"})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		path string
		want int
	}{
		"top level":                    {"/logs/a.log", 0},
		"deep":                         {"/logs/x/y/z/a.log", 0},
		"rotated name":                 {"/logs/a.log.1", 0},
		"base-name exclude":            {"/logs/a.log.1.gz", -1},
		"full-path exclude":            {"/logs/skip/a.log", -1},
		"second pattern":               {"/var/app/web/out.txt", 1},
		"second pattern too deep":      {"/var/app/web/x/out.txt", -1},
		"outside every pattern":        {"/etc/passwd", -1},
		"exclude only by its own part": {"/logs/gz/a.log", 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := m.match(tc.path); got != tc.want {
				t.Errorf("match(%s) = %d, want %d", tc.path, got, tc.want)
			}
		})
	}
}

func TestDirCanHold(t *testing.T) {
	m, err := newMatcher([]string{"/a/*/b/*.log", "/c/**", "/d/x.log"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		pattern int
		dir     string
		want    bool
	}{
		"base":              {0, "/a", true},
		"star level":        {0, "/a/q", true},
		"literal level":     {0, "/a/q/b", true},
		"wrong literal":     {0, "/a/q/c", false},
		"below file level":  {0, "/a/q/b/z", false},
		"doublestar deep":   {1, "/c/1/2/3", true},
		"plain file's base": {2, "/d", true},
		"under plain file":  {2, "/d/e", false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := m.patterns[tc.pattern].dirCanHold(tc.dir); got != tc.want {
				t.Errorf("dirCanHold(%s) = %v, want %v", tc.dir, got, tc.want)
			}
		})
	}
}

// A pattern whose directory does not exist yet is represented by its
// nearest existing parent, so its creation is seen.
func TestScanWatchesNearestParent(t *testing.T) {
	dir := t.TempDir()
	m, err := newMatcher([]string{filepath.Join(dir, "not", "yet", "**", "*.log")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := m.scan(func(p scanProblem) { t.Errorf("problem %+v", p) })
	if len(res.dirs) != 1 || res.dirs[0] != dir {
		t.Errorf("dirs = %v, want [%s]", res.dirs, dir)
	}
}
