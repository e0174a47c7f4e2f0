package e2e

// The published benchmark (docs/BENCHMARKS.md). Run it with
//
//	go test -run '^$' -bench . -benchtime 1x ./e2e
//
// BenchmarkBulk runs the real skiff binary once per sink over pre-written
// files (SKIFF_BENCH_MB, default 256, of 200-byte lines) with the durable
// buffer on and default settings, and reports input MB/s, lines/s, the
// skiff process's own CPU seconds per GiB and its peak RSS; for the sinks
// that have one, the reference shipper (refship_test.go) runs right after
// on the same files and the ratios are reported too. TestBulkCompare
// (SKIFF_BULK=1) is the interleaved comparison over several rounds.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

const benchLineBytes = 200

func benchBytes() int64 {
	mb, _ := strconv.Atoi(os.Getenv("SKIFF_BENCH_MB"))
	if mb <= 0 {
		mb = 256
	}
	return int64(mb) << 20
}

// writeBulk pre-writes total bytes of fixed-size lines over files files and
// returns the number of lines.
func writeBulk(tb testing.TB, dir string, files int, total int64) int {
	tb.Helper()
	perFile := int(total / int64(files) / benchLineBytes)
	pad := strings.Repeat("x", benchLineBytes)
	for f := 0; f < files; f++ {
		fh, err := os.Create(filepath.Join(dir, fmt.Sprintf("bulk%d.log", f)))
		if err != nil {
			tb.Fatal(err)
		}
		w := bufio.NewWriterSize(fh, 1<<20)
		for i := 0; i < perFile; i++ {
			head := fmt.Sprintf("stream=%d seq=%d ", f, i)
			w.WriteString(head)
			w.WriteString(pad[:benchLineBytes-1-len(head)])
			w.WriteByte('\n')
		}
		if err := w.Flush(); err != nil {
			tb.Fatal(err)
		}
		if err := fh.Close(); err != nil {
			tb.Fatal(err)
		}
	}
	return perFile * files
}

// bulkSink is a destination of the bulk benchmark: adding a sink to the
// benchmark is one entry in bulkSinks.
type bulkSink struct {
	name string
	// open starts the destination for one run.
	open func(tb testing.TB) *bulkDest
}

// bulkDest is one run's destination.
type bulkDest struct {
	// env holds skiff's variables for shipping to it.
	env map[string]string
	// ref holds the reference shipper's variables (refship_test.go);
	// nil: the sink has no reference.
	ref map[string]string
	// received counts the lines the destination has; nil: skiff's own
	// skiff_sink_records_delivered_total for sink (only without a
	// reference).
	received func() int64
	// sink is the sink's name in skiff; "" means SKIFF_SINKS of env.
	sink  string
	close func()
}

var bulkSinks = []bulkSink{
	{name: "stdout", open: func(testing.TB) *bulkDest {
		return &bulkDest{env: map[string]string{"SKIFF_SINKS": "stdout"}, close: func() {}}
	}},
	{name: "http", open: func(testing.TB) *bulkDest {
		var got atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := countLines(r.Body)
			got.Add(n)
		}))
		return &bulkDest{
			env:      map[string]string{"SKIFF_SINKS": "http", "SKIFF_HTTP_URL": srv.URL},
			ref:      map[string]string{refShipEnv: "http", "REF_HTTP_URL": srv.URL},
			received: got.Load,
			close:    srv.Close,
		}
	}},
	// OTLP with its defaults (protobuf, gzip) to an endpoint that discards
	// the bodies: a receiver that gunzips would spend the cores skiff is
	// measured on. The clock stops on skiff's own delivered count.
	{name: "otlp", open: func(testing.TB) *bulkDest {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
		return &bulkDest{env: map[string]string{"SKIFF_SINKS": "otlp", "SKIFF_OTLP_URL": srv.URL}, close: srv.Close}
	}},
	{name: "kafka", open: func(tb testing.TB) *bulkDest {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "logs"))
		if err != nil {
			tb.Fatal(err)
		}
		brokers := strings.Join(c.ListenAddrs(), ",")
		// A consumer reads every message back, for skiff and for the
		// reference alike: delivered is what a consumer can read.
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("logs"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			tb.Fatal(err)
		}
		var got atomic.Int64
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ctx.Err() == nil {
				got.Add(int64(cl.PollFetches(ctx).NumRecords()))
			}
		}()
		return &bulkDest{
			env: map[string]string{"SKIFF_SINKS": "kafka", "SKIFF_KAFKA_BROKERS": brokers,
				"SKIFF_KAFKA_TOPIC": "logs", "SKIFF_KAFKA_COMPRESSION": "lz4"},
			ref:      map[string]string{refShipEnv: "kafka", "REF_KAFKA_BROKERS": brokers, "REF_KAFKA_TOPIC": "logs"},
			received: got.Load,
			close: func() {
				cancel()
				<-done
				cl.Close()
				c.Close()
			},
		}
	}},
}

