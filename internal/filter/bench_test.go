package filter

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/loggen"
)

// secretLines are lines with a secret, one of each kind, for the 1 % of
// benchmark lines that carry one.
var secretLines = []string{
	`Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c`,
	`login user=alice password=hunter2 ok`,
	`{"user":"bob","password":"s3cr3t-P4ss"}`,
	`using key AKIAIOSFODNN7EXAMPLE secret AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY`,
	`db=postgres://app:s3cr3t@db:5432/orders`,
	`paid with 4111 1111 1111 1111`,
	`GITHUB_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789 SLACK=xoxb-123456789012-abcdefghijkl`,
}

// benchLines returns n loggen lines (plain and JSON, with timestamps, 200
// bytes), every hundredth one with a secret in its padding's place.
func benchLines(n int) [][]byte {
	out := make([][]byte, n)
	t := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for i := range out {
		if i%100 == 99 {
			out[i] = []byte("ts=2026-11-27T09:00:00.000000000Z stream=s seq=1 " + secretLines[(i/100)%len(secretLines)])
			continue
		}
		f := loggen.FormatPlain
		if i%2 == 1 {
			f = loggen.FormatJSON
		}
		out[i] = loggen.AppendLine(nil, f, loggen.Line{Stream: "app-1", Seq: uint64(i + 1), Time: t.Add(time.Duration(i) * time.Millisecond)}, 200)
	}
	return out
}

// realisticLines is the negative corpus (access logs, JSON, logfmt, klog,
// stack traces, …), every hundredth line replaced by one with a secret.
func realisticLines(tb testing.TB) [][]byte {
	f, err := os.Open("testdata/corpus/negatives.txt")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var corpus [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l, ok := strings.CutPrefix(sc.Text(), "- "); ok {
			corpus = append(corpus, []byte(l))
		}
	}
	out := make([][]byte, 0, 10000)
	for i := 0; len(out) < cap(out); i++ {
		if i%100 == 99 {
			out = append(out, []byte(secretLines[(i/100)%len(secretLines)]))
		} else {
			out = append(out, corpus[i%len(corpus)])
		}
	}
	return out
}

func benchRedact(b *testing.B, lines [][]byte, o Options) {
	f, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	var st Stream
	var dst []byte
	n := 0
	for _, l := range lines {
		n += len(l)
	}
	b.SetBytes(int64(n / len(lines)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, red := f.Redact(&st, dst[:0], lines[i%len(lines)])
		if red {
			dst = out
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/line")
}

// BenchmarkRedact measures Redact per line: every built-in detector on,
// on loggen lines and on the realistic corpus, 1 % of lines with a secret;
// and the lines without a candidate alone.
func BenchmarkRedact(b *testing.B) {
	loggenLines := benchLines(10000)
	real := realisticLines(b)
	var clean [][]byte
	for i, l := range loggenLines {
		if i%100 != 99 {
			clean = append(clean, l)
		}
	}
	all := Options{Redact: []string{"all"}}
	b.Run("loggen/all", func(b *testing.B) { benchRedact(b, loggenLines, all) })
	b.Run("loggen/no-secret", func(b *testing.B) { benchRedact(b, clean, all) })
	b.Run("realistic/all", func(b *testing.B) { benchRedact(b, real, all) })
	b.Run("loggen/none", func(b *testing.B) { benchRedact(b, loggenLines, Options{}) })
}

// BenchmarkKeep measures drop and keep rules per line.
func BenchmarkKeep(b *testing.B) {
	lines := benchLines(10000)
	for name, o := range map[string]Options{
		"literal":   {Drop: []string{`GET /healthz`}},
		"alternate": {Drop: []string{`level=(debug|trace)`}},
		"fold":      {Drop: []string{`(?i)healthz`}},
	} {
		b.Run(name, func(b *testing.B) {
			f, err := New(o)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				f.Keep(lines[i%len(lines)], nil)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/line")
		})
	}
}
