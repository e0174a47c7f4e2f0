package tailer

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/buffer"
	"github.com/skiff-dev/skiff/internal/filter"
	"github.com/skiff-dev/skiff/internal/loggen"
)

// secretLines go into 1 % of the benchmark's lines, one kind after another.
var secretLines = []string{
	`ts=2026-11-27T09:00:00.000000000Z stream=s seq=1 Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c`,
	`ts=2026-11-27T09:00:00.000000000Z stream=s seq=1 login user=alice password=hunter2 ok`,
	`{"ts":"2026-11-27T09:00:00.000000000Z","user":"bob","password":"s3cr3t-P4ss"}`,
	`ts=2026-11-27T09:00:00.000000000Z stream=s seq=1 key AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY`,
	`ts=2026-11-27T09:00:00.000000000Z stream=s seq=1 db=postgres://app:s3cr3t@db:5432/orders`,
	`ts=2026-11-27T09:00:00.000000000Z stream=s seq=1 paid with 4111 1111 1111 1111`,
	`ts=2026-11-27T09:00:00.000000000Z stream=s seq=1 GITHUB_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789`,
}

// loggenFile writes n 200-byte loggen lines, plain and JSON alternately,
// with timestamps; every hundredth line carries a secret instead.
func loggenFile(b *testing.B, n int) string {
	path := filepath.Join(b.TempDir(), "loggen.log")
	var buf []byte
	t := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		if i%100 == 99 {
			buf = append(buf, secretLines[(i/100)%len(secretLines)]...)
		} else {
			f := loggen.FormatPlain
			if i%2 == 1 {
				f = loggen.FormatJSON
			}
			buf = loggen.AppendLine(buf, f, loggen.Line{Stream: "app-1", Seq: uint64(i + 1), Time: t.Add(time.Duration(i) * time.Millisecond)}, 200)
		}
		buf = append(buf, '\n')
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkIntoBufferRedact is BenchmarkIntoBuffer on loggen lines (1 %
// with a secret), without a filter and with every built-in detector on;
// it reports the CPU time of the whole process (tailer and buffer
// goroutines) per line besides the wall time. One op is one 100k-line
// file, from Run's start to its return. Run the two modes alternately, in
// separate processes, to compare them (docs/REDACTION.md has the loop).
func BenchmarkIntoBufferRedact(b *testing.B) {
	path := loggenFile(b, benchLines)
	st, _ := os.Stat(path)
	for _, mode := range []string{"none", "all"} {
		b.Run(mode, func(b *testing.B) {
			b.SetBytes(st.Size())
			b.ReportAllocs()
			var cpu time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				dir := filepath.Join(b.TempDir(), "buf")
				l, err := buffer.Open(buffer.Options{Dir: dir, MaxBytes: 1 << 30, Fsync: buffer.FsyncInterval})
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				ldone := make(chan error, 1)
				go func() { ldone <- l.Run(ctx) }()
				app := &countingLog{Log: l}
				o := Options{Paths: []string{path}, DataDir: b.TempDir()}
				if mode == "all" {
					f, err := filter.New(filter.Options{Redact: []string{"all"}})
					if err != nil {
						b.Fatal(err)
					}
					o.Filter = f
				}
				tl, err := New(o, app)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				cpu0 := cpuTime()
				tctx, tcancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- tl.Run(tctx) }()
				for app.n.Load() < benchLines {
					time.Sleep(100 * time.Microsecond)
				}
				tcancel()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				cpu += cpuTime() - cpu0
				cancel()
				<-ldone
				if err := l.Close(); err != nil {
					b.Fatal(err)
				}
				os.RemoveAll(dir)
				b.StartTimer()
			}
			b.ReportMetric(float64(b.N)*benchLines/b.Elapsed().Seconds(), "lines/s")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*benchLines), "cpu-ns/line")
		})
	}
}

// cpuTime is the CPU time (user and system) of the whole process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkReadPathRedact is BenchmarkReadPath (read, split, encode,
// Append into a counting Appender, one goroutine) on loggen lines, without
// a filter and with every built-in detector on.
func BenchmarkReadPathRedact(b *testing.B) {
	path := loggenFile(b, benchLines)
	for _, mode := range []string{"none", "all"} {
		b.Run(mode, func(b *testing.B) {
			app := &countAppender{}
			o := Options{Paths: []string{path}, DataDir: b.TempDir()}
			if mode == "all" {
				f, err := filter.New(filter.Options{Redact: []string{"all"}})
				if err != nil {
					b.Fatal(err)
				}
				o.Filter = f
			}
			tl, err := New(o, app)
			if err != nil {
				b.Fatal(err)
			}
			file, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			st, _ := file.Stat()
			f := newFollower(keyOf(st), path, 0, file, time.Now())
			defer f.closeFile()
			ctx := context.Background()
			b.SetBytes(st.Size())
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				f.setOff(0)
				for {
					eof, err := tl.readFile(ctx, f, -1)
					if err != nil {
						b.Fatal(err)
					}
					if eof {
						break
					}
				}
				if err := tl.flush(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)*benchLines/b.Elapsed().Seconds(), "lines/s")
		})
	}
}
