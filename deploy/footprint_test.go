package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// procStats reads a process's resident set (current and peak, bytes) and
// CPU time from /proc.
func procStats(t *testing.T, pid int) (rss, hwm int64, cpu time.Duration) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[2] == "kB" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			switch f[0] {
			case "VmRSS:":
				rss = v << 10
			case "VmHWM:":
				hwm = v << 10
			}
		}
	}
	b, err = os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name (which may hold spaces): utime is the
	// 14th field of the line, stime the 15th, in clock ticks (100 Hz on
	// Linux for /proc).
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return rss, hwm, time.Duration(ut+st) * 10 * time.Millisecond
}

// TestFootprint runs skiff as the manifests do (stdout sink instead of the
// network ones) under a steady load and a burst, and checks that its peak
// resident memory stays well inside the memory limit the Kubernetes
// manifests give it. It logs the figures the manifests' requests are sized
// from. SKIFF_LONG=1 runs a longer, heavier load.
func TestFootprint(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc")
	}
	rate, steady, burst := 2000, 5*time.Second, 200000
	if os.Getenv("SKIFF_LONG") == "1" {
		rate, steady, burst = 10000, 60*time.Second, 2000000
	}
	o := render(t, variants["recommended"].dir)
	skiffC, _, err := findSkiff(&o.deployments[0].Spec.Template.Spec)
	if err != nil {
		t.Fatal(err)
	}
	limit := skiffC.Resources.Limits[corev1.ResourceMemory]
	request := skiffC.Resources.Requests[corev1.ResourceMemory]
	tmp := t.TempDir()
	bins := buildBinaries(t, tmp)
	logs := filepath.Join(tmp, "logs")
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"SKIFF_PATHS=" + logs + "/*.log",
		"SKIFF_DATA_DIR=" + filepath.Join(tmp, "data"),
		"SKIFF_SINKS=stdout",
		"SKIFF_PARSE=json",
		"SKIFF_TIME_FIELD=ts",
		"SKIFF_FIELDS=container=app",
		"SKIFF_METRICS_ADDR=" + freeAddr(t),
		"SKIFF_BUFFER_MAX_BYTES=256MiB",
		"POD_NAME=app-0", "POD_NAMESPACE=default", "POD_UID=0f1e2d3c-0000-4000-8000-000000000000", "NODE_NAME=node-1",
	}
	skiff := exec.Command(bins["skiff"])
	skiff.Env = env
	out, err := skiff.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	skiff.Stderr = &stderr
	if err := skiff.Start(); err != nil {
		t.Fatal(err)
	}
	var shipped atomic.Int64
	exited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			shipped.Add(1)
		}
		_, _ = io.Copy(io.Discard, out)
		exited <- skiff.Wait()
	}()
	waited := false
	t.Cleanup(func() {
		if !waited {
			_ = skiff.Process.Kill()
			<-exited
		}
	})
	pid := skiff.Process.Pid
	waitFor(t, 30*time.Second, "skiff to listen", func() bool {
		_, hwm, _ := procStats(t, pid)
		return hwm > 0 && stderr.String() != ""
	})
	idle, _, _ := procStats(t, pid)

	gen := func(args ...string) {
		t.Helper()
		c := exec.Command(bins["loggen"], append([]string{"-format", "json", "-size", "200"}, args...)...)
		if b, err := c.CombinedOutput(); err != nil {
			t.Fatalf("loggen: %v\n%s", err, b)
		}
	}
	_, _, cpu0 := procStats(t, pid)
	start := time.Now()
	// A line count, not a duration: a generator that falls behind its
	// schedule on a busy machine still writes every line.
	want := int64(rate) * int64(steady/time.Second)
	gen("-out", filepath.Join(logs, "steady.log"), "-id", "steady", "-rate", strconv.Itoa(rate), "-lines", strconv.FormatInt(want, 10))
	waitFor(t, 60*time.Second, "the steady load to be shipped", func() bool { return shipped.Load() >= want })
	steadyRSS, _, cpu1 := procStats(t, pid)
	millicores := float64(cpu1-cpu0) / float64(time.Since(start)) * 1000

	gen("-out", filepath.Join(logs, "burst.log"), "-id", "burst", "-rate", "0", "-lines", strconv.Itoa(burst))
	waitFor(t, 5*time.Minute, "the burst to be shipped", func() bool { return shipped.Load() >= want+int64(burst) })
	_, peak, _ := procStats(t, pid)

	if err := skiff.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = <-exited
	waited = true
	if err != nil {
		t.Fatalf("skiff: %v\n%s", err, stderr.String())
	}
	mib := func(v int64) string { return fmt.Sprintf("%.1f MiB", float64(v)/(1<<20)) }
	t.Logf("idle RSS %s; %d lines/s of 200 B JSON for %v: RSS %s, CPU %.0f millicores; burst of %d lines: peak RSS %s (manifest: request %s, limit %s)",
		mib(idle), rate, steady, mib(steadyRSS), millicores, burst, mib(peak), &request, &limit)
	if peak > limit.Value()*3/4 {
		t.Errorf("peak RSS %s is above 75%% of the manifests' memory limit %s: raise the limit", mib(peak), &limit)
	}
}
