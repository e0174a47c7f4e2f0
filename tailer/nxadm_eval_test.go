package tailer

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nxadm/tail"
)

// TestNxadmTailRenameRotation measures whether github.com/nxadm/tail, the
// library first chosen for following, keeps every line through rename
// rotation under load, configured as STYLE.md asks (Follow, ReOpen,
// CompleteLines, no rate limiter). It is a measurement, not a gate on our
// code: set SKIFF_EVAL_NXADM=1 to run it; docs/TAILER.md records results.
func TestNxadmTailRenameRotation(t *testing.T) {
	if os.Getenv("SKIFF_EVAL_NXADM") == "" {
		t.Skip("set SKIFF_EVAL_NXADM=1 to measure nxadm/tail")
	}
	for _, poll := range []bool{false, true} {
		for _, after := range []int{0, 20} {
			dir := t.TempDir()
			path := filepath.Join(dir, "app.log")
			writeFile(t, path, "")
			tl, err := tail.TailFile(path, tail.Config{
				Follow: true, ReOpen: true, CompleteLines: true, Poll: poll,
				Logger: tail.DiscardingLogger,
			})
			if err != nil {
				t.Fatal(err)
			}
			var msgs []string
			done := make(chan struct{})
			go func() {
				defer close(done)
				for l := range tl.Lines {
					msgs = append(msgs, l.Text)
				}
			}()
			w := &loadWriter{path: path, lines: 15000, rotateBytes: 200 << 10, mode: "rename", afterRotate: after}
			if err := w.run(t); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Second) // let it catch up: this is a measurement
			_ = tl.Stop()
			<-done
			tl.Cleanup()
			missing, repeated := seqCheck(msgs, w.lines)
			t.Logf("nxadm/tail poll=%v, %d lines written to the old file after each rename: %d lines, %d rotations: %d lost, %d repeated (first lost: %s)",
				poll, after, w.lines, w.rotations, len(missing), len(repeated), short(missing))
		}
	}
}
