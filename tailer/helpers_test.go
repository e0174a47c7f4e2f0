package tailer

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/skiff-dev/skiff/buffer"
	"github.com/skiff-dev/skiff/internal/record"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	var opts []goleak.Option
	if os.Getenv("SKIFF_EVAL_NXADM") != "" {
		// nxadm/tail keeps a process-wide inotify goroutine forever.
		opts = append(opts, goleak.IgnoreTopFunction("github.com/nxadm/tail/watch.(*InotifyTracker).run"),
			goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
	}
	goleak.VerifyTestMain(m, opts...)
}

// memAppender is an Appender that keeps decoded copies of what it got.
// gate, when set, makes Append wait until it is closed (a full buffer);
// meanwhile it reports itself blocked (BlockReporter). delay makes every
// Append take that long without being blocked (a slow fsync).
type memAppender struct {
	mu        sync.Mutex
	recs      []record.Record
	appends   int
	syncs     int
	gate      chan struct{}
	entered   chan struct{} // gets a value when an Append starts waiting on gate
	blockedAt time.Time     // when the Append waiting on gate began to
	delay     time.Duration
}

func (a *memAppender) BlockedSince() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.blockedAt
}

func (a *memAppender) AppendBatch(ctx context.Context, recs *buffer.Batch) error {
	a.mu.Lock()
	gate := a.gate
	a.mu.Unlock()
	if a.delay > 0 {
		time.Sleep(a.delay)
	}
	if gate != nil {
		a.mu.Lock()
		a.blockedAt = time.Now()
		a.mu.Unlock()
		if a.entered != nil {
			select {
			case a.entered <- struct{}{}:
			default:
			}
		}
		var err error
		select {
		case <-gate:
		case <-ctx.Done():
			err = ctx.Err()
		}
		a.mu.Lock()
		a.blockedAt = time.Time{}
		a.mu.Unlock()
		if err != nil {
			return err
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.appends++
	for i := range recs.Len() {
		var r record.Record
		if err := r.Decode(recs.Record(i)); err != nil {
			return err
		}
		r.Path = bytes.Clone(r.Path)
		r.Message = bytes.Clone(r.Message)
		a.recs = append(a.recs, r)
	}
	return nil
}

func (a *memAppender) Sync() error {
	a.mu.Lock()
	a.syncs++
	a.mu.Unlock()
	return nil
}

func (a *memAppender) snapshot() []record.Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]record.Record(nil), a.recs...)
}

func (a *memAppender) messages() []string {
	var s []string
	for _, r := range a.snapshot() {
		s = append(s, string(r.Message))
	}
	return s
}

func (a *memAppender) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.recs)
}

// testOptions are fast-polling options for tests.
func testOptions(t testing.TB, paths ...string) Options {
	return Options{
		Paths:              paths,
		DataDir:            filepath.Join(t.TempDir(), "data"),
		ScanInterval:       50 * time.Millisecond,
		CheckpointInterval: 50 * time.Millisecond,
		Registerer:         prometheus.NewRegistry(),
		Logger:             testLogger(t),
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("SKIFF_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// start runs a Tailer until the returned stop is called; stop returns
// Run's error.
func start(t testing.TB, o Options, app Appender) (*Tailer, func() error) {
	t.Helper()
	tl, err := New(o, app)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tl.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return tl, stop
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t testing.TB, path, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

var seqRE = regexp.MustCompile(`seq=(\d+)`)

// seqCheck counts sequence numbers in messages and returns the missing and
// the repeated ones among 0..n-1.
func seqCheck(msgs []string, n int) (missing, repeated []int) {
	seen := make([]int, n)
	for _, m := range msgs {
		sm := seqRE.FindStringSubmatch(m)
		if sm == nil {
			continue
		}
		i, _ := strconv.Atoi(sm[1])
		if i < n {
			seen[i]++
		}
	}
	for i, c := range seen {
		switch {
		case c == 0:
			missing = append(missing, i)
		case c > 1:
			repeated = append(repeated, i)
		}
	}
	return missing, repeated
}

func seqLine(i int, pad int) string {
	return fmt.Sprintf("%s seq=%08d %s\n", time.Now().UTC().Format(time.RFC3339Nano), i, padding[:pad])
}

var padding = string(bytes.Repeat([]byte("abcdefghijklmnopqrstuvwxyz0123456789"), 64))

// short renders sorted numbers as ranges: "3-9,12 (8 in all)".
func short(xs []int) string {
	var b strings.Builder
	for i := 0; i < len(xs); {
		j := i
		for j+1 < len(xs) && xs[j+1] == xs[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if b.Len() > 200 {
			b.WriteString("…")
			break
		}
		if j > i {
			fmt.Fprintf(&b, "%d-%d", xs[i], xs[j])
		} else {
			fmt.Fprintf(&b, "%d", xs[i])
		}
		i = j + 1
	}
	return fmt.Sprintf("%s (%d in all)", b.String(), len(xs))
}
