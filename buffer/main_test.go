package buffer

import (
	"os"
	"os/exec"
	"testing"

	"go.uber.org/goleak"
)

// hotOffEnv, when set, turns the hot window off in every Log a test opens
// without choosing a HotBytes of its own: TestSuiteWithoutHotWindow runs
// the whole suite so, for the disk path to stay tested on its own.
const hotOffEnv = "SKIFF_BUFFER_TEST_HOT_OFF"

func withTestHot(o Options) Options {
	if o.HotBytes == 0 && os.Getenv(hotOffEnv) != "" {
		o.HotBytes = -1
	}
	return o
}

// TestSuiteWithoutHotWindow runs every other test of the package again,
// in a child process, with the hot window off: a cursor that keeps up then
// reads from disk, as one that fell behind does, and every guarantee must
// hold either way. The slowest tests that read only what a new process
// finds (the window starts empty) are left out.
func TestSuiteWithoutHotWindow(t *testing.T) {
	if os.Getenv(hotOffEnv) != "" {
		t.Skip("this is the run without the hot window")
	}
	if testing.Short() {
		t.Skip("runs the whole suite again")
	}
	cmd := exec.Command(os.Args[0], "-test.run=.", "-test.skip=^(TestSuiteWithoutHotWindow|TestCrashSIGKILL|TestTornTailEveryOffset|TestBitFlipTail)$", "-test.count=1", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), hotOffEnv+"=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the suite without the hot window failed: %v\n%s", err, out)
	}
}

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	goleak.VerifyTestMain(m)
}
