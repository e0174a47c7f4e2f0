package tailer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/fsnotify/fsnotify"

	"github.com/skiff-dev/skiff/buffer"
	"github.com/skiff-dev/skiff/internal/record"
)

// fixed returns lines "<prefix>-<i> <padding>\n" for i in [from, to), all
// of one length, so that two files of such lines have their lines at the
// same offsets.
func fixed(prefix string, from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "%s-%04d %s\n", prefix, i, padding[:40])
	}
	return b.String()
}

// sources returns the Sources of the records whose message starts with
// prefix, and how many such records there are.
func sources(recs []record.Record, prefix string) (map[uint64]bool, int) {
	s, n := map[uint64]bool{}, 0
	for _, r := range recs {
		if strings.HasPrefix(string(r.Message), prefix) {
			s[r.Source] = true
			n++
		}
	}
	return s, n
}

// checkGenerations fails unless every line of the new contents arrived
// (once each: lines repeated from the old contents may arrive again,
// under new IDs) and none of them has a Source of the old contents, the
// records before.
func checkGenerations(t *testing.T, before, recs []record.Record, newPrefix string, newLines int) {
	t.Helper()
	olds, _ := sources(before, "")
	news, n := sources(recs, newPrefix)
	seen := map[string]int{}
	for _, r := range recs {
		if strings.HasPrefix(string(r.Message), newPrefix) {
			seen[string(r.Message)]++
		}
	}
	if len(seen) != newLines || n != newLines {
		t.Errorf("%d records (%d distinct) of the new contents, want %d once each", n, len(seen), newLines)
	}
	for s := range news {
		if olds[s] {
			t.Errorf("the new contents share Source %016x with the old: their record IDs collide", s)
		}
	}
}

// TestRewriteIsANewGeneration: a file truncated and rewritten with the
// same first line (a banner, a CSV header), or deleted and recreated on
// the same inode, is new contents: its records get another Source, so
// their IDs differ from the old records' at the same offsets (an
// Elasticsearch create would answer 409 and the new lines would be lost),
// whether it happens while skiff runs or while it is stopped.
func TestRewriteIsANewGeneration(t *testing.T) {
	const header = "timestamp,level,message\n"
	cases := map[string]struct {
		stopped bool
		head    string // what both contents start with
		rewrite func(t *testing.T, path, data string)
	}{
		"copytruncate": {rewrite: func(t *testing.T, path, data string) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
			appendFile(t, path, data)
		}},
		"delete and create": {rewrite: func(t *testing.T, path, data string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			writeFile(t, path, data)
		}},
		"rewritten while stopped": {stopped: true, rewrite: func(t *testing.T, path, data string) {
			if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		// The first KiB tells nothing here; the bytes before the
		// checkpointed position do.
		"rewritten while stopped, same first KiB": {stopped: true, head: fixed("banner", 0, 40), rewrite: func(t *testing.T, path, data string) {
			if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "app.csv")
			head := header + tc.head
			first := strings.Count(head, "\n") + 50
			writeFile(t, path, head+fixed("old", 0, 50))
			o := testOptions(t, path)
			app := &memAppender{}
			_, stop := start(t, o, app)
			waitFor(t, "the old lines", func() bool { return app.count() == first })
			if tc.stopped {
				if err := stop(); err != nil {
					t.Fatal(err)
				}
			}
			tc.rewrite(t, path, head+fixed("new", 0, 60))
			if tc.stopped {
				o.Registerer = nil
				_, stop = start(t, o, app)
			}
			waitFor(t, "the new lines", func() bool {
				_, n := sources(app.snapshot(), "new-")
				return n >= 60
			})
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			recs := app.snapshot()
			checkGenerations(t, recs[:first], recs[first:], "new-", 60)
		})
	}
}

