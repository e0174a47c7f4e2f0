package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestScenarioUnterminatedLastLine: an application writes a last line
// without "\n" and idles. With the defaults, that line arrives within 3 s,
// marked partial; skiff is then killed (SIGKILL), the application
// completes the line, and after the restart the rest arrives as its
// continuation (partial, at its own offset): nothing lost, the first piece
// not shipped again under another ID (a re-read from the line's start
// would reuse the piece's ID, be refused as a conflict and lose the rest).
func TestScenarioUnterminatedLastLine(t *testing.T) {
	logs, data := t.TempDir(), t.TempDir()
	path := filepath.Join(logs, "app.log")
	es := newESServer(t, nil)
	env := esEnv(data, es, filepath.Join(logs, "*.log"))
	appendLines(t, path, "first")
	p := start(t, env)
	waitFor(t, 20*time.Second, "the first line", func() bool { return es.has("first") })

	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("half a"); err != nil {
		t.Fatal(err)
	}
	wrote := time.Now()
	waitFor(t, 10*time.Second, "the unterminated line", func() bool { return es.has("half a") })
	if d := time.Since(wrote); d > 3*time.Second {
		t.Errorf("the unterminated line arrived %v after it was written, want within 3s", d)
	} else {
		t.Logf("the unterminated line arrived %v after it was written", d.Round(time.Millisecond))
	}
	p.cmd.Process.Kill()
	p.wait(10 * time.Second)

	if _, err := f.WriteString(" line\nnext\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	p = start(t, env)
	waitFor(t, 20*time.Second, "the line after the completed one", func() bool { return es.has("next") })
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
	var got []string
	for _, d := range es.docsWith("") {
		got = append(got, fmt.Sprintf("%q@%d/%v", d.Message, d.Offset, d.Partial))
	}
	slices.Sort(got)
	want := []string{`" line"@12/true`, `"first"@0/false`, `"half a"@6/true`, `"next"@18/false`}
	if !slices.Equal(got, want) {
		t.Errorf("stored %q, want %q", got, want)
	}
}
