package e2e

// Benchmarks of the ingest endpoints (docs/BENCHMARKS.md#ingest), against
// the real binary on loopback:
//
//	go test -run '^$' -bench BenchmarkIngest -benchtime 1x ./e2e
//
// BenchmarkIngestBulk POSTs SKIFF_BENCH_INGEST_RECORDS (default 1,000,000)
// records of ~250 bytes in 1 MiB bodies, from two client goroutines, and
// stops the clock when the HTTP sink (ndjson, to a local httptest server)
// has received them all. skiff runs pinned to one core with taskset where
// it exists, the clients and the sink on the other. It reports records/s
// end to end and records per CPU-second of the skiff process.
//
// BenchmarkIngestAckLatency sends 2,000 requests/s of 10 OTLP records each
// for 10 s (default fsync: interval) and reports the percentiles of the
// acknowledgement latency seen by the client (request sent to response
// read).

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const ingestRecordBytes = 250

func ingestRecords() int {
	n, _ := strconv.Atoi(os.Getenv("SKIFF_BENCH_INGEST_RECORDS"))
	if n <= 0 {
		n = 1_000_000
	}
	return n
}

// benchBodies builds request bodies of about 1 MiB of ~250-byte records
// for a format, and returns them with the records each holds.
func benchBodies(b *testing.B, format string) (bodies [][]byte, per int) {
	per = (1 << 20) / (ingestRecordBytes + 1)
	line := func(body, i int) string {
		head := fmt.Sprintf("body=%d seq=%d level=info msg=", body, i)
		return head + strings.Repeat("x", ingestRecordBytes-len(head))
	}
	for k := range 4 {
		msgs := make([]string, per)
		for i := range msgs {
			msgs[i] = line(k, i)
		}
		switch format {
		case "text":
			bodies = append(bodies, []byte(strings.Join(msgs, "\n")))
		case "ndjson":
			var sb strings.Builder
			for _, m := range msgs {
				fmt.Fprintf(&sb, "{\"msg\":%q}\n", m[:ingestRecordBytes-10])
			}
			bodies = append(bodies, []byte(sb.String()))
		case "otlp":
			bodies = append(bodies, otlpBody(b, msgs))
		}
	}
	return bodies, per
}

var ingestContentTypes = map[string]string{"text": "text/plain", "ndjson": "application/x-ndjson", "otlp": "application/x-protobuf"}

// lineCounter is an HTTP sink that counts the ndjson lines it receives.
func lineCounter() (*httptest.Server, *atomic.Int64) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := countLines(r.Body)
		got.Add(n)
	}))
	return srv, &got
}

// startPinned starts the real binary with env, on one core (the last) when
// taskset is there.
func startPinned(b *testing.B, env map[string]string) *exec.Cmd {
	var cmd *exec.Cmd
	if ts, err := exec.LookPath("taskset"); err == nil {
		cmd = exec.Command(ts, "-c", "1", skiffBin)
	} else {
		cmd = exec.Command(skiffBin)
	}
	cmd.Env = environ(env)
	cmd.Stdout = io.Discard
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return cmd
}

func BenchmarkIngestBulk(b *testing.B) {
	for _, format := range []string{"otlp", "ndjson", "text"} {
		b.Run(format, func(b *testing.B) { runIngestBulk(b, format) })
	}
}

func runIngestBulk(b *testing.B, format string) {
	bodies, per := benchBodies(b, format)
	total := ingestRecords() / per * per
	srv, got := lineCounter()
	defer srv.Close()
	addr := freeAddr(b)
	env := map[string]string{
		"SKIFF_DATA_DIR":         b.TempDir(),
		"SKIFF_INGEST_ADDR":      addr,
		"SKIFF_METRICS_ADDR":     "off",
		"SKIFF_SINKS":            "http",
		"SKIFF_HTTP_URL":         srv.URL,
		"SKIFF_LOG_LEVEL":        "warn",
		"SKIFF_SHUTDOWN_QUIET":   "100ms",
		"SKIFF_BUFFER_MAX_BYTES": "1GiB",
	}
	cmd := startPinned(b, env)
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitForB(b, 10*time.Second, func() bool {
		resp, err := http.Post("http://"+addr+"/v1/text", "text/plain", nil)
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	cpu0, _ := procCPU(cmd.Process.Pid)
	b.ResetTimer()
	begin := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			for {
				k := next.Add(1) - 1
				if int(k)*per >= total {
					return
				}
				for {
					resp, err := cli.Post("http://"+addr+"/v1/"+map[string]string{"otlp": "logs", "ndjson": "json", "text": "text"}[format],
						ingestContentTypes[format], bytes.NewReader(bodies[k%int64(len(bodies))]))
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 {
						break
					}
					time.Sleep(10 * time.Millisecond) // 429/503: the buffer is the backlog
				}
			}
		}()
	}
	wg.Wait()
	waitForB(b, 5*time.Minute, func() bool { return got.Load() >= int64(total) })
	elapsed := time.Since(begin)
	b.StopTimer()
	cpu, _ := procCPU(cmd.Process.Pid)
	cpu -= cpu0
	_, peak, _ := procMem(cmd.Process.Pid)
	b.ReportMetric(float64(total)/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(total)/cpu.Seconds(), "records/cpu-s")
	b.ReportMetric(float64(total*ingestRecordBytes)/1e6/elapsed.Seconds(), "MB/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(0, "ns/op")
}

func BenchmarkIngestAckLatency(b *testing.B) {
	const rate, seconds, perRequest = 2000, 10, 10
	srv, _ := lineCounter()
	defer srv.Close()
	addr := freeAddr(b)
	cmd := startPinned(b, map[string]string{
		"SKIFF_DATA_DIR":     b.TempDir(),
		"SKIFF_INGEST_ADDR":  addr,
		"SKIFF_METRICS_ADDR": "off",
		"SKIFF_SINKS":        "http",
		"SKIFF_HTTP_URL":     srv.URL,
		"SKIFF_LOG_LEVEL":    "warn",
	})
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitForB(b, 10*time.Second, func() bool {
		resp, err := http.Post("http://"+addr+"/v1/text", "text/plain", nil)
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	bodies := make([][]byte, 64)
	for k := range bodies {
		msgs := make([]string, perRequest)
		for i := range msgs {
			msgs[i] = fmt.Sprintf("req=%d rec=%d %s", k, i, strings.Repeat("y", 200))
		}
		bodies[k] = otlpBody(b, msgs)
	}
	total := rate * seconds
	work := make(chan int, total)
	var mu sync.Mutex
	lat := make([]time.Duration, 0, total)
	failed := 0
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
			for k := range work {
				t0 := time.Now()
				resp, err := cli.Post("http://"+addr+"/v1/logs", "application/x-protobuf", bytes.NewReader(bodies[k%len(bodies)]))
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				d := time.Since(t0)
				mu.Lock()
				if err != nil || resp.StatusCode != 200 {
					failed++
				} else {
					lat = append(lat, d)
				}
				mu.Unlock()
			}
		}()
	}
	b.ResetTimer()
	tick := time.NewTicker(time.Millisecond)
	begin := time.Now()
	for sent := 0; sent < total; {
		<-tick.C
		due := int(time.Since(begin) * rate / time.Second)
		for ; sent < min(due, total); sent++ {
			work <- sent
		}
	}
	tick.Stop()
	close(work)
	wg.Wait()
	b.StopTimer()
	if failed > 0 {
		b.Errorf("%d requests failed", failed)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(0.999), "p99.9-ms")
	b.ReportMetric(0, "ns/op")
}
