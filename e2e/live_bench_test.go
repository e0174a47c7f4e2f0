package e2e

// The live-rate benchmark (docs/BENCHMARKS.md, "Cost at live rates"): what
// skiff costs a pod that logs a few hundred to a few thousand lines a
// second, beside Fluent Bit and the OpenTelemetry Collector on the same
// feed. It is a test behind an environment variable, so that the ordinary
// suite and the bulk benchmark do not pay for its minutes:
//
//	SKIFF_LIVE=1 go test -run TestLiveCost -v -timeout 90m ./e2e
//
// Every run starts one shipper with its default configuration (for skiff:
// four files, the HTTP ndjson sink, the durable buffer) on four empty
// files, waits for a warm-up line per file to arrive, then writes
// 250-byte loggen lines at a fixed rate spread over the four files, one
// write(2) per line as an unbuffered application logger does, each line
// carrying its write time. A local HTTP server (any path) scans every body
// for the lines, in whatever framing the shipper uses (ndjson, JSON lines,
// OTLP protobuf), verifies each and notes its latency. A run reports the
// shipper's own CPU (utime+stime of the process, all threads, from
// /proc/PID/stat) from the first line written until the last one arrived,
// per million lines and as a share of one core; its peak RSS (VmHWM); and
// the p50/p99 latency from write to arrival.
//
// Knobs (all optional):
//
//	SKIFF_LIVE_RATES    lines/s over all four files, comma-separated (500,2000)
//	SKIFF_LIVE_SECONDS  seconds of feed per run (20)
//	SKIFF_LIVE_ROUNDS   rounds; each runs every shipper at every rate, the
//	                    shippers' order rotated from round to round (3)
//	SKIFF_LIVE_SHIPPERS comma-separated shippers (skiff):
//	                      skiff, or any name: the binary built from this tree
//	                      name=/path/to/skiff: another build (e.g. of main)
//	                      fluent-bit, otelcol: the peers in SKIFF_LIVE_PEERS
//	                    and after either form, +KEY=VALUE (repeatable) adds a
//	                    variable for that shipper, e.g.
//	                    skiff+SKIFF_HTTP_LINGER=0s
//	SKIFF_LIVE_PEERS    the peers' directory (/work/shared/peers)
//	SKIFF_LIVE_TICK     0 (default): each line is written by its own write(2)
//	                    when it is due; a duration (e.g. 5ms): the lines due
//	                    are written every tick, one write per file
//	SKIFF_LIVE_OUT      also write the summary (markdown) to this file
//
// Ratios are of medians, against the first shipper listed.

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/loggen"
)

const (
	liveLineBytes = 250
	liveFiles     = 4
)

// liveShipper is one entry of SKIFF_LIVE_SHIPPERS.
type liveShipper struct {
	name string
	kind string // skiff, fluent-bit or otelcol
	bin  string // skiff's binary
	env  map[string]string
}

func parseShippers(t *testing.T, spec string) []liveShipper {
	var out []liveShipper
	for _, s := range strings.Split(spec, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		parts := strings.Split(s, "+")
		sh := liveShipper{env: map[string]string{}}
		name, bin, _ := strings.Cut(parts[0], "=")
		sh.name = name
		switch name {
		case "fluent-bit", "otelcol":
			sh.kind = name
		default:
			sh.kind, sh.bin = "skiff", skiffBin
			if bin != "" {
				sh.bin = bin
			}
		}
		for _, kv := range parts[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				t.Fatalf("SKIFF_LIVE_SHIPPERS: %q is not KEY=VALUE", kv)
			}
			sh.env[k] = v
		}
		out = append(out, sh)
	}
	return out
}

// liveResult is one run of one shipper at one rate.
type liveResult struct {
	shipper  string
	rate     int
	round    int
	lines    int           // lines written
	arrived  int           // distinct lines received
	dups     int           // lines received more than once
	cpu      time.Duration // the shipper's CPU from the first line to the last arrival
	wall     time.Duration // that window
	peakRSS  int64
	p50, p99 time.Duration
	switches int64 // context switches of the shipper's threads in the window
}