// bulkShipper is what ships in one run: skiff (this tree's binary, or
// another build) or the sink's reference shipper.
type bulkShipper struct {
	name string
	ref  bool
	bin  string
	env  map[string]string
}

// parseBulkShippers reads SKIFF_BENCH_SHIPPERS: comma-separated entries,
// "skiff" (this tree's binary), "ref" (the reference shipper), or
// name=/path/to/skiff (another build, e.g. of main), each optionally
// followed by +KEY=VALUE (repeatable) to set a variable for it.
func parseBulkShippers(tb testing.TB, spec string) []bulkShipper {
	var out []bulkShipper
	for _, s := range strings.Split(spec, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		parts := strings.Split(s, "+")
		name, bin, _ := strings.Cut(parts[0], "=")
		sh := bulkShipper{name: name, ref: name == "ref", bin: skiffBin, env: map[string]string{}}
		if bin != "" {
			sh.bin = bin
		}
		for _, kv := range parts[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				tb.Fatalf("SKIFF_BENCH_SHIPPERS: %q is not KEY=VALUE", kv)
			}
			sh.env[k] = v
		}
		out = append(out, sh)
	}
	return out
}

// bulkResult is one run of one shipper.
type bulkResult struct {
	mbps, linesPerSec, cpuPerGiB, peakMiB float64
}

