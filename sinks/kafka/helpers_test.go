package kafka

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/skiff-dev/skiff/internal/config"
	"github.com/skiff-dev/skiff/internal/record"
	"github.com/skiff-dev/skiff/sinks"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testEncoder is the encoder of every Kafka test.
func testEncoder() *record.Encoder {
	return record.NewEncoder("pod-1", record.Kubernetes{Namespace: "prod", Pod: "web-0"}, map[string]string{"app": "web"})
}

// testRecords returns n records of about size message bytes from two
// files, each with a distinct offset; first numbers the first offset.
func kafkaTestRecords(first, n, size int) []record.Record {
	recs := make([]record.Record, n)
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for i := range recs {
		j := first + i
		msg := fmt.Sprintf("line %d ", j)
		msg += strings.Repeat("x", max(0, size-len(msg)))
		recs[i] = record.Record{
			Collected: t0.Add(time.Duration(j) * time.Millisecond),
			Source:    uint64(j%2 + 1),
			Offset:    int64(j) * 1000,
			Path:      []byte("/var/log/app/" + strconv.Itoa(j%2) + ".log"),
			Message:   []byte(msg),
		}
	}
	return recs
}

// randomRecord is a record whose message does not compress.
func randomRecord(offset int64, size int) record.Record {
	b := make([]byte, size/2)
	_, _ = rand.Read(b)
	return record.Record{
		Collected: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC),
		Source:    9, Offset: offset, Path: []byte("/var/log/app/big.log"),
		Message: fmt.Appendf(nil, "%x", b),
	}
}

// deadWrite is one call of fakeDeadLetters.Write.
type deadWrite struct {
	sink, reason string
	ids          []string
}

// fakeDeadLetters records what it is given; fail, when set, makes Write
// fail.
type fakeDeadLetters struct {
	enc  *record.Encoder
	mu   sync.Mutex
	w    []deadWrite
	fail func(reason string) error
}

func (f *fakeDeadLetters) Write(sink, reason string, recs []record.Record) error {
	if f.fail != nil {
		if err := f.fail(reason); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	dw := deadWrite{sink: sink, reason: reason}
	for i := range recs {
		dw.ids = append(dw.ids, f.enc.ID(&recs[i]))
	}
	f.w = append(f.w, dw)
	return nil
}

// byReason returns the dead-lettered IDs by reason.
func (f *fakeDeadLetters) byReason() map[string][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[string][]string{}
	for _, w := range f.w {
		m[w.reason] = append(m[w.reason], w.ids...)
	}
	return m
}

// kafkaConfig is a valid sink configuration for brokers and topic, with
// the defaults of the struct tags.
func kafkaConfig(brokers []string, topic string) config.Kafka {
	return config.Kafka{
		Brokers: brokers, Topic: topic, Key: "none", Compression: "none", Acks: "all",
		BatchMaxRecords: 1000, BatchMaxBytes: 1 << 20, Linger: 50 * time.Millisecond,
		MessageMaxBytes: 1000000, Timeout: 10 * time.Second, UnknownTopicTimeout: time.Minute,
		ClientID: "skiff-test", SASLMechanism: "none", Concurrency: 4,
		BackoffMin: 100 * time.Millisecond, BackoffMax: 4 * time.Second, BackoffFirstMinuteMax: 1500 * time.Millisecond, BreakerFailures: 5,
	}
}

// newTestKafka builds a sink and closes it at the end of the test.
func newTestKafka(t testing.TB, cfg config.Kafka, dl sinks.DeadLetters) *Sink {
	t.Helper()
	enc := testEncoder()
	if dl == nil {
		dl = &fakeDeadLetters{enc: enc}
	}
	k, err := New("kafka", cfg, sinks.Deps{Encoder: enc, DeadLetters: dl})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := k.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return k
}

// startKfake starts an in-process Kafka-protocol broker.
func startKfake(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// consume reads topics from the start until want distinct records (by
// skiff-id) arrived, or fails
// the test after a generous deadline.
func consume(t testing.TB, addrs []string, want int, topics []string, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	opts = append([]kgo.Opt{
		kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatalf("kgo: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var got []*kgo.Record
	ids := map[string]bool{}
	for len(ids) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d distinct records before the deadline", len(ids), want)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		for _, r := range fs.Records() {
			got = append(got, r)
			ids[header(r, HeaderID)] = true
		}
	}
	return got
}

// header returns the value of r's header key.
func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