func (r liveResult) cpuShare() float64   { return r.cpu.Seconds() / r.wall.Seconds() }
func (r liveResult) cpuPerM() float64    { return r.cpu.Seconds() / float64(r.lines) * 1e6 }
func (r liveResult) switchRate() float64 { return float64(r.switches) / r.wall.Seconds() }

// procSwitches sums the voluntary and involuntary context switches of
// pid's threads: a measure of wake-ups that the machine's load does not
// distort the way it does CPU time.
func procSwitches(pid int) int64 {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	var n int64
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(k, "ctxt_switches") {
				x, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += x
			}
		}
	}
	return n
}

// liveReceiver counts the loggen lines in any request body and notes the
// latency of each line's first arrival.
type liveReceiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	seen    map[string][]bool
	arrived int
	dups    int
	bad     int
	latency []time.Duration
}

func newLiveReceiver() *liveReceiver {
	r := &liveReceiver{seen: map[string][]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	return r
}

func (r *liveReceiver) serve(w http.ResponseWriter, req *http.Request) {
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	now := time.Now()
	r.mu.Lock()
	// Every line starts with its write time ("ts=") and is exactly
	// liveLineBytes long, so it is found in any framing: JSON strings and
	// OTLP protobuf both carry it verbatim (the padding needs no escape).
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte("ts="))
		if j < 0 {
			break
		}
		i += j
		if i+liveLineBytes > len(b) {
			r.bad++
			break
		}
		l, err := loggen.Decode(b[i : i+liveLineBytes])
		if err != nil {
			r.bad++
			i += 3
			continue
		}
		i += liveLineBytes
		s := r.seen[l.Stream]
		for uint64(len(s)) <= l.Seq {
			s = append(s, false)
		}
		r.seen[l.Stream] = s
		if s[l.Seq] {
			r.dups++
			continue
		}
		s[l.Seq] = true
		r.arrived++
		if strings.HasPrefix(l.Stream, "live") {
			r.latency = append(r.latency, now.Sub(l.Time))
		}
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (r *liveReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.arrived
}

func TestLiveCost(t *testing.T) {
	if os.Getenv("SKIFF_LIVE") == "" {
		t.Skip("the live-rate benchmark; run it with SKIFF_LIVE=1 (docs/BENCHMARKS.md)")
	}
	envInt := func(k string, def int) int {
		if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
			return v
		}
		return def
	}
	var rates []int
	for _, s := range strings.Split(orDefault(os.Getenv("SKIFF_LIVE_RATES"), "500,2000"), ",") {
		r, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || r <= 0 {
			t.Fatalf("SKIFF_LIVE_RATES: %q is not a rate", s)
		}
		rates = append(rates, r)
	}
	seconds := envInt("SKIFF_LIVE_SECONDS", 20)
	rounds := envInt("SKIFF_LIVE_ROUNDS", 3)
	shippers := parseShippers(t, orDefault(os.Getenv("SKIFF_LIVE_SHIPPERS"), "skiff"))
	peers := orDefault(os.Getenv("SKIFF_LIVE_PEERS"), "/work/shared/peers")
	var tick time.Duration
	if v := os.Getenv("SKIFF_LIVE_TICK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("SKIFF_LIVE_TICK: %v", err)
		}
		tick = d
	}

	var results []liveResult
	for round := 0; round < rounds; round++ {
		for _, rate := range rates {
			for i := range shippers {
				sh := shippers[(i+round)%len(shippers)]
				r := runLive(t, sh, peers, rate, seconds, tick)
				r.round = round
				t.Logf("round %d %-12s %5d lines/s: cpu %5.2f%% of a core, %6.1f cpu-s/M lines, peak RSS %5.1f MiB, p50 %6.1f ms, p99 %6.1f ms, %6.0f switches/s, lost %d, dups %d",
					round+1, sh.name, rate, 100*r.cpuShare(), r.cpuPerM(), float64(r.peakRSS)/(1<<20),
					ms(r.p50), ms(r.p99), r.switchRate(), r.lines-r.arrived, r.dups)
				results = append(results, r)
			}
		}
	}
	summary := liveSummary(shippers, rates, results)
	t.Log("\n" + summary)
	if out := os.Getenv("SKIFF_LIVE_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(summary), 0o644); err != nil {
			t.Error(err)
		}
	}
	for _, r := range results {
		if r.arrived < r.lines {
			t.Errorf("%s at %d lines/s, round %d: %d of %d lines arrived", r.shipper, r.rate, r.round+1, r.arrived, r.lines)
		}
	}
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// runLive runs one shipper at one rate.
func runLive(t *testing.T, sh liveShipper, peers string, rate, seconds int, tick time.Duration) liveResult {
	t.Helper()
	dir := t.TempDir()
	logs, state := filepath.Join(dir, "logs"), filepath.Join(dir, "state")
	for _, d := range []string{logs, state} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := make([]*os.File, liveFiles)
	for i := range files {
		f, err := os.OpenFile(filepath.Join(logs, fmt.Sprintf("live%d.log", i)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files[i] = f
	}
	recv := newLiveReceiver()
	defer recv.srv.Close()
	url := recv.srv.URL + "/ingest"

	var cmd *exec.Cmd
	switch sh.kind {
	case "skiff":
		env := map[string]string{
			"SKIFF_PATHS":        filepath.Join(logs, "*.log"),
			"SKIFF_DATA_DIR":     state,
			"SKIFF_SINKS":        "http",
			"SKIFF_HTTP_URL":     url,
			"SKIFF_METRICS_ADDR": freeAddr(t), // on, as by default, on a port of its own
		}
		for k, v := range sh.env {
			env[k] = v
		}
		cmd = exec.Command(sh.bin)
		cmd.Env = environ(env)
	default:
		script := filepath.Join(peers, sh.kind+".sh")
		cmd = exec.Command("/bin/sh", script)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
			"H_INPUT_GLOB=" + filepath.Join(logs, "*.log"), "H_STATE_DIR=" + state,
			"H_SINK=http", "H_HTTP_URL=" + url}
		for k, v := range sh.env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	stderr := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", sh.name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}()
	pid := cmd.Process.Pid
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s: %s; stderr:\n%s", sh.name, fmt.Sprintf(format, args...), tail(stderr.String(), 3000))
	}

	// Warm-up: a line per file, so that every file is being followed.
	var line []byte
	for i, f := range files {
		line = loggen.AppendLine(line[:0], loggen.FormatPlain, loggen.Line{Stream: fmt.Sprintf("warm%d", i), Seq: 1, Time: time.Now()}, liveLineBytes)
		if _, err := f.Write(append(line, '\n')); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for recv.count() < liveFiles {
		if time.Now().After(deadline) {
			fail("warm-up lines did not arrive")
		}
		select {
		case <-exited:
			fail("exited during warm-up")
		case <-time.After(20 * time.Millisecond):
		}
	}
	time.Sleep(2 * time.Second)
	recv.mu.Lock()
	recv.latency = recv.latency[:0]
	base := recv.arrived
	recv.mu.Unlock()

	total := rate * seconds
	cpu0, err := procCPU(pid)
	if err != nil {
		fail("read CPU: %v", err)
	}
	sw0 := procSwitches(pid)
	start := time.Now()
	var seq [liveFiles]uint64
	streams := [liveFiles]string{"live0", "live1", "live2", "live3"}
	var pending [liveFiles][]byte
	for k := 0; k < total; {
		off := time.Duration(k) * time.Second / time.Duration(rate)
		if tick > 0 {
			off = (off + tick - 1) / tick * tick // the tick at or after it
		}
		if d := time.Until(start.Add(off)); d > 0 {
			time.Sleep(d)
		}
		now := time.Now()
		// Every line due by now: one write each, or per file with a tick.
		for ; k < total && !start.Add(time.Duration(k)*time.Second/time.Duration(rate)).After(now); k++ {
			f := k % liveFiles
			seq[f]++
			pending[f] = loggen.AppendLine(pending[f], loggen.FormatPlain, loggen.Line{Stream: streams[f], Seq: seq[f], Time: time.Now()}, liveLineBytes)
			pending[f] = append(pending[f], '\n')
			if tick == 0 {
				if _, err := files[f].Write(pending[f]); err != nil {
					t.Fatal(err)
				}
				pending[f] = pending[f][:0]
			}
		}
		for f := range pending {
			if len(pending[f]) > 0 {
				if _, err := files[f].Write(pending[f]); err != nil {
					t.Fatal(err)
				}
				pending[f] = pending[f][:0]
			}
		}
	}
	deadline = time.Now().Add(30 * time.Second)
	for recv.count() < base+total && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	wall := time.Since(start)
	cpu1, err := procCPU(pid)
	if err != nil {
		fail("read CPU: %v", err)
	}
	sw1 := procSwitches(pid)
	_, peak, _ := procMem(pid)

	recv.mu.Lock()
	defer recv.mu.Unlock()
	lat := slices.Clone(recv.latency)
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[int(p*float64(len(lat)-1))]
	}
	return liveResult{
		shipper: sh.name, rate: rate, lines: total, arrived: recv.arrived - base, dups: recv.dups,
		cpu: cpu1 - cpu0, wall: wall, peakRSS: peak, p50: pct(0.50), p99: pct(0.99), switches: sw1 - sw0,
	}
}

// liveSummary renders the medians (and ranges) per shipper and rate, and
// the ratios of CPU per line against the first shipper.
func liveSummary(shippers []liveShipper, rates []int, results []liveResult) string {
	var b strings.Builder
	type key struct {
		name string
		rate int
	}
	med := map[key]float64{}
	stat := func(rs []liveResult, f func(liveResult) float64) (lo, mid, hi float64) {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		n := len(v)
		mid = v[n/2]
		if n%2 == 0 {
			mid = (v[n/2-1] + v[n/2]) / 2
		}
		return v[0], mid, v[n-1]
	}
	cell := func(rs []liveResult, f func(liveResult) float64, format string) string {
		lo, mid, hi := stat(rs, f)
		if len(rs) == 1 {
			return fmt.Sprintf(format, mid)
		}
		return fmt.Sprintf(format+" ("+format+"–"+format+")", mid, lo, hi)
	}
	fmt.Fprintf(&b, "| shipper | lines/s | runs | CPU %% of a core | CPU-s per M lines | peak RSS MiB | p50 ms | p99 ms | context switches/s | lost | dups |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, rate := range rates {
		for _, sh := range shippers {
			var rs []liveResult
			lost, dups := 0, 0
			for _, r := range results {
				if r.shipper == sh.name && r.rate == rate {
					rs = append(rs, r)
					lost += r.lines - r.arrived
					dups += r.dups
				}
			}
			if len(rs) == 0 {
				continue
			}
			_, med[key{sh.name, rate}], _ = stat(rs, liveResult.cpuPerM)
			fmt.Fprintf(&b, "| %s | %d | %d | %s | %s | %s | %s | %s | %s | %d | %d |\n", sh.name, rate, len(rs),
				cell(rs, func(r liveResult) float64 { return 100 * r.cpuShare() }, "%.2f"),
				cell(rs, liveResult.cpuPerM, "%.1f"),
				cell(rs, func(r liveResult) float64 { return float64(r.peakRSS) / (1 << 20) }, "%.1f"),
				cell(rs, func(r liveResult) float64 { return ms(r.p50) }, "%.1f"),
				cell(rs, func(r liveResult) float64 { return ms(r.p99) }, "%.1f"),
				cell(rs, liveResult.switchRate, "%.0f"),
				lost, dups)
		}
	}
	if len(shippers) > 1 {
		ref := shippers[0].name
		fmt.Fprintf(&b, "\nCPU per line, median, as a ratio to %s:\n\n", ref)
		for _, rate := range rates {
			for _, sh := range shippers[1:] {
				if base := med[key{ref, rate}]; base > 0 {
					fmt.Fprintf(&b, "- %d lines/s: %s / %s = %.2f\n", rate, sh.name, ref, med[key{sh.name, rate}]/base)
				}
			}
		}
	}
	return b.String()
}
