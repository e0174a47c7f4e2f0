package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// skiffBin is the binary under test, built once by TestMain.
var skiffBin string

func TestMain(m *testing.M) {
	if kind := os.Getenv(refShipEnv); kind != "" {
		os.Exit(runRefShipper(kind)) // the benchmark's reference shipper, not the tests
	}
	dir, err := os.MkdirTemp("", "skiff-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Readable by all: one scenario runs skiff as an unprivileged user.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	skiffBin = filepath.Join(dir, "skiff")
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	build := exec.Command(goBin, "build", "-o", skiffBin, "../cmd/skiff")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build skiff:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one running skiff process.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	lines  chan []byte // stdout lines, closed at EOF
	stderr *syncBuffer
	done   chan struct{}
	err    error // Wait's result, set before done closes
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// baseEnv is a minimal environment: no inherited SKIFF_ variable can leak
// into a test.
func baseEnv(dataDir string, paths ...string) map[string]string {
	return map[string]string{
		"SKIFF_PATHS":            strings.Join(paths, ","),
		"SKIFF_DATA_DIR":         dataDir,
		"SKIFF_METRICS_ADDR":     "off",
		"SKIFF_SCAN_INTERVAL":    "200ms",
		"SKIFF_SHUTDOWN_QUIET":   "300ms",
		"SKIFF_LOG_LEVEL":        "debug",
		"SKIFF_BUFFER_MAX_BYTES": "64MiB",
	}
}

func environ(env map[string]string) []string {
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	// The Go runtime's own knobs pass through, to measure their effect.
	for _, k := range []string{"GOGC", "GOMEMLIMIT", "GOMAXPROCS"} {
		if v, ok := os.LookupEnv(k); ok {
			out = append(out, k+"="+v)
		}
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// start runs skiff with env and streams its stdout lines.
func start(t *testing.T, env map[string]string, args ...string) *proc {
	t.Helper()
	return startAs(t, nil, env, args...)
}

// startAs is start with skiff running as another user (cred), or as the
// test's own user when cred is nil.
func startAs(t *testing.T, cred *syscall.Credential, env map[string]string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, lines: make(chan []byte, 1<<16), stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(skiffBin, args...)
	p.cmd.Env = environ(env)
	if cred != nil {
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	p.cmd.Stderr = p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			p.lines <- bytes.Clone(sc.Bytes())
		}
		close(p.lines)
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("skiff stderr (last 4KiB):\n%s", tail(p.stderr.String(), 4096))
			if dir := os.Getenv("SKIFF_E2E_STDERR_DIR"); dir != "" {
				f, err := os.CreateTemp(dir, "skiff-stderr-*.log")
				if err == nil {
					f.WriteString(p.stderr.String())
					f.Close()
					t.Logf("full stderr in %s", f.Name())
				}
			}
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// killed reports whether the process ended by SIGKILL.
func (p *proc) killed() bool {
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

func (p *proc) signal(sig syscall.Signal) {
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait waits for exit and returns the exit code.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("skiff did not exit within %v", timeout)
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if p.err != nil {
		p.t.Fatalf("wait: %v", p.err)
	}
	return 0
}

// shipped is one record as shipped in skiff's JSON form.
type shipped struct {
	ID      string `json:"id"`
	Time    string `json:"time"`
	Path    string `json:"path"`
	Offset  int64  `json:"offset"`
	Message string `json:"message"`
	Base64  string `json:"message_base64"`
	Partial bool   `json:"partial"`
}

// collector gathers the messages skiff ships, counting each.
type collector struct {
	mu     sync.Mutex
	count  map[string]int
	total  int
	signal chan struct{}
}

func newCollector() *collector {
	return &collector{count: map[string]int{}, signal: make(chan struct{}, 1)}
}

func (c *collector) add(msg string) {
	c.mu.Lock()
	c.count[msg]++
	c.total++
	c.mu.Unlock()
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

// drain feeds p's stdout records into c until p exits. The last line of a
// process killed with SIGKILL may be torn (a pipe write larger than
// PIPE_BUF is not atomic); any other undecodable line fails the test.
func (c *collector) drain(t *testing.T, p *proc) chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		var torn []byte
		for line := range p.lines {
			if torn != nil {
				t.Errorf("stdout line is not a record: %q", tail(string(torn), 200))
				torn = nil
			}
			var s shipped
			if err := json.Unmarshal(line, &s); err != nil {
				torn = line
				continue
			}
			c.add(s.Message)
		}
		<-p.done
		if torn != nil && !p.killed() {
			t.Errorf("last stdout line is not a record: %q", tail(string(torn), 200))
		}
	}()
	return done
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// appendLines appends lines to path, each terminated by LF.
func appendLines(t testing.TB, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.WriteString(f, strings.Join(lines, "\n")+"\n"); err != nil {
		t.Fatal(err)
	}
}

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func httpGet(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
