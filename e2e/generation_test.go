package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// genLines returns n lines "<prefix>-<i> …" of one length, after banner.
func genLines(banner, prefix string, n int) (string, []string) {
	var b strings.Builder
	b.WriteString(banner)
	var msgs []string
	for i := range n {
		m := fmt.Sprintf("%s-%04d %s", prefix, i, strings.Repeat("x", 40))
		msgs = append(msgs, m)
		b.WriteString(m + "\n")
	}
	return b.String(), msgs
}

// TestScenarioRewriteSameFirstLine: a file truncated and rewritten with
// the same first bytes (here a banner longer than the 1 KiB fingerprint)
// and lines at the same offsets as before, first while skiff runs
// (copytruncate), then while it is down after a SIGKILL. Elasticsearch
// answers 409 to a create whose _id it has, and skiff counts that as
// delivered: if a rewritten file took the old contents' record IDs, its
// lines would be silently lost. Every line of every generation must be
// stored, and the rewritten contents must not resume where the old ones
// ended.
func TestScenarioRewriteSameFirstLine(t *testing.T) {
	logs, data := t.TempDir(), t.TempDir()
	path := filepath.Join(logs, "app.log")
	banner := strings.Repeat("== service v1.2.3 starting, no timestamps here ==\n", 30) // 1.5 KiB
	es := newESServer(t, nil)
	env := esEnv(data, es, filepath.Join(logs, "*.log"))

	body, first := genLines(banner, "first", 100)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, env)
	waitFor(t, 20*time.Second, "the first contents", func() bool { return es.has(first...) })

	// copytruncate: the same banner, lines at the same offsets.
	body, second := genLines(banner, "second", 100)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendRaw(t, path, body)
	waitFor(t, 20*time.Second, "every line of the rewritten file (a 409 for a reused _id loses it)", func() bool { return es.has(second...) })

	// Killed; rewritten while down.
	p.cmd.Process.Kill()
	p.wait(10 * time.Second)
	body, third := genLines(banner, "third", 120)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	p = start(t, env)
	waitFor(t, 20*time.Second, "every line of the file rewritten while skiff was down", func() bool { return es.has(third...) })
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}

	// The same offset in each generation has its own ID.
	ids := map[int64]map[string]bool{}
	for _, d := range es.docsWith("") {
		if ids[d.Offset] == nil {
			ids[d.Offset] = map[string]bool{}
		}
		ids[d.Offset][d.ID] = true
	}
	off := int64(len(banner))
	if n := len(ids[off]); n < 3 {
		t.Errorf("offset %d (the first line after the banner) has %d IDs, want one per generation (3)", off, n)
	}
}

// appendRaw appends s to path as it is.
func appendRaw(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}
