package tailer

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestFollowBasics(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.log"), "one\ntwo\r\nthree")
	writeFile(t, filepath.Join(dir, "old.log.gz"), "\x1f\x8bbinary\n")
	o := testOptions(t, filepath.Join(dir, "**", "*.log*"))
	o.Exclude = []string{"*.gz"}
	app := &memAppender{}
	tl, stop := start(t, o, app)
	waitFor(t, "first lines", func() bool { return app.count() >= 2 })
	appendFile(t, filepath.Join(dir, "a.log"), " and more\n")
	writeFile(t, filepath.Join(dir, "later", "deep", "b.log"), "bee\n")
	waitFor(t, "later lines", func() bool { return app.count() >= 4 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(app.messages(), "|")
	for _, want := range []string{"one", "two", "three and more", "bee"} {
		if !strings.Contains("|"+got+"|", "|"+want+"|") {
			t.Errorf("missing %q in %q", want, got)
		}
	}
	if strings.Contains(got, "binary") {
		t.Errorf("excluded file was read: %q", got)
	}
	if v := testutil.ToFloat64(tl.m.linesRead); v != 4 {
		t.Errorf("lines_read_total = %v, want 4", v)
	}
	if v := testutil.ToFloat64(tl.m.lag.WithLabelValues(o.Paths[0])); v != 0 {
		t.Errorf("lag_bytes = %v after everything was appended, want 0", v)
	}
	if v := testutil.ToFloat64(tl.m.filesWatched); v != 2 {
		t.Errorf("files_watched = %v, want 2", v)
	}
}

// A file that vanishes between discovery and open is counted, not fatal.
func TestVanishedBeforeOpen(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(t, filepath.Join(dir, "*.log"))
	tl, err := New(o, &memAppender{})
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := tl.adopt(filepath.Join(dir, "gone.log"), 0, fileKey{1, 2}); f != nil {
		t.Fatal("adopted a missing file")
	}
	if v := testutil.ToFloat64(tl.m.errors.WithLabelValues("vanished")); v != 1 {
		t.Errorf("errors_total{kind=vanished} = %v, want 1", v)
	}
}
