package kafka

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/skiff-dev/skiff/buffer"
	"github.com/skiff-dev/skiff/internal/record"
	"github.com/skiff-dev/skiff/sinks"
	"github.com/skiff-dev/skiff/sinks/internal/sinktest"
)

// Kafka throughput: batches of 1000 records with 200-byte lines, lz4,
// acks=all, to an in-process kfake broker (3 partitions, records
// discarded after validation) with 1 or 4 batches in flight, as the
// delivery loop sends them. "Sink" is kafka.Sink from record to
// acknowledgement (JSON encoding, headers, bookkeeping included); "Bare"
// is a kafka-go Writer with the same settings given the same messages
// ready-made. Both run in the same process against the same broker.
//
//	go test ./sinks/kafka -run '^$' -bench 'Kafka' -benchtime 3s -count 3
//
// Figures: docs/BENCHMARKS.md, section kafka.

const (
	benchBatch    = 1000
	benchLineSize = 200
)

func BenchmarkKafka(b *testing.B) {
	c := startKfake(b, kfake.SeedTopics(3, "logs"), kfake.BlackholeProduce())
	batches, lineBytes, msgBytes := kafkaBenchBatches()
	for _, inflight := range []int{1, 4} {
		b.Run(fmt.Sprintf("Sink/inflight=%d", inflight), func(b *testing.B) {
			runKafkaBench(b, inflight, lineBytes, msgBytes, kafkaBenchSink(b, c, batches))
		})
		b.Run(fmt.Sprintf("Bare/inflight=%d", inflight), func(b *testing.B) {
			runKafkaBench(b, inflight, lineBytes, msgBytes, kafkaBenchBare(b, c, batches))
		})
	}
}

// BenchmarkKafkaPaired measures the sink and the bare writer of
// BenchmarkKafka in alternation, a few batches each in turn, so that both
// see the same load on a shared machine; it reports both rates and their
// ratio. One op is one batch of 1000 records on each side.
func BenchmarkKafkaPaired(b *testing.B) {
	c := startKfake(b, kfake.SeedTopics(3, "logs"), kfake.BlackholeProduce())
	batches, lineBytes, _ := kafkaBenchBatches()
	for _, inflight := range []int{1, 4} {
		b.Run(fmt.Sprintf("inflight=%d", inflight), func(b *testing.B) {
			sides := []func(int) error{kafkaBenchSink(b, c, batches), kafkaBenchBare(b, c, batches)}
			var took [2]time.Duration
			for _, send := range sides {
				if err := send(0); err != nil { // connect outside the timing
					b.Fatal(err)
				}
			}
			const round = 8 // batches per side per turn
			b.ResetTimer()
			for done, turn := 0, 0; done < b.N; done, turn = done+round, turn+1 {
				n := min(round, b.N-done)
				for j := range 2 {
					side := (j + turn) % 2 // alternate which side goes first
					start := time.Now()
					if err := sendBatches(inflight, n, done, sides[side]); err != nil {
						b.Fatal(err)
					}
					took[side] += time.Since(start)
				}
			}
			b.StopTimer()
			sink := float64(b.N*benchBatch) / took[0].Seconds()
			bare := float64(b.N*benchBatch) / took[1].Seconds()
			b.ReportMetric(sink, "sink_records/s")
			b.ReportMetric(bare, "bare_records/s")
			b.ReportMetric(sink*float64(lineBytes)/benchBatch/1e6, "sink_lineMB/s")
			b.ReportMetric(sink/bare, "sink/bare")
		})
	}
}

