package e2e

// The published benchmark (docs/BENCHMARKS.md). Run it with
//
//	go test -run '^$' -bench . -benchtime 1x ./e2e
//
// Each benchmark runs the real skiff binary once over pre-written files
// (SKIFF_BENCH_MB, default 256, of 200-byte lines) with the durable buffer
// on and default settings, and reports input MB/s, lines/s, the skiff
// process's own CPU seconds per GiB and its peak RSS.

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
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
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

// runBulk ships pre-written files through the sink env describes and
// reports the figures.
func runBulk(b *testing.B, sinkName string, env map[string]string, delivered func() int64) {
	runBulkOf(b, sinkName, env, delivered, func(dir string) int { return writeBulk(b, dir, 4, benchBytes()) })
}

// runBulkOf is runBulk over the *.log files write puts in a directory
// (write returns their line count, every line benchLineBytes long).
func runBulkOf(b *testing.B, sinkName string, env map[string]string, delivered func() int64, write func(dir string) int) {
	logs, data := b.TempDir(), b.TempDir()
	lines := write(logs)
	addr := freeAddr(b)
	full := map[string]string{
		"SKIFF_PATHS":        filepath.Join(logs, "*.log"),
		"SKIFF_DATA_DIR":     data,
		"SKIFF_METRICS_ADDR": addr,
	}
	for k, v := range env {
		full[k] = v
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	cmd := exec.Command(skiffBin)
	cmd.Env = environ(full)
	cmd.Stdout = devnull
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	b.ResetTimer()
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	ctx := context.Background()
	if delivered == nil {
		delivered = func() int64 {
			v, _ := metric(ctx, addr, "skiff_sink_records_delivered_total", `sink="`+sinkName+`"`)
			return int64(v)
		}
	}
	deadline := time.Now().Add(10 * time.Minute)
	var peak int64
	for delivered() < int64(lines) {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d lines delivered; stderr:\n%s", delivered(), lines, tail(stderr.String(), 2000))
		}
		if _, p, err := procMem(cmd.Process.Pid); err == nil && p > peak {
			peak = p
		}
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(begin)
	b.StopTimer()
	cpu, _ := procCPU(cmd.Process.Pid)
	_, peak, _ = procMem(cmd.Process.Pid)
	in := float64(lines * benchLineBytes)
	b.ReportMetric(in/1e6/elapsed.Seconds(), "MB/s")
	b.ReportMetric(float64(lines)/elapsed.Seconds(), "lines/s")
	b.ReportMetric(cpu.Seconds()/(in/(1<<30)), "cpu-s/GiB")
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(0, "ns/op")
}

func BenchmarkBulk(b *testing.B) {
	b.Run("stdout", func(b *testing.B) {
		runBulk(b, "stdout", map[string]string{"SKIFF_SINKS": "stdout"}, nil)
	})
	b.Run("kafka", func(b *testing.B) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "logs"), kfake.BlackholeProduce())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		runBulk(b, "kafka", map[string]string{"SKIFF_SINKS": "kafka", "SKIFF_KAFKA_BROKERS": strings.Join(c.ListenAddrs(), ","),
			"SKIFF_KAFKA_TOPIC": "logs", "SKIFF_KAFKA_COMPRESSION": "lz4"}, nil)
	})
	b.Run("http", func(b *testing.B) {
		var got atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := countLines(r.Body)
			got.Add(n)
		}))
		defer srv.Close()
		runBulk(b, "http", map[string]string{"SKIFF_SINKS": "http", "SKIFF_HTTP_URL": srv.URL}, got.Load)
	})
	// OTLP with its defaults (protobuf, gzip) to an endpoint that discards
	// the bodies: a receiver that gunzips would spend the cores skiff is
	// measured on. The clock stops on skiff's own delivered count, as for
	// Kafka.
	b.Run("otlp", func(b *testing.B) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
		defer srv.Close()
		runBulk(b, "otlp", map[string]string{"SKIFF_SINKS": "otlp", "SKIFF_OTLP_URL": srv.URL}, nil)
	})
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
