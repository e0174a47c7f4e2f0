package tailer

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCheckpointRoundTrip(t *testing.T) {
	dir := t.TempDir()
	in := []ckEntry{
		{Dev: 1, Ino: 2, FP: []byte("first line\n"), Source: 99, Offset: 1234, InLong: true, Path: "/logs/a.log",
			Tail: []byte("the end of a line\n"), TailAt: 1250},
		{Dev: 1, Ino: 3, FP: []byte{}, Offset: 0, Path: "/logs/b.log"},
	}
	if err := saveCheckpoints(dir, in, []byte("3:4096:17")); err != nil {
		t.Fatal(err)
	}
	out, err := loadCheckpoints(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out.Files) || string(out.Mark) != "3:4096:17" {
		t.Errorf("got %+v, want %+v", out, in)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temp files left behind: %v", ents)
	}
}

// TestCheckpointFromEarlierVersion: a checkpoint written before content
// generations (no guard; Source the hash of device, inode and first line,
// or none when nothing had been shipped) is read as it was: the file
// resumes at its offset, under the Source its buffered records carry.
func TestCheckpointFromEarlierVersion(t *testing.T) {
	for _, withSource := range []bool{true, false} {
		dir := t.TempDir()
		path := filepath.Join(dir, "app.log")
		writeFile(t, path, lines("x", 0, 10))
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		head, _ := os.ReadFile(path)
		key := keyOf(st)
		e := ckEntry{Dev: key.dev, Ino: key.ino, FP: head, Offset: st.Size(), Path: path}
		if withSource {
			e.Source = legacySource(key, head)
		}
		o := testOptions(t, path)
		// As that version wrote it: no "tail" fields at all.
		b, err := encodeCheckpoint([]ckEntry{e}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(`"tail`)) {
			t.Fatalf("an entry without a guard is written with one: %s", b)
		}
		if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(o.DataDir, checkpointFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
		appendFile(t, path, lines("x", 10, 15))
		app := &memAppender{}
		_, stop := start(t, o, app)
		waitFor(t, "the lines after the checkpoint", func() bool { return app.count() >= 5 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if g, w := strings.Join(app.messages(), "\n")+"\n", lines("x", 10, 15); g != w {
			t.Errorf("withSource=%v: got %q, want x-10..x-14", withSource, g)
		}
		if src := app.snapshot()[0].Source; src != legacySource(key, head) {
			t.Errorf("withSource=%v: Source %016x, want the earlier version's %016x", withSource, src, legacySource(key, head))
		}
	}
}

// Every single-byte corruption and every truncation is detected.
func TestCheckpointCorruption(t *testing.T) {
	good, err := encodeCheckpoint([]ckEntry{{Dev: 1, Ino: 2, FP: []byte("abc"), Offset: 77, Path: "/x"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x01
		if _, err := decodeCheckpoint(b); err == nil && i < len(good)-1 {
			t.Errorf("flip at byte %d not detected", i)
		}
	}
	for n := 0; n < len(good)-1; n++ {
		if _, err := decodeCheckpoint(good[:n]); !errors.Is(err, errCorruptCheckpoint) {
			t.Errorf("truncation to %d bytes: err = %v", n, err)
		}
	}
}

func FuzzDecodeCheckpoint(f *testing.F) {
	good, _ := encodeCheckpoint([]ckEntry{{Dev: 1, Ino: 2, FP: []byte("abc"), Offset: 77, Path: "/x"}}, nil)
	f.Add(good)
	f.Add([]byte("skiff-tailer-checkpoint 1 00000000\n{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeCheckpoint(b) // must not panic
	})
}

// A corrupt checkpoint costs repeated lines, never a refusal to start.
func TestCorruptCheckpointFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	writeFile(t, path, "a\nb\n")
	o := testOptions(t, path)
	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(o.DataDir, checkpointFile), "skiff-tailer-checkpoint 1 deadbeef\n{\"files\":[]}\n")
	app := &memAppender{}
	tl, stop := start(t, o, app)
	waitFor(t, "both lines", func() bool { return app.count() == 2 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(tl.m.errors.WithLabelValues("checkpoint")); v != 1 {
		t.Errorf("errors_total{kind=checkpoint} = %v, want 1", v)
	}
	// The next checkpoint is good again.
	b, err := os.ReadFile(filepath.Join(o.DataDir, checkpointFile))
	if err != nil {
		t.Fatal(err)
	}
	ck, err := decodeCheckpoint(b)
	es := ck.Files
	if err != nil || len(es) != 1 || es[0].Offset != 4 || !strings.HasSuffix(es[0].Path, "app.log") {
		t.Errorf("checkpoint after restart: %+v, %v", es, err)
	}
}

// Checkpoints advance only after Sync: with a failing Sync the old file
// stays in place.
type failingSync struct{ memAppender }

func (a *failingSync) Sync() error { return errors.New("disk gone") }

func TestCheckpointNeedsSync(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	writeFile(t, path, "a\nb\n")
	o := testOptions(t, path)
	app := &failingSync{}
	tl, stop := start(t, o, app)
	waitFor(t, "sync errors", func() bool { return testutil.ToFloat64(tl.m.errors.WithLabelValues("sync")) >= 2 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(o.DataDir, checkpointFile)); !os.IsNotExist(err) {
		t.Errorf("checkpoint written without a successful Sync: %v", err)
	}
}
