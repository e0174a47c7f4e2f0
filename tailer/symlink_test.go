package tailer

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// logBuffer collects a Tailer's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) lines(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range strings.Split(l.b.String(), "\n") {
		if strings.Contains(line, sub) {
			n++
		}
	}
	return n
}

// symlinkTree makes logs/ with a plain file, a link to a secret outside
// the volume and a link to a file inside it.
func symlinkTree(t *testing.T) (logs, secret string) {
	base := t.TempDir()
	logs = filepath.Join(base, "logs")
	secret = filepath.Join(base, "secrets", "token")
	writeFile(t, secret, "hunter2-secret\n")
	writeFile(t, filepath.Join(logs, "good.log"), "good\n")
	writeFile(t, filepath.Join(logs, "real", "inside.txt"), "inside\n")
	if err := os.Symlink(secret, filepath.Join(logs, "evil.log")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(logs, "real", "inside.txt"), filepath.Join(logs, "inside.log")); err != nil {
		t.Fatal(err)
	}
	return logs, secret
}

// TestSymlinks: the application container writes the log volume and must
// not be able to make skiff read other files through a symbolic link. By
// default no link is read; with FollowSymlinks a link is read only when
// its target lies inside a base directory of the globs. A refused link is
// counted every scan and logged once.
func TestSymlinks(t *testing.T) {
	for _, follow := range []bool{false, true} {
		name := "default"
		if follow {
			name = "follow"
		}
		t.Run(name, func(t *testing.T) {
			logs, _ := symlinkTree(t)
			o := testOptions(t, filepath.Join(logs, "*.log"))
			o.FollowSymlinks = follow
			var lb logBuffer
			o.Logger = slog.New(slog.NewTextHandler(&lb, nil))
			app := &memAppender{}
			tl, stop := start(t, o, app)
			want := []string{"good"}
			if follow {
				want = append(want, "inside")
			}
			waitFor(t, "the readable files", func() bool { return app.count() >= len(want) })
			// Several scans (every 50 ms), each counting the refusal.
			waitFor(t, "several scans", func() bool {
				return testutil.ToFloat64(tl.m.errors.WithLabelValues("symlink")) >= 5
			})
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			got := app.messages()
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("shipped %q, want %q", got, want)
			}
			for _, m := range got {
				if strings.Contains(m, "hunter2") {
					t.Fatalf("shipped the secret behind logs/evil.log: %q", m)
				}
			}
			if n := lb.lines("evil.log"); n != 1 {
				t.Errorf("the refused link is named in %d log lines, want 1", n)
			}
			if !follow {
				if n := lb.lines("inside.log"); n != 1 {
					t.Errorf("the link inside the volume is named in %d log lines, want 1 (links are not followed by default)", n)
				}
			}
		})
	}
}

// TestOpenRefusesSwappedLinks: what the scan found can be swapped for a
// link before it is opened. A file replaced by a link fails the open
// (O_NOFOLLOW); a directory replaced by a link on the way is caught by the
// real path of what was opened.
func TestOpenRefusesSwappedLinks(t *testing.T) {
	logs, secret := symlinkTree(t)
	for _, follow := range []bool{false, true} {
		o := testOptions(t, filepath.Join(logs, "**", "*.log"))
		o.FollowSymlinks = follow
		tl, err := New(o, &memAppender{})
		if err != nil {
			t.Fatal(err)
		}
		tl.match.resolveBases()
		if f, err := tl.openFile(filepath.Join(logs, "good.log")); err != nil {
			t.Fatalf("follow=%v: open a plain file: %v", follow, err)
		} else {
			f.Close()
		}
		// logs/sub was a directory when the scan listed it, and is now a
		// link to the secrets' directory.
		sub := filepath.Join(logs, "sub")
		os.Remove(sub)
		if err := os.Symlink(filepath.Dir(secret), sub); err != nil {
			t.Fatal(err)
		}
		if f, err := tl.openFile(filepath.Join(sub, filepath.Base(secret))); !errors.Is(err, errSymlink) {
			if f != nil {
				f.Close()
			}
			t.Errorf("follow=%v: open through a swapped directory: err %v, want errSymlink", follow, err)
		}
		// evil.log is a link out of the volume in either mode.
		if f, err := tl.openFile(filepath.Join(logs, "evil.log")); !errors.Is(err, errSymlink) {
			if f != nil {
				f.Close()
			}
			t.Errorf("follow=%v: open a link out of the volume: err %v, want errSymlink", follow, err)
		}
	}
}
