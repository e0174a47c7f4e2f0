package loggen

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// readLines feeds every line of the given files to a new Checker.
func readLines(t *testing.T, paths ...string) *Checker {
	t.Helper()
	c := NewChecker()
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			c.Add(sc.Bytes())
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	return c
}

func TestGeneratorWritesEveryStream(t *testing.T) {
	dir := t.TempDir()
	for name, f := range map[string]Format{"plain": FormatPlain, "json": FormatJSON} {
		t.Run(name, func(t *testing.T) {
			var streams []Stream
			for i := range 3 {
				streams = append(streams, Stream{ID: fmt.Sprintf("%s%d", name, i), Path: filepath.Join(dir, fmt.Sprintf("%s-%d.log", name, i))})
			}
			g, err := New(Options{Streams: streams, Format: f, Size: 120, Lines: 5000, Timestamp: true, BufferBytes: 4096})
			if err != nil {
				t.Fatal(err)
			}
			if err := g.Run(t.Context()); err != nil {
				t.Fatal(err)
			}
			want := map[string]uint64{}
			var paths []string
			for i, s := range g.Stats() {
				if s.Lines != 5000 || s.Bytes != 5000*121 || s.Stream != streams[i] {
					t.Errorf("stats %+v", s)
				}
				want[s.Stream.ID] = 5000
				paths = append(paths, s.Stream.Path)
				fi, err := os.Stat(s.Stream.Path)
				if err != nil || fi.Size() != 5000*121 {
					t.Errorf("%s: size %v, %v; want every line exactly 121 bytes", s.Stream.Path, fi.Size(), err)
				}
			}
			if err := readLines(t, paths...).Verify(want, false); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestGeneratorRotation(t *testing.T) {
	tests := map[string]struct {
		mode RotateMode
		keep int
	}{
		"rename":       {mode: RotateRename, keep: 100},
		"copytruncate": {mode: RotateCopyTruncate, keep: 100},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.log")
			g, err := New(Options{Streams: []Stream{{ID: "r", Path: path}}, Size: 99, Lines: 1000, RotateBytes: 10000, Keep: tc.keep, RotateMode: tc.mode})
			if err != nil {
				t.Fatal(err)
			}
			if err := g.Run(t.Context()); err != nil {
				t.Fatal(err)
			}
			// 100 lines of 100 bytes fill a file exactly: 1000 lines make
			// 10 files, so 9 rotations, and every file is 10000 bytes.
			if s := g.Stats()[0]; s.Rotations != 9 {
				t.Fatalf("rotations = %d, want 9", s.Rotations)
			}
			paths := []string{path}
			for n := 1; n <= 9; n++ {
				paths = append(paths, fmt.Sprintf("%s.%d", path, n))
			}
			for _, p := range paths {
				if fi, err := os.Stat(p); err != nil || fi.Size() != 10000 {
					t.Errorf("%s: %v %v", p, fi, err)
				}
			}
			// path.9 is the oldest: it starts at seq 1.
			b, err := os.ReadFile(paths[9])
			if err != nil {
				t.Fatal(err)
			}
			if _, seq, ok := Parse(b[:bytes.IndexByte(b, '\n')]); !ok || seq != 1 {
				t.Errorf("oldest file starts with seq %d", seq)
			}
			if err := readLines(t, paths...).Verify(map[string]uint64{"r": 1000}, false); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestGeneratorRotationKeep(t *testing.T) {
	for name, tc := range map[string]struct {
		mode RotateMode
		keep int
	}{
		"rename keep 2":       {RotateRename, 2},
		"rename keep 0":       {RotateRename, 0},
		"copytruncate keep 0": {RotateCopyTruncate, 0},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "app.log")
			g, err := New(Options{Streams: []Stream{{ID: "r", Path: path}}, Size: 99, Lines: 1000, RotateBytes: 10000, Keep: tc.keep, RotateMode: tc.mode})
			if err != nil {
				t.Fatal(err)
			}
			if err := g.Run(t.Context()); err != nil {
				t.Fatal(err)
			}
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(ents) != 1+tc.keep {
				t.Fatalf("%d files, want %d", len(ents), 1+tc.keep)
			}
			var paths []string
			for _, e := range ents {
				paths = append(paths, filepath.Join(dir, e.Name()))
			}
			// The newest 100*(keep+1) lines survive, complete.
			r := readLines(t, paths...).Result("r", 1000)
			if want := uint64(100 * (tc.keep + 1)); r.Distinct != want || r.MissingCount != 1000-want || r.Missing[0] != [2]uint64{1, 1000 - want} {
				t.Fatalf("result %+v", r)
			}
		})
	}
}

func TestGeneratorAppendsToExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	if err := os.WriteFile(path, []byte("old line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := New(Options{Streams: []Stream{{ID: "a", Path: path}}, Lines: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), "old line\nstream=a seq=1 ") || strings.Count(string(b), "\n") != 4 {
		t.Fatalf("file:\n%s", b)
	}
}

func TestGeneratorPacesByRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		g, err := New(Options{Streams: []Stream{{ID: "p", Path: "-"}}, Rate: 10, Lines: 5, Stdout: &out})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := g.Run(t.Context()); err != nil {
			t.Fatal(err)
		}
		// Lines are due at 0, 100, 200, 300 and 400 ms.
		if got := time.Since(start); got != 400*time.Millisecond {
			t.Errorf("5 lines at 10/s took %v, want 400ms", got)
		}
		if n := strings.Count(out.String(), "\n"); n != 5 {
			t.Errorf("%d lines", n)
		}
	})
}

func TestGeneratorFlushesBeforeWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "app.log")
		g, err := New(Options{Streams: []Stream{{ID: "p", Path: path}}, Rate: 1, Duration: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- g.Run(ctx) }()
		time.Sleep(2500 * time.Millisecond) // fake time: lines 1-3 are due
		synctest.Wait()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(b), "\n"); n != 3 {
			t.Errorf("after 2.5s at 1/s the file has %d lines, want 3 (buffered lines must be flushed while waiting)", n)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if s := g.Stats()[0]; s.Lines != 3 {
			t.Errorf("stats %+v", s)
		}
	})
}

func TestGeneratorDuration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		g, err := New(Options{Streams: []Stream{{ID: "d", Path: "-"}}, Rate: 100, Duration: 1050 * time.Millisecond, Stdout: &out})
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Run(t.Context()); err != nil {
			t.Fatal(err)
		}
		// Lines are due every 10ms from 0; the one due at 1050ms races the
		// deadline, so 105 or 106 lines.
		if s := g.Stats()[0]; s.Lines != 105 && s.Lines != 106 {
			t.Errorf("lines = %d, want 105 or 106", s.Lines)
		}
		if err := readLinesFrom(&out).Verify(map[string]uint64{"d": g.Stats()[0].Lines}, false); err != nil {
			t.Fatal(err)
		}
	})
}

func readLinesFrom(b *bytes.Buffer) *Checker {
	c := NewChecker()
	for _, l := range bytes.Split(bytes.TrimSuffix(b.Bytes(), []byte("\n")), []byte("\n")) {
		c.Add(l)
	}
	return c
}

func TestNewRejects(t *testing.T) {
	tests := map[string]struct {
		opts Options
		want string
	}{
		"no streams":    {Options{}, "no streams"},
		"bad id":        {Options{Streams: []Stream{{ID: "a b", Path: "x"}}}, `stream id "a b"`},
		"dup id":        {Options{Streams: []Stream{{ID: "a", Path: "x"}, {ID: "a", Path: "y"}}}, "used twice"},
		"dup path":      {Options{Streams: []Stream{{ID: "a", Path: "x"}, {ID: "b", Path: "x"}}}, `path "x" is used twice`},
		"two stdout":    {Options{Streams: []Stream{{ID: "a", Path: "-"}, {ID: "b", Path: "-"}}}, "one stream may write to stdout"},
		"rotate stdout": {Options{Streams: []Stream{{ID: "a", Path: "-"}}, RotateBytes: 10}, "cannot be rotated"},
		"neg rate":      {Options{Streams: []Stream{{ID: "a", Path: "x"}}, Rate: -1}, "negative"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := New(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want %q", err, tc.want)
			}
		})
	}
}

func TestGeneratorCreatesDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "dir", "app.log")
	g, err := New(Options{Streams: []Stream{{ID: "a", Path: path}}, Lines: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := readLines(t, path).Verify(map[string]uint64{"a": 2}, false); err != nil {
		t.Fatal(err)
	}
}

func TestGeneratorReportsWriteErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := New(Options{Streams: []Stream{{ID: "a", Path: filepath.Join(file, "under-a-file.log")}}, Lines: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "stream a: create directory") {
		t.Fatalf("Run: %v", err)
	}
}

// BenchmarkGenerator measures lines written to a real file per second.
func BenchmarkGenerator(b *testing.B) {
	for _, ts := range []bool{false, true} {
		b.Run(fmt.Sprintf("size=100/ts=%v", ts), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "bench.log")
			g, err := New(Options{Streams: []Stream{{ID: "b", Path: path}}, Size: 100, Lines: uint64(b.N), Timestamp: ts})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(101)
			b.ResetTimer()
			if err := g.Run(b.Context()); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}