// runBulkOnce ships the lines pre-written in logs through dest with sh
// and returns the figures: input line bytes per second from start to the
// last line received, the shipper's own CPU (utime+stime) per GiB of
// input, its peak RSS.
func runBulkOnce(tb testing.TB, sh bulkShipper, dest *bulkDest, logs string, lines int) bulkResult {
	tb.Helper()
	var cmd *exec.Cmd
	ctx := context.Background()
	delivered := dest.received
	if sh.ref {
		self, err := os.Executable()
		if err != nil {
			tb.Fatal(err)
		}
		env := map[string]string{"REF_PATHS": filepath.Join(logs, "*.log")}
		for k, v := range dest.ref {
			env[k] = v
		}
		cmd = exec.Command(self)
		cmd.Env = environ(env)
	} else {
		addr := freeAddr(tb)
		env := map[string]string{
			"SKIFF_PATHS":        filepath.Join(logs, "*.log"),
			"SKIFF_DATA_DIR":     tb.TempDir(),
			"SKIFF_METRICS_ADDR": addr,
		}
		for k, v := range dest.env {
			env[k] = v
		}
		for k, v := range sh.env {
			env[k] = v
		}
		cmd = exec.Command(sh.bin)
		cmd.Env = environ(env)
		if delivered == nil {
			sink := dest.sink
			if sink == "" {
				sink = dest.env["SKIFF_SINKS"]
			}
			delivered = func() int64 {
				v, _ := metric(ctx, addr, "skiff_sink_records_delivered_total", `sink="`+sink+`"`)
				return int64(v)
			}
		}
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer devnull.Close()
	cmd.Stdout = devnull
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	deadline := time.Now().Add(10 * time.Minute)
	for delivered() < int64(lines) {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: only %d of %d lines delivered; stderr:\n%s", sh.name, delivered(), lines, tail(stderr.String(), 2000))
		}
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(begin)
	cpu, err := procCPU(cmd.Process.Pid)
	if err != nil {
		tb.Fatal(err)
	}
	_, peak, err := procMem(cmd.Process.Pid)
	if err != nil {
		tb.Fatal(err)
	}
	in := float64(lines * benchLineBytes)
	return bulkResult{
		mbps:        in / 1e6 / elapsed.Seconds(),
		linesPerSec: float64(lines) / elapsed.Seconds(),
		cpuPerGiB:   cpu.Seconds() / (in / (1 << 30)),
		peakMiB:     float64(peak) / (1 << 20),
	}
}

// runBulkOf runs skiff once, with the variables env, over the *.log files
// write puts in a directory (write returns their line count, every line
// benchLineBytes long), and reports the figures; delivered counts the
// lines the destination has (nil: skiff's own delivered count for sink).
func runBulkOf(b *testing.B, sink string, env map[string]string, delivered func() int64, write func(dir string) int) {
	logs := b.TempDir()
	lines := write(logs)
	d := &bulkDest{env: env, sink: sink, received: delivered, close: func() {}}
	reportBulk(b, runBulkOnce(b, bulkShipper{name: "skiff", bin: skiffBin}, d, logs, lines))
	b.ReportMetric(0, "ns/op")
}

func reportBulk(b *testing.B, r bulkResult) {
	b.ReportMetric(r.mbps, "MB/s")
	b.ReportMetric(r.linesPerSec, "lines/s")
	b.ReportMetric(r.cpuPerGiB, "cpu-s/GiB")
	b.ReportMetric(r.peakMiB, "peak-RSS-MiB")
}

// BenchmarkBulk runs each sink once with skiff and, where the sink has
// one, once with its reference shipper right after, reporting skiff's
// figures and their ratio to the reference's.
func BenchmarkBulk(b *testing.B) {
	logs := b.TempDir()
	lines := writeBulk(b, logs, 4, benchBytes())
	for _, s := range bulkSinks {
		b.Run(s.name, func(b *testing.B) {
			d := s.open(b)
			r := runBulkOnce(b, bulkShipper{name: "skiff", bin: skiffBin}, d, logs, lines)
			d.close()
			reportBulk(b, r)
			d = s.open(b)
			if d.ref != nil {
				ref := runBulkOnce(b, bulkShipper{name: "ref", ref: true}, d, logs, lines)
				b.ReportMetric(ref.mbps, "ref-MB/s")
				b.ReportMetric(ref.cpuPerGiB, "ref-cpu-s/GiB")
				b.ReportMetric(r.mbps/ref.mbps, "x-ref-MB/s")
				b.ReportMetric(r.cpuPerGiB/ref.cpuPerGiB, "x-ref-cpu")
			}
			d.close()
			b.ReportMetric(0, "ns/op")
		})
	}
}

// TestBulkCompare is the interleaved bulk comparison (docs/BENCHMARKS.md):
//
//	SKIFF_BULK=1 go test -run TestBulkCompare -v -timeout 60m ./e2e
//
// It pre-writes SKIFF_BENCH_MB (default 128) MiB of 200-byte lines over 4
// files once, then runs SKIFF_BENCH_ROUNDS rounds (default 3); each round
// ships the files through every sink of SKIFF_BENCH_SINKS (default all)
// with every shipper of SKIFF_BENCH_SHIPPERS (default "skiff,ref"; see
// parseBulkShippers), the shippers' order rotated from round to round, a
// fresh destination and data directory each time. It logs every run and
// a summary: per sink and shipper the median and range of MB/s, CPU
// seconds per GiB and peak RSS, and the ratios of the medians to the
// reference shipper's. SKIFF_BENCH_OUT also writes the summary there.
func TestBulkCompare(t *testing.T) {
	if os.Getenv("SKIFF_BULK") == "" {
		t.Skip("the interleaved bulk comparison; run it with SKIFF_BULK=1 (docs/BENCHMARKS.md)")
	}
	mb, _ := strconv.Atoi(os.Getenv("SKIFF_BENCH_MB"))
	if mb <= 0 {
		mb = 128
	}
	rounds, _ := strconv.Atoi(os.Getenv("SKIFF_BENCH_ROUNDS"))
	if rounds <= 0 {
		rounds = 3
	}
	shippers := parseBulkShippers(t, orDefault(os.Getenv("SKIFF_BENCH_SHIPPERS"), "skiff,ref"))
	var sinks []bulkSink
	want := strings.Split(os.Getenv("SKIFF_BENCH_SINKS"), ",")
	for _, s := range bulkSinks {
		if want[0] == "" || slices.Contains(want, s.name) {
			sinks = append(sinks, s)
		}
	}
	logs := t.TempDir()
	lines := writeBulk(t, logs, 4, int64(mb)<<20)
	results := map[string]map[string][]bulkResult{} // sink → shipper → runs
	for round := range rounds {
		for _, s := range sinks {
			if results[s.name] == nil {
				results[s.name] = map[string][]bulkResult{}
			}
			for i := range shippers {
				sh := shippers[(i+round)%len(shippers)]
				d := s.open(t)
				if sh.ref && d.ref == nil {
					d.close()
					continue
				}
				r := runBulkOnce(t, sh, d, logs, lines)
				d.close()
				t.Logf("round %d %-6s %-10s %6.1f MB/s %5.2f cpu-s/GiB peak %5.1f MiB", round+1, s.name, sh.name, r.mbps, r.cpuPerGiB, r.peakMiB)
				results[s.name][sh.name] = append(results[s.name][sh.name], r)
			}
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d MiB over 4 files, %d rounds\n\n", mb, rounds)
	sb.WriteString("| sink | shipper | MB/s | cpu-s/GiB | peak RSS MiB | MB/s ÷ ref | cpu ÷ ref |\n|---|---|---|---|---|---|---|\n")
	for _, s := range sinks {
		ref := results[s.name]["ref"]
		for _, sh := range shippers {
			rs := results[s.name][sh.name]
			if len(rs) == 0 {
				continue
			}
			mbps, cpu, peak := medRange(rs, func(r bulkResult) float64 { return r.mbps }),
				medRange(rs, func(r bulkResult) float64 { return r.cpuPerGiB }),
				medRange(rs, func(r bulkResult) float64 { return r.peakMiB })
			ratio := func(get func(bulkResult) float64) string {
				if len(ref) == 0 || sh.ref {
					return "—"
				}
				return fmt.Sprintf("%.2f", median(rs, get)/median(ref, get))
			}
			fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s | %s | %s |\n", s.name, sh.name, mbps, cpu, peak,
				ratio(func(r bulkResult) float64 { return r.mbps }), ratio(func(r bulkResult) float64 { return r.cpuPerGiB }))
		}
	}
	t.Log("\n" + sb.String())
	if out := os.Getenv("SKIFF_BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(sb.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

func median(rs []bulkResult, get func(bulkResult) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = get(r)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// medRange formats the median and range of one figure.
func medRange(rs []bulkResult, get func(bulkResult) float64) string {
	lo, hi := get(rs[0]), get(rs[0])
	for _, r := range rs {
		lo, hi = min(lo, get(r)), max(hi, get(r))
	}
	return fmt.Sprintf("%.1f (%.1f–%.1f)", median(rs, get), lo, hi)
}

func countLines(r io.Reader) (int64, error) {
	var n int64
	buf := make([]byte, 64<<10)
	for {
		k, err := r.Read(buf)
		for _, c := range buf[:k] {
			if c == '\n' {
				n++
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// BenchmarkIdleRSS reports skiff's resident memory after it has shipped one
// small file with the stdout sink and gone idle.
func BenchmarkIdleRSS(b *testing.B) {
	logs, data := b.TempDir(), b.TempDir()
	appendLines(b, filepath.Join(logs, "app.log"), "one", "two", "three")
	addr := freeAddr(b)
	cmd := exec.Command(skiffBin)
	cmd.Env = environ(map[string]string{"SKIFF_PATHS": filepath.Join(logs, "*.log"), "SKIFF_DATA_DIR": data, "SKIFF_METRICS_ADDR": addr})
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	time.Sleep(3 * time.Second)
	rss, _, err := procMem(cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(rss)/(1<<20), "idle-RSS-MiB")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkLatency writes lines at a fixed live rate, each carrying its
// write time, and reports end-to-end percentiles (write → received by an
// HTTP server) with the HTTP sink.
func BenchmarkLatency(b *testing.B) {
	const rate, seconds = 10000, 10
	var mu sync.Mutex
	var lat []time.Duration
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now().UnixNano()
		sc := bufio.NewScanner(r.Body)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		mu.Lock()
		defer mu.Unlock()
		for sc.Scan() {
			line := sc.Text()
			i := strings.Index(line, "wts=")
			if i < 0 {
				continue
			}
			j := strings.IndexByte(line[i:], ' ')
			ts, err := strconv.ParseInt(line[i+4:i+j], 10, 64)
			if err == nil {
				lat = append(lat, time.Duration(now-ts))
			}
		}
	}))
	defer srv.Close()

	logs, data := b.TempDir(), b.TempDir()
	cmd := exec.Command(skiffBin)
	cmd.Env = environ(map[string]string{"SKIFF_PATHS": filepath.Join(logs, "*.log"), "SKIFF_DATA_DIR": data,
		"SKIFF_METRICS_ADDR": "off", "SKIFF_SINKS": "http", "SKIFF_HTTP_URL": srv.URL})
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	time.Sleep(500 * time.Millisecond)

	f, err := os.Create(filepath.Join(logs, "live.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	pad := strings.Repeat("x", 150)
	total := rate * seconds
	for sent := 0; sent < total; {
		<-tick.C
		var sb strings.Builder
		for i := 0; i < rate/1000 && sent < total; i++ {
			fmt.Fprintf(&sb, "seq=%d wts=%d %s\n", sent, time.Now().UnixNano(), pad)
			sent++
		}
		if _, err := f.WriteString(sb.String()); err != nil {
			b.Fatal(err)
		}
	}
	waitForB(b, 30*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(lat) >= total })
	mu.Lock()
	defer mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(0.999), "p99.9-ms")
	b.ReportMetric(0, "ns/op")
}

func waitForB(b *testing.B, timeout time.Duration, cond func() bool) {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("timed out after %v", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