// TestRewriteInPlace: a file rewritten in place without being truncated
// first, to the same size (which no size check can see) or larger, is
// read again as new contents: when its first bytes changed, and when only
// the bytes before the read position did (the first KiB the same).
// Without inotify, so that only the poll's checks can find it.
func TestRewriteInPlace(t *testing.T) {
	cases := map[string]struct{ before, after string }{
		"same size, small file":     {"aaaa\nbbbb\n", "cccc\ndddd\n"},
		"same size, same first KiB": {fixed("same", 0, 40) + "tail-a\n", fixed("same", 0, 40) + "tail-b\n"},
		"larger, same first KiB":    {fixed("same", 0, 40) + fixed("old", 0, 10), fixed("same", 0, 40) + fixed("new", 0, 30)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "app.log")
			writeFile(t, path, tc.before)
			o := testOptions(t, path)
			o.NewWatcher = func() (*fsnotify.Watcher, error) { return nil, syscall.EMFILE }
			app := &memAppender{}
			_, stop := start(t, o, app)
			n := strings.Count(tc.before, "\n")
			waitFor(t, "the first contents", func() bool { return app.count() == n })
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt([]byte(tc.after), 0); err != nil {
				t.Fatal(err)
			}
			f.Close()
			last := tc.after[strings.LastIndexByte(tc.after[:len(tc.after)-1], '\n')+1 : len(tc.after)-1]
			waitFor(t, "the rewritten contents", func() bool {
				for _, m := range app.messages() {
					if m == last {
						return true
					}
				}
				return false
			})
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			recs := app.snapshot()
			if recs[0].Source == recs[len(recs)-1].Source {
				t.Errorf("the rewritten contents kept the old Source")
			}
		})
	}
}

// TestReplayDoesNotResumeANewGeneration: after a crash, the buffer holds
// records appended since the last checkpoint, and the file has meanwhile
// been rewritten. The tailer must read the new contents from the start,
// not resume them where the old contents' last buffered record ended:
// neither when only the first line is the same, nor when the new contents
// repeat the old ones up to the checkpoint (which the checkpoint's own
// checks pass) and differ only after it.
func TestReplayDoesNotResumeANewGeneration(t *testing.T) {
	const header = "banner v1\n"
	cases := map[string]string{
		"same first line":           header + fixed("new", 0, 200),
		"same up to the checkpoint": header + fixed("old", 0, 100) + fixed("new", 100, 200),
	}
	for name, rewritten := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "app.log")
			writeFile(t, path, header+fixed("old", 0, 100))
			app := &logAppender{}
			o := testOptions(t, filepath.Join(dir, "*.log"))
			o.Replayer = app
			_, stop := start(t, o, app)
			waitFor(t, "the old lines", func() bool { return app.count() == 101 })
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			// The crashed run appended old-0100..0129 after its last
			// checkpoint, then died.
			src := app.snapshot()[0].Source
			off := int64(len(header) + len(fixed("old", 0, 100)))
			var crashed buffer.Batch
			for i := 100; i < 130; i++ {
				l := fixed("old", i, i+1)
				r := record.Record{Source: src, Offset: off, End: off + int64(len(l)), Path: []byte(path), Message: []byte(l[:len(l)-1])}
				crashed.Add(r.AppendBinary(nil))
				off += int64(len(l))
			}
			if err := app.AppendBatch(context.Background(), &crashed); err != nil {
				t.Fatal(err)
			}
			// While skiff was down the file was rewritten.
			if err := os.WriteFile(path, []byte(rewritten), 0o644); err != nil {
				t.Fatal(err)
			}
			o.Registerer = nil
			_, stop = start(t, o, app)
			newLines := strings.Count(rewritten, "new-")
			waitFor(t, "the new lines", func() bool {
				_, n := sources(app.snapshot(), "new-")
				return n >= newLines
			})
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			recs := app.snapshot()
			checkGenerations(t, recs[:131], recs[131:], "new-", newLines)
			if got, _ := sources(recs[131:], ""); got[src] {
				t.Errorf("the rewritten file was read under the old contents' Source")
			}
		})
	}
}
