package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/loggen"
)

// long reports whether the long versions of the scenarios were asked for.
func long() bool { return os.Getenv("SKIFF_LONG") != "" }

func pick[T any](short, longV T) T {
	if long() {
		return longV
	}
	return short
}

// generate runs a loggen generator to completion (or until ctx is done)
// and returns the lines written per stream.
func generate(t *testing.T, ctx context.Context, o loggen.Options) map[string]uint64 {
	t.Helper()
	g, err := loggen.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Run(ctx); err != nil && ctx.Err() == nil {
		t.Fatal(err)
	}
	want := map[string]uint64{}
	for _, s := range g.Stats() {
		want[s.Stream.ID] = s.Lines
	}
	return want
}

func streams(dir string, n int) []loggen.Stream {
	var out []loggen.Stream
	for i := 0; i < n; i++ {
		out = append(out, loggen.Stream{ID: fmt.Sprintf("s%d", i), Path: filepath.Join(dir, fmt.Sprintf("app%d.log", i))})
	}
	return out
}

// httpEnv runs skiff with one HTTP sink pointing at r, with retry timings
// short enough for tests.
func httpEnv(data string, r *receiver, paths ...string) map[string]string {
	env := baseEnv(data, paths...)
	env["SKIFF_SINKS"] = "http"
	env["SKIFF_HTTP_URL"] = r.url()
	env["SKIFF_HTTP_BACKOFF_MAX"] = "500ms"
	return env
}

func total(want map[string]uint64) (n uint64) {
	for _, v := range want {
		n += v
	}
	return n
}

