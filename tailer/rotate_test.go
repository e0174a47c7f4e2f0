package tailer

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// loadWriter appends numbered lines to path at a few thousand lines per
// second and rotates the file every rotateBytes in the given way.
type loadWriter struct {
	path        string
	lines       int
	rotateBytes int64
	mode        string        // rename | copytruncate | delete | none
	afterRotate int           // lines written to the old file after a rename or delete
	pause       time.Duration // between bursts of 50 lines; default 5ms (~10k lines/s at most)
	rotations   int
}

func (w *loadWriter) run(t testing.TB) error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	var since int64
	i := 0
	write := func(f *os.File) error {
		l := seqLine(i, 40+i%60)
		i++
		since += int64(len(l))
		_, err := f.WriteString(l)
		return err
	}
	for i < w.lines {
		for b := 0; b < 50 && i < w.lines; b++ {
			if err := write(f); err != nil {
				return err
			}
		}
		time.Sleep(cmp.Or(w.pause, 5*time.Millisecond))
		if since < w.rotateBytes || i >= w.lines {
			continue
		}
		since = 0
		w.rotations++
		rotated := fmt.Sprintf("%s.%d", w.path, w.rotations)
		switch w.mode {
		case "rename", "delete":
			if w.mode == "rename" {
				err = os.Rename(w.path, rotated)
			} else {
				err = os.Remove(w.path)
			}
			if err != nil {
				return err
			}
			for k := 0; k < w.afterRotate && i < w.lines; k++ {
				if err := write(f); err != nil {
					return err
				}
			}
			if err := f.Close(); err != nil {
				return err
			}
			if f, err = os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o644); err != nil {
				return err
			}
		case "copytruncate":
			if err := copyFile(w.path, rotated); err != nil {
				return err
			}
			if err := os.Truncate(w.path, 0); err != nil {
				return err
			}
		}
	}
	return f.Close()
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

func TestRotationUnderLoad(t *testing.T) {
	cases := map[string]struct {
		mode    string
		glob    string
		exclude []string
	}{
		"rename, rotated names outside the glob": {mode: "rename", glob: "app.log"},
		"rename, rotated names inside the glob":  {mode: "rename", glob: "app.log*"},
		"delete and recreate":                    {mode: "delete", glob: "app.log"},
		"copytruncate":                           {mode: "copytruncate", glob: "app.log"},
		"copytruncate, copies excluded by glob":  {mode: "copytruncate", glob: "app.log*", exclude: []string{"*.log.*"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "app.log")
			o := testOptions(t, filepath.Join(dir, tc.glob))
			o.Exclude = tc.exclude
			app := &memAppender{}
			tl, stop := start(t, o, app)
			n := 15000
			if os.Getenv("SKIFF_LONG") != "" {
				n = 300000 // about a minute of writing, ~150 rotations
			}
			w := &loadWriter{path: path, lines: n, rotateBytes: 200 << 10, mode: tc.mode, afterRotate: 20}
			if err := w.run(t); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "every line", func() bool {
				missing, _ := seqCheck(app.messages(), w.lines)
				return len(missing) == 0
			})
			if err := tl.WaitQuiet(t.Context(), 300*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			missing, repeated := seqCheck(app.messages(), w.lines)
			if len(missing) > 0 || len(repeated) > 0 {
				t.Fatalf("%d rotations: missing %s, repeated %s", w.rotations, short(missing), short(repeated))
			}
			if w.rotations < 5 {
				t.Fatalf("only %d rotations", w.rotations)
			}
			kind := map[string]string{"rename": "rename", "delete": "delete"}[tc.mode]
			if kind != "" && !strings.HasSuffix(tc.glob, "*") {
				if v := testutil.ToFloat64(tl.m.rotations.WithLabelValues(kind)); int(v) != w.rotations {
					t.Errorf("rotations_total{kind=%s} = %v, want %d", kind, v, w.rotations)
				}
			}
			if tc.mode == "copytruncate" {
				if v := testutil.ToFloat64(tl.m.truncations); int(v) != w.rotations {
					t.Errorf("truncations_total = %v, want %d", v, w.rotations)
				}
			}
			t.Logf("%d lines, %d rotations, %d appends: none lost, none repeated", w.lines, w.rotations, app.appends)
		})
	}
}

