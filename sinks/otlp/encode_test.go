package otlp

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/protobuf/proto"

	"github.com/skiff-dev/skiff/internal/record"
)

// benchRecords are n records of the kind: "plain" (200-byte lines, as in
// the bulk benchmark), "json" (JSON objects with a level) or "mixed"
// (plain lines among records that came in over OTLP, two resources).
func benchRecords(t testing.TB, kind string, n int) []record.Record {
	recs := make([]record.Record, n)
	pad := strings.Repeat("x", 200)
	for i := range recs {
		switch kind {
		case "json":
			msg := fmt.Sprintf(`{"level":"info","ts":"2026-11-27T09:00:01Z","msg":"request done","status":200,"ms":1.25,"path":"/api/v1/orders/%d","ok":true}`, i)
			recs[i] = fileRecord(int64(i*200), msg, record.FlagJSON)
		default:
			head := fmt.Sprintf("stream=0 seq=%d ", i)
			recs[i] = fileRecord(int64(i*200), head+pad[:199-len(head)], 0)
		}
	}
	if kind == "mixed" {
		_, ingested, res, scopes := mappingRecords(t)
		for i := 0; i < n; i += 4 {
			recs[i] = otlpRecord(t, int64(i), res[0], "", scopes[i/4%2], "", ingested["otlp1"])
		}
	}
	return recs
}

// TestEncoderAllocations: encoding a batch into a warm batch allocates
// nothing, however many records it holds (0 allocations per record).
func TestEncoderAllocations(t *testing.T) {
	for _, kind := range []string{"plain", "json", "mixed"} {
		for _, json := range []bool{false, true} {
			recs := benchRecords(t, kind, 500)
			e := newBatch(newMapping(testEncoder(), "level", numbersSyslog))
			encode := func() {
				if json {
					e.encodeJSON(recs)
				} else {
					e.encodeProto(recs)
				}
			}
			encode() // grow the buffers
			// The runtime allocates now and then on its own (a GC cycle,
			// the test framework's goroutines): the best of three rounds
			// counts. An allocation per record or per batch shows in all.
			n := mallocs(50, encode)
			for range 2 {
				n = min(n, mallocs(50, encode))
			}
			if n != 0 {
				t.Errorf("%s (json %v): %d allocations in 50 batches of %d records, want 0", kind, json, n, len(recs))
			}
		}
	}
}

// mallocs counts the allocations of n calls of f (exactly, unlike
// testing.AllocsPerRun, which rounds the average down).
func mallocs(n int, f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC() // the first cycle starts the GC's worker goroutines, which allocate
	runtime.ReadMemStats(&before)
	for range n {
		f()
	}
	runtime.ReadMemStats(&after)
	return after.Mallocs - before.Mallocs
}

// TestEncoderRoundTrip: the official definitions decode what the encoder
// makes of records of every kind, including lines long enough that the
// length prefixes outgrow their first guess.
func TestEncoderRoundTrip(t *testing.T) {
	for _, kind := range []string{"plain", "json", "mixed"} {
		recs := benchRecords(t, kind, 300)
		recs[1].Message = []byte(strings.Repeat("long line ", 40000)) // a 3-byte length where 2 were guessed
		recs[1].Flags = 0
		e := newBatch(newMapping(testEncoder(), "level", numbersSyslog))
		var req collogspb.ExportLogsServiceRequest
		if err := proto.Unmarshal(e.encodeProto(recs), &req); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		n := 0
		for _, rl := range req.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				n += len(sl.LogRecords)
			}
		}
		if n != len(recs) {
			t.Fatalf("%s: %d log records, want %d", kind, n, len(recs))
		}
	}
}

// BenchmarkEncode measures the encoder alone on batches of 2000 records:
// go test -run '^$' -bench Encode -benchmem ./sinks/otlp
func BenchmarkEncode(b *testing.B) {
	for _, kind := range []string{"plain", "json", "mixed"} {
		for _, enc := range []string{"protobuf", "json"} {
			b.Run(kind+"/"+enc, func(b *testing.B) {
				recs := benchRecords(b, kind, 2000)
				size := 0
				for i := range recs {
					size += len(recs[i].Message)
				}
				e := newBatch(newMapping(testEncoder(), "level", numbersSyslog))
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if enc == "json" {
						e.encodeJSON(recs)
					} else {
						e.encodeProto(recs)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
			})
		}
	}
}