func waitDelivered(t *testing.T, r *receiver, want map[string]uint64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done := true
		for id, n := range want {
			done = done && r.distinct(id) >= n
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			r.mu.Lock()
			err := r.checker.Verify(want, true)
			r.mu.Unlock()
			t.Fatalf("timed out after %v waiting for every line at the receiver: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Scenario 1: bulk, pre-written over several files, shipped from the start.
func TestScenarioBulk(t *testing.T) {
	logs, data := t.TempDir(), t.TempDir()
	want := generate(t, context.Background(), loggen.Options{Streams: streams(logs, 4), Size: 200, Lines: pick[uint64](20000, 400000)})
	r := newReceiver(t)
	p := start(t, httpEnv(data, r, filepath.Join(logs, "*.log")))
	waitDelivered(t, r, want, pick(60*time.Second, 10*time.Minute))
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
	r.verify(t, want, false)
}

// Scenario 2: live, steady appends; reports end-to-end latency.
func TestScenarioLive(t *testing.T) {
	logs, data := t.TempDir(), t.TempDir()
	r := newReceiver(t)
	p := start(t, httpEnv(data, r, filepath.Join(logs, "*.log")))
	want := generate(t, context.Background(), loggen.Options{Streams: streams(logs, 2), Size: 200, Rate: 1000,
		Duration: pick(3*time.Second, 60*time.Second), Timestamp: true})
	waitDelivered(t, r, want, 30*time.Second)
	p.signal(syscall.SIGTERM)
	p.wait(30 * time.Second)
	r.verify(t, want, false)
	r.mu.Lock()
	lat := append([]time.Duration(nil), r.latency...)
	r.mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		t.Logf("latency write→receipt over %d lines: p50 %v, p99 %v, max %v", len(lat), lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
	}
}

// Scenario 3: rotation under load, rename+create and copytruncate.
func TestScenarioRotation(t *testing.T) {
	for name, mode := range map[string]loggen.RotateMode{"rename": loggen.RotateRename, "copytruncate": loggen.RotateCopyTruncate} {
		t.Run(name, func(t *testing.T) {
			logs, data := t.TempDir(), t.TempDir()
			r := newReceiver(t)
			p := start(t, httpEnv(data, r, filepath.Join(logs, "*.log*")))
			time.Sleep(300 * time.Millisecond) // let skiff start watching: lines written before are read from head anyway
			want := generate(t, context.Background(), loggen.Options{Streams: streams(logs, 2), Size: 200, Rate: pick(5000.0, 20000.0),
				Duration: pick(3*time.Second, 60*time.Second), RotateBytes: 300 << 10, Keep: 5, RotateMode: mode})
			waitDelivered(t, r, want, 60*time.Second)
			p.signal(syscall.SIGTERM)
			p.wait(30 * time.Second)
			// Rename rotation must neither lose nor repeat; copytruncate
			// can only repeat (the copy is excluded by name here: it is
			// *.log.N, inside the glob, and is a new identity whose content
			// was already read from the original — so duplicates are
			// allowed for it).
			r.verify(t, want, mode == loggen.RotateCopyTruncate)
			if mode == loggen.RotateCopyTruncate {
				for id := range want {
					t.Logf("copytruncate stream %s: %d duplicates", id, r.duplicates(id))
				}
			}
		})
	}
}

// Scenario 4: SIGKILL at random moments during continuous writes with
// rotation, restart on the same data dir, then drain.
func TestScenarioCrash(t *testing.T) {
	logs, data := t.TempDir(), t.TempDir()
	r := newReceiver(t)
	env := httpEnv(data, r, filepath.Join(logs, "*.log*"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan map[string]uint64)
	go func() {
		done <- generate(t, ctx, loggen.Options{Streams: streams(logs, 2), Size: 200, Rate: 3000, RotateBytes: 512 << 10, Keep: 20})
	}()
	kills := pick(3, 40)
	for i := 0; i < kills; i++ {
		p := start(t, env)
		time.Sleep(time.Duration(300+i*137%700) * time.Millisecond)
		p.signal(syscall.SIGKILL)
		p.wait(10 * time.Second)
	}
	cancel()
	want := <-done
	p := start(t, env)
	waitDelivered(t, r, want, 60*time.Second)
	p.signal(syscall.SIGTERM)
	p.wait(30 * time.Second)
	r.verify(t, want, true)
	for id := range want {
		t.Logf("stream %s: %d lines, %d duplicates over %d kills", id, want[id], r.duplicates(id), kills)
	}
}

// Scenario 5: outage — 503, then connection resets, then 429 with
// Retry-After — then recovery; the data dir stays within the bound.
func TestScenarioOutage(t *testing.T) {
	logs, data := t.TempDir(), t.TempDir()
	r := newReceiver(t)
	env := httpEnv(data, r, filepath.Join(logs, "*.log"))
	env["SKIFF_BUFFER_MAX_BYTES"] = "16MiB"
	p := start(t, env)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan map[string]uint64)
	go func() {
		done <- generate(t, ctx, loggen.Options{Streams: streams(logs, 2), Size: 200, Rate: 2000})
	}()
	var maxBuf int64
	phase := pick(2*time.Second, 20*time.Second)
	for _, m := range []int32{mode503, modeReset, mode429} {
		r.mode.Store(m)
		end := time.Now().Add(phase)
		for time.Now().Before(end) {
			if n := dirBytes(filepath.Join(data, "buffer")); n > maxBuf {
				maxBuf = n
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	r.mode.Store(modeOK)
	cancel()
	want := <-done
	waitDelivered(t, r, want, 60*time.Second)
	p.signal(syscall.SIGTERM)
	p.wait(30 * time.Second)
	r.verify(t, want, true)
	if maxBuf > 16<<20 {
		t.Errorf("buffer reached %d bytes on disk, bound is %d", maxBuf, 16<<20)
	}
	r.mu.Lock()
	early := r.early
	r.mu.Unlock()
	if early > 0 {
		t.Errorf("%d requests arrived before Retry-After had passed", early)
	}
}

// dirBytes sums the sizes of the regular files under dir.
func dirBytes(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// Scenario 6: SIGTERM right after a burst; everything written before the
// signal is delivered before exit, and the exit is 0.
func TestScenarioShutdown(t *testing.T) {
	logs, data := t.TempDir(), t.TempDir()
	r := newReceiver(t)
	p := start(t, httpEnv(data, r, filepath.Join(logs, "*.log")))
	time.Sleep(500 * time.Millisecond)
	want := generate(t, context.Background(), loggen.Options{Streams: streams(logs, 3), Size: 200, Lines: pick[uint64](20000, 200000)})
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	r.verify(t, want, false) // no waiting: it must all be there at exit
}

// Scenario 7: bad input among normal lines.
func TestScenarioBadInput(t *testing.T) {
	logs, data := t.TempDir(), t.TempDir()
	r := newReceiver(t)
	p := start(t, httpEnv(data, r, filepath.Join(logs, "*.log")))
	f, err := os.Create(filepath.Join(logs, "bad.log"))
	if err != nil {
		t.Fatal(err)
	}
	var normal [][]byte
	line := func(seq uint64) []byte {
		l := loggen.AppendLine(nil, loggen.FormatPlain, loggen.Line{Stream: "bad", Seq: seq}, 120)
		normal = append(normal, l)
		return append(l, '\n')
	}
	var content []byte
	seq := uint64(1)
	for _, junk := range [][]byte{
		[]byte(strings.Repeat("L", 5<<20) + "\n"),   // a 5 MiB line
		[]byte("invalid utf-8: \xff\xfe\xfd end\n"), //
		[]byte("nul \x00\x00 bytes\n"),
		[]byte("crlf line\r\n"),
		[]byte("control \x01\x02\x1b[31m chars\n"),
	} {
		content = append(content, line(seq)...)
		seq++
		content = append(content, junk...)
	}
	content = append(content, line(seq)...)
	content = append(content, "final line without newline"...)
	if _, err := f.Write(content); err != nil {
		t.Fatal(err)
	}
	f.Close()
	want := map[string]uint64{"bad": seq}
	waitDelivered(t, r, want, 30*time.Second)
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
	r.verify(t, want, false)
	r.mu.Lock()
	defer r.mu.Unlock()
	got := strings.Join(r.other, "\n")
	for _, w := range []string{"invalid utf-8: \xff\xfe\xfd end", "nul \x00\x00 bytes", "crlf line", "control \x01\x02\x1b[31m chars", "final line without newline"} {
		if !strings.Contains(got, w) {
			t.Errorf("line %q not delivered exactly", w)
		}
	}
	long := 0
	for _, o := range r.other {
		if strings.Trim(o, "L") == "" {
			long += len(o)
		}
	}
	if long != 5<<20 {
		t.Errorf("the 5 MiB line arrived as %d bytes of pieces", long)
	}
}

// Scenario 8: two sinks, one stalled; the other keeps delivering.
func TestScenarioSlowSinkIsolation(t *testing.T) {
	logs, data := t.TempDir(), t.TempDir()
	fast, slow := newReceiver(t), newReceiver(t)
	slow.mode.Store(modeStall)
	env := baseEnv(data, filepath.Join(logs, "*.log"))
	env["SKIFF_SINKS"] = "fast:http,slow:http"
	env["SKIFF_FAST_URL"] = fast.url()
	env["SKIFF_SLOW_URL"] = slow.url()
	env["SKIFF_SLOW_TIMEOUT"] = "500ms"
	env["SKIFF_SLOW_BACKOFF_MAX"] = "500ms"
	p := start(t, env)
	want := generate(t, context.Background(), loggen.Options{Streams: streams(logs, 2), Size: 200, Rate: 2000, Duration: pick(3*time.Second, 30*time.Second)})
	waitDelivered(t, fast, want, 30*time.Second)
	slow.mode.Store(modeOK)
	waitDelivered(t, slow, want, 60*time.Second)
	p.signal(syscall.SIGTERM)
	p.wait(30 * time.Second)
	fast.verify(t, want, false)
	slow.verify(t, want, true)
}

// Scenario 9: the data dir's volume fills up; skiff degrades, then
// recovers by itself when space returns, losing nothing.
func TestScenarioDiskFull(t *testing.T) {
	logs := t.TempDir()
	data := filepath.Join(t.TempDir(), "vol")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", data).CombinedOutput(); err != nil {
		skipUnprivileged(t, "cannot mount a small tmpfs here (%v: %s)", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", data).Run() })
	r := newReceiver(t)
	r.mode.Store(mode503) // the sink is down too, so the buffer must hold everything
	env := httpEnv(data, r, filepath.Join(logs, "*.log"))
	env["SKIFF_BUFFER_MAX_BYTES"] = "64MiB" // more than the volume holds
	env["SKIFF_METRICS_ADDR"] = freeAddr(t)
	defer func() {
		if t.Failed() {
			_, body, _ := httpGet(context.Background(), "http://"+env["SKIFF_METRICS_ADDR"]+"/metrics")
			for _, l := range strings.Split(body, "\n") {
				if strings.HasPrefix(l, "skiff_") {
					t.Log(l)
				}
			}
		}
	}()
	p := start(t, env)
	// Ballast leaves ~2 MiB for the buffer, which needs ~7.5 MiB.
	ballast := filepath.Join(data, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 14<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	want := generate(t, context.Background(), loggen.Options{Streams: streams(logs, 1), Size: 200, Lines: 30000}) // ~7.5 MiB in the buffer
	time.Sleep(2 * time.Second)                                                                                   // skiff hits ENOSPC
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	r.mode.Store(modeOK)
	defer func() {
		t.Logf("received %d distinct of %v; other %d; %+v", r.distinct("s0"), want, len(r.other), r.checker.Result("s0", 30000))
	}()
	waitDelivered(t, r, want, 60*time.Second)
	p.signal(syscall.SIGTERM)
	p.wait(30 * time.Second)
	r.verify(t, want, true)
}

// TestSoak combines rename rotation, SIGKILLs at random moments and a
// flaky sink (503s, resets, 429s, stalls) for SKIFF_SOAK (a duration, e.g.
// 10m); it is skipped otherwise. Every line must arrive; duplicates only
// from kills and failed requests.
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("SKIFF_SOAK"))
	if err != nil || d <= 0 {
		t.Skip("set SKIFF_SOAK=10m to run the soak")
	}
	logs, data := t.TempDir(), t.TempDir()
	r := newReceiver(t)
	env := httpEnv(data, r, filepath.Join(logs, "*.log*"))
	env["SKIFF_HTTP_TIMEOUT"] = "2s"
	env["SKIFF_BUFFER_MAX_BYTES"] = "32MiB"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan map[string]uint64)
	go func() {
		done <- generate(t, ctx, loggen.Options{Streams: streams(logs, 3), Size: 200, Rate: 2000, RotateBytes: 1 << 20, Keep: 3})
	}()
	modes := []int32{modeOK, modeOK, mode503, modeOK, modeReset, modeOK, mode429, modeSlowOK, modeStall}
	end := time.Now().Add(d)
	kills := 0
	for i := 0; time.Now().Before(end); i++ {
		p := start(t, env)
		for j := 0; j < 3 && time.Now().Before(end); j++ {
			r.mode.Store(modes[(i*3+j)%len(modes)])
			time.Sleep(time.Duration(1+(i*7+j)%5) * time.Second)
		}
		r.mode.Store(modeOK)
		p.signal(syscall.SIGKILL)
		p.wait(10 * time.Second)
		kills++
	}
	cancel()
	want := <-done
	r.mode.Store(modeOK)
	p := start(t, env)
	waitDelivered(t, r, want, 5*time.Minute)
	p.signal(syscall.SIGTERM)
	p.wait(30 * time.Second)
	r.verify(t, want, true)
	for id := range want {
		t.Logf("stream %s: %d lines, %d duplicates, %d kills", id, want[id], r.duplicates(id), kills)
	}
}

// TestScenarioUnreadableFile: skiff runs as an unprivileged user (as in a
// pod with runAsNonRoot) and one matching file is not readable by it. The
// other files ship; the unreadable one is reported once, with its path and
// the reason, and counted; once its mode is fixed, its lines ship too,
// none lost and none repeated.
func TestScenarioUnreadableFile(t *testing.T) {
	if os.Geteuid() != 0 {
		skipUnprivileged(t, "needs root to run skiff as another user")
	}
	base, err := os.MkdirTemp("", "skiff-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	logs, data := filepath.Join(base, "logs"), filepath.Join(base, "data")
	for _, d := range []string{logs, data} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const nobody = 65534
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(data, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	const n = 2000
	write := func(stream string, mode os.FileMode) string {
		var b []byte
		for seq := uint64(1); seq <= n; seq++ {
			b = loggen.AppendLine(b, loggen.FormatPlain, loggen.Line{Stream: stream, Seq: seq}, 100)
			b = append(b, '\n')
		}
		path := filepath.Join(logs, stream+".log")
		if err := os.WriteFile(path, b, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil { // umask may have narrowed it
			t.Fatal(err)
		}
		return path
	}
	write("open", 0o644)
	secret := write("secret", 0o600) // root's, unreadable by nobody

	r := newReceiver(t)
	env := httpEnv(data, r, filepath.Join(logs, "*.log"))
	env["SKIFF_METRICS_ADDR"] = freeAddr(t)
	p := startAs(t, &syscall.Credential{Uid: nobody, Gid: nobody}, env)
	waitDelivered(t, r, map[string]uint64{"open": n}, 30*time.Second)
	metric := func() string {
		_, body, err := httpGet(context.Background(), "http://"+env["SKIFF_METRICS_ADDR"]+"/metrics")
		if err != nil {
			return ""
		}
		for _, l := range strings.Split(body, "\n") {
			if strings.HasPrefix(l, `skiff_tailer_errors_total{kind="permission"}`) {
				return l
			}
		}
		return ""
	}
	waitFor(t, 10*time.Second, "the permission error counted", func() bool { return metric() != "" })
	// More scans: periodic ones (SKIFF_SCAN_INTERVAL is 200ms) and those
	// that new files in the directory trigger.
	for i := range 5 {
		appendLines(t, filepath.Join(logs, fmt.Sprintf("other%d.txt", i)), "not matched")
		time.Sleep(200 * time.Millisecond)
	}
	named := 0
	for _, l := range strings.Split(p.stderr.String(), "\n") {
		if strings.Contains(l, secret) {
			named++
		}
	}
	if named != 1 {
		t.Errorf("the unreadable file is named in %d log lines, want 1 (reported once, not every scan):\n%s", named, tail(p.stderr.String(), 2000))
	}
	if !strings.Contains(p.stderr.String(), "permission denied") {
		t.Errorf("the log does not say why the file cannot be read:\n%s", tail(p.stderr.String(), 2000))
	}

	if err := os.Chmod(secret, 0o644); err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"open": n, "secret": n}
	waitDelivered(t, r, want, 30*time.Second)
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
	r.verify(t, want, false)
}

// TestScenarioUnreadableDirectory: as TestScenarioUnreadableFile, for
// directories under a ** glob that skiff (run as nobody) may not list. The
// files elsewhere ship; each directory is logged once, with its path and
// the reason (two of them: the second warning is not taken for a repeat of
// the first), and counted; the rescans keep trying them, and once they are
// listable their files ship from their start, none lost and none repeated.
func TestScenarioUnreadableDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		skipUnprivileged(t, "needs root to run skiff as another user")
	}
	base, err := os.MkdirTemp("", "skiff-permdir-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	logs, data := filepath.Join(base, "logs"), filepath.Join(base, "data")
	private, private2 := filepath.Join(logs, "private"), filepath.Join(logs, "private2")
	for _, d := range []string{logs, data, filepath.Join(logs, "open"), private, private2} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const nobody = 65534
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(data, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	const n = 2000
	write := func(dir, stream string) {
		var b []byte
		for seq := uint64(1); seq <= n; seq++ {
			b = loggen.AppendLine(b, loggen.FormatPlain, loggen.Line{Stream: stream, Seq: seq}, 100)
			b = append(b, '\n')
		}
		if err := os.WriteFile(filepath.Join(dir, stream+".log"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(logs, "open"), "open")
	write(private, "hidden") // the files are readable; their directories are not
	write(private2, "hidden2")
	for _, d := range []string{private, private2} {
		if err := os.Chmod(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}

	r := newReceiver(t)
	env := httpEnv(data, r, filepath.Join(logs, "**", "*.log"))
	env["SKIFF_METRICS_ADDR"] = freeAddr(t)
	p := startAs(t, &syscall.Credential{Uid: nobody, Gid: nobody}, env)
	waitDelivered(t, r, map[string]uint64{"open": n}, 30*time.Second)
	ctx := context.Background()
	counted := func() float64 {
		v, err := metric(ctx, env["SKIFF_METRICS_ADDR"], "skiff_tailer_errors_total", `kind="permission"`)
		if err != nil {
			return 0
		}
		return v
	}
	// Every rescan (SKIFF_SCAN_INTERVAL is 200ms) tries the directory again.
	waitFor(t, 10*time.Second, "the permission error counted at several scans", func() bool { return counted() >= 5 })
	for _, d := range []string{private, private2} {
		named := 0
		for _, l := range strings.Split(p.stderr.String(), "\n") {
			if strings.Contains(l, `"path":"`+d+`"`) {
				named++
			}
		}
		if named != 1 {
			t.Errorf("unlistable directory %s is named in %d log lines, want 1 (reported once, not every scan):\n%s", d, named, tail(p.stderr.String(), 2000))
		}
	}
	if !strings.Contains(p.stderr.String(), "permission denied") {
		t.Errorf("the log does not say why the directory cannot be read:\n%s", tail(p.stderr.String(), 2000))
	}

	for _, d := range []string{private, private2} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]uint64{"open": n, "hidden": n, "hidden2": n}
	waitDelivered(t, r, want, 30*time.Second)
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
	r.verify(t, want, false)
}

// skipUnprivileged skips a test that needs root (mounts, another user)
// where it cannot run, or fails it when SKIFF_REQUIRE_PRIVILEGED=1, as
// .ci/run sets it: a CI that cannot exercise ENOSPC or EROFS must show.
func skipUnprivileged(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("SKIFF_REQUIRE_PRIVILEGED") == "1" {
		t.Fatalf("SKIFF_REQUIRE_PRIVILEGED=1, but: "+format, args...)
	}
	t.Skipf(format, args...)
}
