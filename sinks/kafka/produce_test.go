package kafka

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skiff-dev/skiff/sinks"
)

// produceLog records the produce requests kfake receives: per request,
// its partitions and how many records each carried. fail, when it says
// so for a partition, answers NOT_ENOUGH_REPLICAS for it instead.
type produceLog struct {
	mu       sync.Mutex
	requests [][]int32 // partitions of each request
	fail     func(partition int32) bool
}

func (p *produceLog) install(c *kfake.Cluster) {
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		preq := req.(*kmsg.ProduceRequest)
		p.mu.Lock()
		defer p.mu.Unlock()
		var parts []int32
		failing := false
		for _, rt := range preq.Topics {
			for _, rp := range rt.Partitions {
				parts = append(parts, rp.Partition)
				failing = failing || (p.fail != nil && p.fail(rp.Partition))
			}
		}
		p.requests = append(p.requests, parts)
		if !failing {
			return nil, nil, false
		}
		resp := preq.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range preq.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.NotEnoughReplicas.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
}

func (p *produceLog) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.requests)
}

// TestProducerOneRequestPerPartition: a Send to a topic of three
// partitions makes one request per partition (round-robin spreads the
// records over all three), each holding that partition alone, and every
// record arrives once.
func TestProducerOneRequestPerPartition(t *testing.T) {
	c := startKfake(t, kfake.SeedTopics(3, "logs"))
	var pl produceLog
	k := newTestKafka(t, kafkaConfig(c.ListenAddrs(), "logs"), nil)
	recs := kafkaTestRecords(0, 300, 100)
	pl.install(c)
	if err := k.Send(context.Background(), &sinks.Batch{Records: slices.Clone(recs)}); err != nil {
		t.Fatal(err)
	}
	pl.mu.Lock()
	reqs := slices.Clone(pl.requests)
	pl.mu.Unlock()
	var parts []int32
	for _, r := range reqs {
		if len(r) != 1 {
			t.Fatalf("a request for partitions %v", r)
		}
		parts = append(parts, r[0])
	}
	slices.Sort(parts)
	if !slices.Equal(parts, []int32{0, 1, 2}) {
		t.Fatalf("requests for partitions %v, want one for each of 0, 1, 2", parts)
	}
	checkDelivered(t, consume(t, c.ListenAddrs(), len(recs), []string{"logs"}), recs, false)
}

// TestProducerSplitsAtMessageMaxBytes: a partition's share larger than
// MESSAGE_MAX_BYTES goes in several requests, none above it, and all of
// it arrives.
func TestProducerSplitsAtMessageMaxBytes(t *testing.T) {
	c := startKfake(t, kfake.SeedTopics(1, "logs"))
	cfg := kafkaConfig(c.ListenAddrs(), "logs")
	cfg.MessageMaxBytes = 20000 + batchOverhead
	var pl produceLog
	k := newTestKafka(t, cfg, nil)
	recs := kafkaTestRecords(0, 300, 300) // ~200 KB of messages
	pl.install(c)
	if err := k.Send(context.Background(), &sinks.Batch{Records: slices.Clone(recs)}); err != nil {
		t.Fatal(err)
	}
	if n := pl.count(); n < 10 {
		t.Fatalf("%d requests for ~200 KB with a limit of 20 KB", n)
	}
	checkDelivered(t, consume(t, c.ListenAddrs(), len(recs), []string{"logs"}), recs, false)
}

// TestProducerPartitionFailure: when one partition's request fails, only
// its records are left in the batch (the others are delivered), and the
// retry delivers them.
func TestProducerPartitionFailure(t *testing.T) {
	c := startKfake(t, kfake.SeedTopics(3, "logs"))
	var pl produceLog
	failing := true
	pl.fail = func(p int32) bool { return failing && p == 1 }
	k := newTestKafka(t, kafkaConfig(c.ListenAddrs(), "logs"), nil)
	recs := kafkaTestRecords(0, 300, 100)
	pl.install(c)
	b := &sinks.Batch{Records: slices.Clone(recs)}
	err := k.Send(context.Background(), b)
	var se *sinks.SendError
	if !errors.As(err, &se) || se.Kind != sinks.KindServer {
		t.Fatalf("Send: %v, want a SendError of kind server", err)
	}
	if len(b.Records) == 0 || len(b.Records) >= len(recs)/2 {
		t.Fatalf("%d of %d records left after one of three partitions failed", len(b.Records), len(recs))
	}
	pl.mu.Lock()
	failing = false
	pl.mu.Unlock()
	if err := k.Send(context.Background(), b); err != nil {
		t.Fatalf("retry: %v", err)
	}
	checkDelivered(t, consume(t, c.ListenAddrs(), len(recs), []string{"logs"}), recs, false)
}