// sendBatches sends batches first..first+n-1 from inflight goroutines.
func sendBatches(inflight, n, first int, send func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, inflight)
	for range inflight {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := send(first + i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// kafkaBenchBatches returns 16 different batches of 1000 records, their
// line bytes and their message (JSON value) bytes per batch.
func kafkaBenchBatches() (batches [][]record.Record, lineBytes, msgBytes int) {
	enc := testEncoder()
	batches = make([][]record.Record, 16)
	for i := range batches {
		batches[i] = kafkaTestRecords(i*benchBatch, benchBatch, benchLineSize)
	}
	for i := range batches[0] {
		lineBytes += len(batches[0][i].Message)
		msgBytes += len(enc.AppendJSON(nil, &batches[0][i]))
	}
	return batches, lineBytes, msgBytes
}

// kafkaBenchSink returns a function that sends batch i with a Kafka sink.
func kafkaBenchSink(b *testing.B, c *kfake.Cluster, batches [][]record.Record) func(int) error {
	cfg := kafkaConfig(c.ListenAddrs(), "logs")
	cfg.Compression, cfg.BatchMaxRecords = "lz4", benchBatch
	k := newTestKafka(b, cfg, nil)
	return func(i int) error {
		// Not copied: Send writes to b.Records only when it fails.
		return k.Send(context.Background(), &sinks.Batch{Records: batches[i%len(batches)]})
	}
}

// kafkaBenchBare returns a function that writes batch i's messages, made
// in advance exactly as the sink makes them, with a bare kafka-go Writer
// of the sink's settings.
func kafkaBenchBare(b *testing.B, c *kfake.Cluster, batches [][]record.Record) func(int) error {
	enc := testEncoder()
	msgs := make([][]kafkago.Message, len(batches))
	for i, recs := range batches {
		msgs[i] = make([]kafkago.Message, len(recs))
		for j := range recs {
			r := &recs[j]
			msgs[i][j] = kafkago.Message{
				Value: enc.AppendJSON(nil, r), Time: r.Time(),
				Headers: []kafkago.Header{{Key: HeaderID, Value: enc.AppendID(nil, r)}, {Key: HeaderPath, Value: r.Path}},
			}
		}
	}
	tr := &kafkago.Transport{ClientID: "bare"}
	w := &kafkago.Writer{
		Addr: kafkago.TCP(c.ListenAddrs()...), Topic: "logs", Balancer: &kafkago.RoundRobin{},
		RequiredAcks: kafkago.RequireAll, Compression: kafkago.Lz4,
		BatchSize: benchBatch, BatchBytes: 1000000 - batchOverhead, BatchTimeout: time.Microsecond,
		Transport: tr,
	}
	b.Cleanup(func() {
		_ = w.Close()
		tr.CloseIdleConnections()
	})
	return func(i int) error { return w.WriteMessages(context.Background(), msgs[i%len(msgs)]...) }
}

// runKafkaBench calls send for b.N batches from inflight goroutines and
// reports records/s, line MB/s (SetBytes) and message MB/s.
func runKafkaBench(b *testing.B, inflight, lineBytes, msgBytes int, send func(i int) error) {
	if err := send(0); err != nil { // connect and fetch metadata outside the timing
		b.Fatal(err)
	}
	b.SetBytes(int64(lineBytes))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range inflight {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				if err := send(i); err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N*benchBatch)/elapsed, "records/s")
	b.ReportMetric(float64(b.N)*float64(msgBytes)/elapsed/1e6, "msgMB/s")
}

// BenchmarkKafkaLoop: binary records (as the buffer holds them, 200-byte
// lines) through the delivery loop (decoding, batching of 1000, 4 batches
// in flight, in-order commits) and the Kafka sink to kfake, lz4, acks=all.
// One op is one record; MB/s counts line bytes.
func BenchmarkKafkaLoop(b *testing.B) {
	c := startKfake(b, kfake.SeedTopics(3, "logs"), kfake.BlackholeProduce())
	pool := make([][]byte, 10*benchBatch)
	for i, r := range kafkaTestRecords(0, len(pool), benchLineSize) {
		pool[i] = r.AppendBinary(nil)
	}
	cfg := kafkaConfig(c.ListenAddrs(), "logs")
	cfg.Compression, cfg.BatchMaxRecords, cfg.BatchMaxBytes = "lz4", benchBatch, 4<<20
	k := newTestKafka(b, cfg, nil)
	data := make([][]byte, b.N)
	for i := range data {
		data[i] = pool[i%len(pool)]
	}
	src := sinktest.NewMemSource()
	cfg.Concurrency = kafkaBenchConcurrency
	l := sinks.NewLoop(k, src, LoopOptions("kafka", cfg))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.SetBytes(benchLineSize)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	go func() { done <- l.Run(ctx) }()
	src.Push(data...)
	for src.Committed() < b.N {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start).Seconds()
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(b.N)/elapsed, "records/s")
}