// A writer that reopens late (logrotate's postrotate signal, a slow
// application) keeps writing to the renamed file: those lines still
// arrive, however long the rename and the reopen are apart.
func TestLateReopenAfterRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteString("before\n"); err != nil {
		t.Fatal(err)
	}
	app := &memAppender{}
	_, stop := start(t, testOptions(t, path), app)
	waitFor(t, "before", func() bool { return app.count() == 1 })
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // longer than a deleted file is kept
	if _, err := w.WriteString("after the rename\n"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, "new file\n")
	waitFor(t, "all three", func() bool { return app.count() == 3 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if g := strings.Join(app.messages(), "|"); !strings.Contains(g, "after the rename") {
		t.Errorf("got %q", g)
	}
}

// copytruncate while skiff is behind (Append blocked): the lines it had
// not read yet are read from the copy, under the old Source and offsets.
func TestCopytruncateRecoversFromCopy(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	bigFile(t, path, 30000) // ~4.5 MiB: several batches
	o := testOptions(t, path)
	app := &memAppender{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	tl, stop := start(t, o, app)
	<-app.entered
	if err := copyFile(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i := 30000; i < 30100; i++ {
		b.WriteString(seqLine(i, 10))
	}
	appendFile(t, path, b.String())
	close(app.gate)
	waitFor(t, "every line", func() bool {
		missing, _ := seqCheck(app.messages(), 30100)
		return len(missing) == 0
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	missing, repeated := seqCheck(app.messages(), 30100)
	if len(missing)+len(repeated) > 0 {
		t.Errorf("missing %s, repeated %s", short(missing), short(repeated))
	}
	if v := testutil.ToFloat64(tl.m.truncations); v != 1 {
		t.Errorf("truncations_total = %v, want 1", v)
	}
	// The old lines keep the old Source, whichever file they came from.
	src := map[string]uint64{}
	for _, r := range app.snapshot() {
		src[seqRE.FindString(string(r.Message))] = r.Source
	}
	first, lastOld, newer := src["seq=00000000"], src["seq=00029999"], src["seq=00030099"]
	if first != lastOld || lastOld == newer {
		t.Errorf("sources: first %x, last old %x, new %x", first, lastOld, newer)
	}
}

// Many files in nested directories, each with its own writer rotating by
// rename: every line of every file arrives exactly once.
func TestManyFilesUnderLoad(t *testing.T) {
	dir := t.TempDir()
	const files, perFile = 20, 3000
	o := testOptions(t, filepath.Join(dir, "**", "app.log"))
	app := &memAppender{}
	_, stop := start(t, o, app)
	errs := make(chan error, files)
	for i := 0; i < files; i++ {
		sub := filepath.Join(dir, fmt.Sprintf("svc%d", i%5), fmt.Sprintf("pod%d", i))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		go func() {
			w := &loadWriter{path: filepath.Join(sub, "app.log"), lines: perFile, rotateBytes: 64 << 10,
				mode: "rename", afterRotate: 5, pause: 20 * time.Millisecond}
			errs <- w.run(t)
		}()
	}
	for i := 0; i < files; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// Lines carry only a per-file sequence: count per path directory.
	count := func() map[string][]string {
		m := map[string][]string{}
		for _, r := range app.snapshot() {
			d := filepath.Dir(string(r.Path))
			m[d] = append(m[d], string(r.Message))
		}
		return m
	}
	waitFor(t, "every line of every file", func() bool {
		n := 0
		for _, msgs := range count() {
			n += len(msgs)
		}
		return n >= files*perFile
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	m := count()
	if len(m) != files {
		t.Fatalf("lines from %d directories, want %d", len(m), files)
	}
	for d, msgs := range m {
		missing, repeated := seqCheck(msgs, perFile)
		if len(missing)+len(repeated) > 0 {
			t.Errorf("%s: missing %s, repeated %s", d, short(missing), short(repeated))
		}
	}
}
