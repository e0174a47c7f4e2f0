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
}