// kafkaBufferSource adapts a buffer cursor to the loop's Source, as
// cmd/skiff does.
type kafkaBufferSource struct{ c *buffer.Cursor }

func (s kafkaBufferSource) Next(ctx context.Context, maxRecords, maxBytes int) ([]sinks.Entry[buffer.Pos], error) {
	recs, err := s.c.Next(ctx, maxRecords, maxBytes)
	if err != nil {
		return nil, err
	}
	out := make([]sinks.Entry[buffer.Pos], len(recs))
	for i, r := range recs {
		out[i] = sinks.Entry[buffer.Pos]{Pos: r.Pos, Data: r.Data}
	}
	return out, nil
}

func (s kafkaBufferSource) Commit(p buffer.Pos) error { return s.c.Commit(p) }

// BenchmarkKafkaBuffer: records appended to the on-disk buffer (1000 per
// Append, fsync every second) while the delivery loop reads them through
// its cursor and ships them with the Kafka sink to kfake (lz4, acks=all,
// 4 batches of 1000 in flight, cursor commits written to disk). One op is
// one record; MB/s counts 200-byte line bytes. This is skiff's pipeline
// after the tailer.
func BenchmarkKafkaBuffer(b *testing.B) {
	c := startKfake(b, kfake.SeedTopics(3, "logs"), kfake.BlackholeProduce())
	log, err := buffer.Open(buffer.Options{Dir: b.TempDir(), MaxBytes: 256 << 20, Cursors: []string{"kafka"}})
	if err != nil {
		b.Fatal(err)
	}
	defer log.Close()
	cur, err := log.Cursor("kafka")
	if err != nil {
		b.Fatal(err)
	}
	pool := make([][]byte, 10*benchBatch)
	for i, r := range kafkaTestRecords(0, len(pool), benchLineSize) {
		pool[i] = r.AppendBinary(nil)
	}
	cfg := kafkaConfig(c.ListenAddrs(), "logs")
	cfg.Compression, cfg.BatchMaxRecords = "lz4", benchBatch
	k := newTestKafka(b, cfg, nil)
	cfg.Concurrency = kafkaBenchConcurrency
	l := sinks.NewLoop(k, kafkaBufferSource{cur}, LoopOptions("kafka", cfg))

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = log.Run(ctx) })
	wg.Go(func() { _ = l.Run(ctx) })
	b.SetBytes(benchLineSize)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i += benchBatch {
		n := min(benchBatch, b.N-i)
		chunk := make([][]byte, n)
		for j := range chunk {
			chunk[j] = pool[(i+j)%len(pool)]
		}
		if err := log.Append(ctx, chunk); err != nil {
			b.Fatal(err)
		}
	}
	for {
		if recs, _ := cur.Lag(); recs == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start).Seconds()
	b.StopTimer()
	cancel()
	wg.Wait()
	b.ReportMetric(float64(b.N)/elapsed, "records/s")
}

// kafkaBenchConcurrency is the loop's CONCURRENCY in the loop benchmarks
// (SKIFF_BENCH_CONCURRENCY, default 4 as SKIFF_KAFKA_CONCURRENCY).
var kafkaBenchConcurrency = func() int {
	if n, err := strconv.Atoi(os.Getenv("SKIFF_BENCH_CONCURRENCY")); err == nil && n > 0 {
		return n
	}
	return 4
}()
