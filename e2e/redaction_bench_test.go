package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/loggen"
)

// benchSecrets are the lines that 1 % of the redaction benchmarks' lines
// carry, one kind after another, padded to benchLineBytes.
var benchSecrets = []string{
	`Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c`,
	`login user=alice password=hunter2 ok`,
	`{"user":"bob","password":"s3cr3t-P4ss"}`,
	`key AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY`,
	`db=postgres://app:s3cr3t@db:5432/orders`,
	`paid with 4111 1111 1111 1111`,
	`GITHUB_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789`,
}

// writeLoggen writes total bytes of 200-byte loggen lines (plain and JSON
// alternately, with timestamps) over files files, every hundredth line
// one of benchSecrets instead; it returns the number of lines.
func writeLoggen(tb testing.TB, dir string, files int, total int64) int {
	tb.Helper()
	perFile := int(total / int64(files) / benchLineBytes)
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	buf := make([]byte, 0, 512)
	for f := 0; f < files; f++ {
		fh, err := os.Create(filepath.Join(dir, fmt.Sprintf("bulk%d.log", f)))
		if err != nil {
			tb.Fatal(err)
		}
		w := bufio.NewWriterSize(fh, 1<<20)
		for i := 0; i < perFile; i++ {
			buf = buf[:0]
			if i%100 == 99 {
				buf = append(buf, "ts=2026-11-27T09:00:00.000000000Z "...)
				buf = append(buf, benchSecrets[(i/100)%len(benchSecrets)]...)
				for len(buf) < benchLineBytes-1 {
					buf = append(buf, ' ')
				}
			} else {
				format := loggen.FormatPlain
				if i%2 == 1 {
					format = loggen.FormatJSON
				}
				buf = loggen.AppendLine(buf, format, loggen.Line{Stream: fmt.Sprint(f), Seq: uint64(i + 1), Time: t0.Add(time.Duration(i) * time.Microsecond)}, benchLineBytes-1)
			}
			w.Write(buf)
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

// BenchmarkRedactBulk is BenchmarkBulk/stdout on loggen lines (1 % with a
// secret), without filters and with every built-in detector on. Run the
// two alternately to compare them:
//
//	for i in 1 2 3; do for m in none all; do go test -run '^$' -bench "RedactBulk/$m\$" -benchtime 1x ./e2e; done; done
func BenchmarkRedactBulk(b *testing.B) {
	for _, mode := range []string{"none", "all"} {
		b.Run(mode, func(b *testing.B) {
			env := map[string]string{"SKIFF_SINKS": "stdout"}
			if mode == "all" {
				env["SKIFF_REDACT"] = "all"
			}
			runBulkOf(b, "stdout", env, nil, func(dir string) int { return writeLoggen(b, dir, 4, benchBytes()) })
		})
	}
}

// BenchmarkRedactLive writes loggen lines (1 % with a secret) at a live
// rate for 10 s and reports skiff's CPU per second of it, without filters
// and with every built-in detector on (stdout to /dev/null).
func BenchmarkRedactLive(b *testing.B) {
	const rate, seconds = 10000, 10
	for _, mode := range []string{"none", "all"} {
		b.Run(mode, func(b *testing.B) {
			logs, data := b.TempDir(), b.TempDir()
			env := map[string]string{"SKIFF_PATHS": filepath.Join(logs, "*.log"), "SKIFF_DATA_DIR": data,
				"SKIFF_METRICS_ADDR": "off", "SKIFF_SINKS": "stdout"}
			if mode == "all" {
				env["SKIFF_REDACT"] = "all"
			}
			devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer devnull.Close()
			cmd := exec.Command(skiffBin)
			cmd.Env = environ(env)
			cmd.Stdout = devnull
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			time.Sleep(500 * time.Millisecond)
			src := b.TempDir()
			n := writeLoggen(b, src, 1, rate*seconds*benchLineBytes)
			all, err := os.ReadFile(filepath.Join(src, "bulk0.log"))
			if err != nil {
				b.Fatal(err)
			}
			f, err := os.Create(filepath.Join(logs, "live.log"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			cpu0, err := procCPU(cmd.Process.Pid)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			per := rate / 1000 * benchLineBytes
			for off := 0; off < len(all); off += per {
				<-tick.C
				if _, err := f.Write(all[off:min(off+per, len(all))]); err != nil {
					b.Fatal(err)
				}
			}
			time.Sleep(time.Second) // the last lines
			b.StopTimer()
			cpu, err := procCPU(cmd.Process.Pid)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64((cpu-cpu0).Milliseconds())/float64(seconds+1), "cpu-ms/s")
			b.ReportMetric(float64(n)/seconds, "lines/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
