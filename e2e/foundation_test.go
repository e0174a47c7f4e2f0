package e2e

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestCheckReportsAllProblems(t *testing.T) {
	env := map[string]string{
		"SKIFF_DATA_DIR":         t.TempDir(),
		"SKIFF_BUFER_MAX_BYTES":  "1GiB",
		"SKIFF_SINKS":            "stdout,elastic",
		"SKIFF_BUFFER_MAX_BYTES": "lots",
	}
	cmd := exec.Command(skiffBin, "check")
	cmd.Env = environ(env)
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Fatalf("skiff check: err %v, want exit 2; output:\n%s", err, out)
	}
	for _, want := range []string{
		"4 configuration problem(s)",
		"SKIFF_BUFER_MAX_BYTES is not a skiff variable; did you mean SKIFF_BUFFER_MAX_BYTES?",
		`unknown sink type "elastic"`,
		`SKIFF_BUFFER_MAX_BYTES: "lots" is not accepted`,
		"SKIFF_PATHS is required",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	good := baseEnv(t.TempDir(), "/var/log/app/*.log")
	cmd = exec.Command(skiffBin, "check")
	cmd.Env = environ(good)
	out, err = cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SKIFF_PATHS=/var/log/app/*.log") {
		t.Fatalf("skiff check on a good config: %v\n%s", err, out)
	}
}

// TestStdoutExactlyOnce: lines appended to files appear on stdout exactly
// once, and SIGTERM exits 0 after shipping them.
func TestStdoutExactlyOnce(t *testing.T) {
	logs := t.TempDir()
	p := start(t, baseEnv(t.TempDir(), filepath.Join(logs, "*.log")))
	c := newCollector()
	drained := c.drain(t, p)

	var want []string
	for f := 0; f < 3; f++ {
		for batch := 0; batch < 5; batch++ {
			var lines []string
			for i := 0; i < 200; i++ {
				lines = append(lines, fmt.Sprintf("file=%d batch=%d line=%d", f, batch, i))
			}
			appendLines(t, filepath.Join(logs, fmt.Sprintf("app%d.log", f)), lines...)
			want = append(want, lines...)
		}
	}
	waitFor(t, 30*time.Second, "every line on stdout", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.total >= len(want)
	})
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	<-drained
	for _, w := range want {
		if n := c.count[w]; n != 1 {
			t.Errorf("line %q shipped %d times", w, n)
		}
	}
	if c.total != len(want) {
		t.Errorf("shipped %d records, want %d", c.total, len(want))
	}
}

// TestNewerBufferFormatExits2: a binary that finds a buffer written by a
// newer format version refuses to touch it (a rollback must not quarantine
// data) and exits 2 with a clear message.
func TestNewerBufferFormatExits2(t *testing.T) {
	logs, data := t.TempDir(), t.TempDir()
	appendLines(t, filepath.Join(logs, "app.log"), "one", "two")
	env := baseEnv(data, filepath.Join(logs, "*.log"))
	p := start(t, env)
	c := newCollector()
	drained := c.drain(t, p)
	waitFor(t, 10*time.Second, "two records", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.total == 2 })
	p.signal(syscall.SIGTERM)
	p.wait(30 * time.Second)
	<-drained

	segs, _ := filepath.Glob(filepath.Join(data, "buffer", "*.seg"))
	if len(segs) == 0 {
		t.Fatal("no segment written")
	}
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint16(b[4:6], 99) // format version (buffer/FORMAT.md)
	binary.LittleEndian.PutUint32(b[20:24], crc32.Checksum(b[:20], crc32.MakeTable(crc32.Castagnoli)))
	if err := os.WriteFile(segs[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	p = start(t, env)
	if code := p.wait(30 * time.Second); code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
	if !strings.Contains(p.stderr.String(), "version") {
		t.Errorf("stderr does not explain the version problem:\n%s", p.stderr.String())
	}
	after, _ := os.ReadFile(segs[0])
	if string(after) != string(b) {
		t.Error("the newer segment was modified")
	}
}
