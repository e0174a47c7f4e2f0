package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/loggen"
)

// TestComposeDemoShipsLines runs the compose demo's two services as local
// processes, with the compose file's own environment and command (paths
// moved into a temporary directory, loggen bounded to a fixed number of
// lines): every generated line must come out of skiff's stdout sink intact,
// and the compose health check command (`skiff health`) must pass.
func TestComposeDemoShipsLines(t *testing.T) {
	tmp := t.TempDir()
	bins := buildBinaries(t, tmp)
	p := loadCompose(t, nil)
	skiffSvc, app := p.Services["skiff"], p.Services["app"]
	logs := filepath.Join(tmp, "logs")
	if err := os.Mkdir(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	var logMount string
	for _, v := range skiffSvc.Volumes {
		if v.Source == "app-logs" {
			logMount = v.Target
		}
	}
	move := func(s string) string { return strings.ReplaceAll(s, logMount, logs) }

	// No HOME, and a TMPDIR that does not exist: in the image the root
	// file system is read-only, so skiff must write nowhere but its data dir.
	env := []string{"PATH=" + os.Getenv("PATH"), "TMPDIR=" + filepath.Join(tmp, "no-such-tmp")}
	for k, v := range skiffSvc.Environment {
		switch k {
		case "SKIFF_DATA_DIR":
			*v = filepath.Join(tmp, "data")
		case "SKIFF_METRICS_ADDR":
			*v = freeAddr(t)
		}
		env = append(env, k+"="+move(*v))
	}
	var metricsAddr string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "SKIFF_METRICS_ADDR="); ok {
			metricsAddr = v
		}
	}

	skiff := exec.Command(bins["skiff"])
	skiff.Env = env
	stdout, err := skiff.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	skiff.Stderr = &stderr
	if err := skiff.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	checker := loggen.NewChecker()
	var mu sync.Mutex
	var others []string
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			var rec struct {
				Message *string           `json:"message"`
				JSON    json.RawMessage   `json:"json"`
				Fields  map[string]string `json:"fields"`
			}
			mu.Lock()
			switch {
			case json.Unmarshal(sc.Bytes(), &rec) != nil:
				others = append(others, sc.Text())
			case rec.Fields["container"] != "app":
				others = append(others, "no container=app field: "+sc.Text())
			case rec.JSON != nil:
				checker.Add(rec.JSON)
			case rec.Message != nil:
				checker.Add([]byte(*rec.Message))
			default:
				others = append(others, sc.Text())
			}
			mu.Unlock()
		}
		exited <- skiff.Wait()
	}()
	waited := false
	t.Cleanup(func() {
		if !waited {
			_ = skiff.Process.Kill()
			<-exited
		}
	})

	// The compose health check passes once skiff is up.
	health := exec.Command(bins["skiff"], "health")
	health.Env = []string{"SKIFF_METRICS_ADDR=" + metricsAddr}
	waitFor(t, 60*time.Second, "skiff health to pass", func() bool {
		c := exec.Command(health.Path, health.Args[1:]...)
		c.Env = health.Env
		return c.Run() == nil
	})

	// The application, as compose runs it, bounded.
	const lines = 3000
	args := []string{"-lines", "3000"}
	for i := 0; i < len(app.Command); i++ {
		a := app.Command[i]
		if a == "-rate" && i+1 < len(app.Command) {
			args = append(args, "-rate", "0")
			i++
			continue
		}
		args = append(args, move(a))
	}
	gen := exec.Command(bins["loggen"], args...)
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("loggen %v: %v\n%s", args, err, out)
	}

	waitFor(t, 90*time.Second, "every line to be shipped", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return checker.Result("s0", lines).MissingCount == 0
	})
	if err := skiff.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = <-exited
	waited = true
	if err != nil {
		t.Errorf("skiff exited with %v after SIGTERM\n%s", err, stderr.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if err := checker.Verify(map[string]uint64{"s0": lines}, false); err != nil {
		t.Error(err)
	}
	if len(others) > 0 {
		t.Errorf("%d unexpected stdout lines, first: %s", len(others), others[0])
	}
}

// buildBinaries builds cmd/skiff and cmd/loggen into dir.
func buildBinaries(t *testing.T, dir string) map[string]string {
	t.Helper()
	bins := map[string]string{}
	for _, name := range []string{"skiff", "loggen"} {
		bins[name] = filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-o", bins[name], "./cmd/"+name)
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", name, err, out)
		}
	}
	return bins
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitFor polls cond until it holds or the (generous) deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
