package kafka

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skiff-dev/skiff/sinks"
	"github.com/skiff-dev/skiff/sinks/internal/sinktest"
)

// runKafkaLoop runs a delivery Loop of the Kafka sink k over src until
// the test ends.
func runKafkaLoop(t *testing.T, k *Sink, cfg kafkaTestConfig, src sinks.Source[int]) *sinks.Loop[int] {
	t.Helper()
	o := LoopOptions("kafka", cfg.Kafka)
	o.BackoffMin, o.BackoffMax, o.BackoffFirstMinuteMax = 10*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
	l := sinks.NewLoop(k, src, o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && ctx.Err() == nil {
			t.Errorf("Run: %v", err)
		}
	})
	return l
}

// consumedOffsets reads n distinct records and returns their record
// offsets (from the skiff-id), counting duplicates.
func consumedOffsets(t *testing.T, addrs []string, n int, opts ...kgo.Opt) map[int64]int {
	t.Helper()
	got := map[int64]int{}
	for _, r := range consume(t, addrs, n, []string{"logs"}, opts...) {
		var v struct {
			Offset int64 `json:"offset"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("value %s: %v", r.Value, err)
		}
		got[v.Offset]++
	}
	return got
}

// TestKafkaLoopDeadLetterFile: through the delivery loop and the real
// dead-letter store, a record over the broker's limit lands in the
// dead-letter file, every record around it is delivered, and the cursor
// passes it.
func TestKafkaLoopDeadLetterFile(t *testing.T) {
	c := startKfake(t, kfake.SeedTopics(3, "logs"), kfake.BrokerConfigs(map[string]string{"message.max.bytes": "30000"}))
	dir := filepath.Join(t.TempDir(), "deadletter")
	enc := testEncoder()
	dl, err := sinks.OpenDeadLetter(sinks.DeadLetterOptions{Dir: dir, Encoder: enc})
	if err != nil {
		t.Fatal(err)
	}
	cfg := kafkaTestConfig{kafkaConfig(c.ListenAddrs(), "logs")}
	cfg.BatchMaxRecords = 64
	k := newTestKafka(t, cfg.Kafka, dl)

	const n, big = 300, 77
	src := sinktest.NewMemSource()
	for i := range n {
		size := 200
		if i == big {
			size = 50_000
		}
		src.Push(sinktest.Record(i, size))
	}
	runKafkaLoop(t, k, cfg, src)
	waitFor(t, func() bool { return src.Committed() == n })

	got := consumedOffsets(t, c.ListenAddrs(), n-1)
	for i := range n {
		if want := i != big; (got[int64(i)] > 0) != want {
			t.Fatalf("record %d delivered %d times; want delivered = %v", i, got[int64(i)], want)
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	if err != nil || len(files) != 1 {
		t.Fatalf("dead-letter files %v (%v), want one", files, err)
	}
	f, err := os.Open(files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var lines []string
	for sc.Scan() {
		var v struct {
			Offset     int64 `json:"offset"`
			DeadLetter struct {
				Sink, Reason string
			} `json:"dead_letter"`
		}
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("dead letter line: %v", err)
		}
		lines = append(lines, strconv.FormatInt(v.Offset, 10)+" "+v.DeadLetter.Sink+" "+v.DeadLetter.Reason)
	}
	if want := strconv.Itoa(big) + " kafka " + reasonTooLarge; len(lines) != 1 || lines[0] != want {
		t.Fatalf("dead letters %q, want [%q]", lines, want)
	}
}

// TestKafkaLoopBrokerRestart: the broker stops in the middle of a stream
// with batches in flight and comes back on the same address with its data;
// the loop retries until everything is delivered, and commits the cursor
// only past what the broker acknowledged.
func TestKafkaLoopBrokerRestart(t *testing.T) {
	dir := t.TempDir()
	opts := []kfake.Opt{kfake.Ports(freePort(t)), kfake.DataDir(dir), kfake.SeedTopics(2, "logs")}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	addrs := c.ListenAddrs()
	cfg := kafkaTestConfig{kafkaConfig(addrs, "logs")}
	cfg.BatchMaxRecords, cfg.Linger, cfg.Timeout = 50, 0, 2*time.Second
	k := newTestKafka(t, cfg.Kafka, nil)

	const n = 4000
	src := sinktest.NewMemSource()
	for i := range n / 2 {
		src.Push(sinktest.Record(i, 200))
	}
	l := runKafkaLoop(t, k, cfg, src)
	waitFor(t, func() bool { return src.Committed() >= 500 })
	c.Close()
	for i := n / 2; i < n; i++ {
		src.Push(sinktest.Record(i, 200))
	}
	waitFor(t, func() bool { return l.Status().LastError != "" })
	stuck := src.Committed()
	if c, err = kfake.NewCluster(opts...); err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Cleanup(c.Close)
	waitFor(t, func() bool { return src.Committed() == n })

	got := consumedOffsets(t, addrs, n)
	dups := 0
	for i := range n {
		if got[int64(i)] == 0 {
			t.Fatalf("record %d lost", i)
		}
		dups += got[int64(i)] - 1
	}
	t.Logf("committed %d when the broker went down; duplicates %d", stuck, dups)
	if max := cfg.BatchMaxRecords * cfg.Concurrency; dups > max {
		t.Fatalf("%d duplicates, want at most the batches in flight (%d)", dups, max)
	}
}
