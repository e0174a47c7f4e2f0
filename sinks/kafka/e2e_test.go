package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skiff-dev/skiff/internal/record"
	"github.com/skiff-dev/skiff/sinks"
)

// sendAll sends recs in batches of size, as one Send each, and fails the
// test if any record is not delivered.
func sendAll(t testing.TB, k *Sink, recs []record.Record, size int) {
	t.Helper()
	for len(recs) > 0 {
		n := min(size, len(recs))
		b := &sinks.Batch{Records: slices.Clone(recs[:n])}
		if err := k.Send(context.Background(), b); err != nil {
			t.Fatalf("Send: %v", err)
		}
		recs = recs[n:]
	}
}

// checkDelivered checks that got holds each of recs exactly once, with the
// value, headers and key the sink promises.
func checkDelivered(t *testing.T, got []*kgo.Record, recs []record.Record, keyIsPath bool) {
	t.Helper()
	enc := testEncoder()
	want := map[string]*record.Record{}
	for i := range recs {
		want[enc.ID(&recs[i])] = &recs[i]
	}
	seen := map[string]bool{}
	for _, g := range got {
		id := header(g, HeaderID)
		r, ok := want[id]
		if !ok {
			t.Fatalf("unexpected message with skiff-id %q", id)
		}
		if seen[id] {
			t.Fatalf("message %s delivered twice", id)
		}
		seen[id] = true
		if v := string(enc.AppendJSON(nil, r)); string(g.Value) != v {
			t.Fatalf("value of %s:\n got %s\nwant %s", id, g.Value, v)
		}
		if p := header(g, HeaderPath); p != string(r.Path) {
			t.Fatalf("skiff-path of %s = %q, want %q", id, p, r.Path)
		}
		if keyIsPath && string(g.Key) != string(r.Path) {
			t.Fatalf("key of %s = %q, want %q", id, g.Key, r.Path)
		}
		if !keyIsPath && g.Key != nil {
			t.Fatalf("key of %s = %q, want none", id, g.Key)
		}
		if !g.Timestamp.Equal(r.Time()) {
			t.Fatalf("timestamp of %s = %v, want %v", id, g.Timestamp, r.Time())
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("delivered %d distinct records, want %d", len(seen), len(want))
	}
}

func TestKafkaDeliversEveryCodec(t *testing.T) {
	codecs := map[string]struct {
		codec uint8 // kgo's compression attribute
	}{
		"none": {0}, "gzip": {1}, "snappy": {2}, "lz4": {3}, "zstd": {4},
	}
	for name, tc := range codecs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := startKfake(t, kfake.NumBrokers(1), kfake.SeedTopics(3, "logs"))
			cfg := kafkaConfig(c.ListenAddrs(), "logs")
			cfg.Compression, cfg.Key = name, "path"
			k := newTestKafka(t, cfg, nil)
			recs := kafkaTestRecords(0, 300, 200)
			sendAll(t, k, recs, 100)
			got := consume(t, c.ListenAddrs(), len(recs), []string{"logs"})
			checkDelivered(t, got, recs, true)
			for _, g := range got {
				if c := g.Attrs.CompressionType(); c != tc.codec {
					t.Fatalf("compression attribute %d, want %d", c, tc.codec)
				}
			}
			if n := testutil.ToFloat64(k.m.requests); n < 3 {
				t.Fatalf("produce requests counted %v, want at least one per Send (3)", n)
			}
			var valueBytes float64
			for _, g := range got {
				valueBytes += float64(len(g.Key) + len(g.Value))
			}
			if n := testutil.ToFloat64(k.m.messageBytes); n <= valueBytes {
				t.Fatalf("message bytes counted %v, want more than keys and values (%v)", n, valueBytes)
			}
		})
	}
}

func TestKafkaAcks(t *testing.T) {
	for name, tc := range map[string]struct {
		acks string
		want int16
	}{
		"all": {"all", -1}, "one": {"one", 1}, "none": {"none", 0},
	} {
		t.Run(name, func(t *testing.T) {
			c := startKfake(t, kfake.SeedTopics(1, "logs"))
			seen := make(chan int16, 100)
			c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				seen <- req.(*kmsg.ProduceRequest).Acks
				return nil, nil, false
			})
			cfg := kafkaConfig(c.ListenAddrs(), "logs")
			cfg.Acks = tc.acks
			k := newTestKafka(t, cfg, nil)
			sendAll(t, k, kafkaTestRecords(0, 10, 100), 10)
			if got := <-seen; got != tc.want {
				t.Fatalf("produce request acks = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestKafkaNotAcknowledgedIsNotDelivered: a write the broker does not
// acknowledge (not enough in-sync replicas for acks=all) leaves the
// records in the batch, and the next attempt delivers them.
func TestKafkaNotAcknowledgedIsNotDelivered(t *testing.T) {
	c := startKfake(t, kfake.SeedTopics(1, "logs"))
	failures := 2
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if failures == 0 {
			return nil, nil, false
		}
		failures--
		preq := req.(*kmsg.ProduceRequest)
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
		resp.ThrottleMillis = 250
		return resp, nil, true
	})
	k := newTestKafka(t, kafkaConfig(c.ListenAddrs(), "logs"), nil)
	recs := kafkaTestRecords(0, 20, 100)
	b := &sinks.Batch{Records: slices.Clone(recs)}
	for attempt := 1; ; attempt++ {
		err := k.Send(context.Background(), b)
		t.Logf("attempt %d: %v", attempt, err)
		if err == nil {
			break
		}
		var se *sinks.SendError
		if !errors.As(err, &se) || se.Kind != sinks.KindServer {
			t.Fatalf("attempt %d: %v, want a SendError of kind server", attempt, err)
		}
		if len(b.Records) != len(recs) {
			t.Fatalf("attempt %d left %d records, want all %d", attempt, len(b.Records), len(recs))
		}
		if attempt > 3 {
			t.Fatal("still failing after the injected failures")
		}
	}
	checkDelivered(t, consume(t, c.ListenAddrs(), len(recs), []string{"logs"}), recs, false)
	if n := testutil.ToFloat64(k.m.errors.WithLabelValues("not_enough_replicas")); n != 2 {
		t.Fatalf("not_enough_replicas errors counted %v, want 2", n)
	}
	if n := testutil.ToFloat64(k.m.throttleSeconds); n != 0.5 {
		t.Fatalf("throttle seconds %v, want 0.5", n)
	}
}

// TestKafkaOversizeRecordIsDeadLettered: the broker rejects the batch that
// holds a record above its message.max.bytes; the sink isolates that record
// into the dead letters and delivers every other record, including the
// ones that shared its batch.
func TestKafkaOversizeRecordIsDeadLettered(t *testing.T) {
	c := startKfake(t, kfake.SeedTopics(2, "logs"), kfake.BrokerConfigs(map[string]string{"message.max.bytes": "30000"}))
	enc := testEncoder()
	dl := &fakeDeadLetters{enc: enc}
	// MESSAGE_MAX_BYTES is left at 1000000: only the broker knows its limit.
	k := newTestKafka(t, kafkaConfig(c.ListenAddrs(), "logs"), dl)
	recs := kafkaTestRecords(0, 120, 150)
	big := randomRecord(999_000, 40_000)
	all := slices.Insert(slices.Clone(recs), 57, big)
	b := &sinks.Batch{Records: all}
	if err := k.Send(context.Background(), b); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := dl.byReason()
	if want := []string{enc.ID(&big)}; !slices.Equal(got[reasonTooLarge], want) || len(got) != 1 {
		t.Fatalf("dead letters %v, want %v under %s", got, want, reasonTooLarge)
	}
	if n := testutil.ToFloat64(k.m.errors.WithLabelValues("message_size_too_large")); n < 1 {
		t.Fatalf("broker rejections counted %v, want at least 1: the broker never saw the big record", n)
	}
	if n := testutil.ToFloat64(k.m.isolationWrites); n < 1 {
		t.Fatalf("isolation writes %v, want at least 1", n)
	}
	if n := testutil.ToFloat64(k.m.deadLetters.WithLabelValues(reasonTooLarge)); n != 1 {
		t.Fatalf("dead-lettered records counted %v, want 1", n)
	}
	checkDelivered(t, consume(t, c.ListenAddrs(), len(recs), []string{"logs"}), recs, false)
}

// TestKafkaBatchAboveBrokerLimitIsSplit: a batch of small records that is
// larger than the broker's limit only as a whole is delivered whole, with
// nothing dead-lettered.
func TestKafkaBatchAboveBrokerLimitIsSplit(t *testing.T) {
	c := startKfake(t, kfake.SeedTopics(1, "logs"), kfake.BrokerConfigs(map[string]string{"message.max.bytes": "20000"}))
	dl := &fakeDeadLetters{enc: testEncoder()}
	k := newTestKafka(t, kafkaConfig(c.ListenAddrs(), "logs"), dl)
	recs := kafkaTestRecords(0, 300, 300)
	sendAll(t, k, recs, 300)
	if got := dl.byReason(); len(got) != 0 {
		t.Fatalf("dead letters %v, want none", got)
	}
	if n := testutil.ToFloat64(k.m.errors.WithLabelValues("message_size_too_large")); n < 1 {
		t.Fatalf("broker rejections counted %v, want at least 1: the batch was never too large", n)
	}
	checkDelivered(t, consume(t, c.ListenAddrs(), len(recs), []string{"logs"}), recs, false)
}

// TestKafkaRecordAboveConfiguredLimit: a record above MESSAGE_MAX_BYTES is
// dead-lettered before any request, the rest delivered.
func TestKafkaRecordAboveConfiguredLimit(t *testing.T) {
	c := startKfake(t, kfake.SeedTopics(1, "logs"))
	enc := testEncoder()
	dl := &fakeDeadLetters{enc: enc}
	cfg := kafkaConfig(c.ListenAddrs(), "logs")
	cfg.MessageMaxBytes = 8 << 10
	k := newTestKafka(t, cfg, dl)
	recs := kafkaTestRecords(0, 10, 100)
	big := kafkaTestRecords(100, 1, 9<<10)[0]
	b := &sinks.Batch{Records: append(slices.Clone(recs[:5]), append([]record.Record{big}, recs[5:]...)...)}
	if err := k.Send(context.Background(), b); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got := dl.byReason()[reasonTooLarge]; !slices.Equal(got, []string{enc.ID(&big)}) {
		t.Fatalf("dead letters %v, want %s", got, enc.ID(&big))
	}
	if n := testutil.ToFloat64(k.m.isolationWrites); n != 0 {
		t.Fatalf("isolation writes %v, want 0: the record should never reach the broker", n)
	}
	checkDelivered(t, consume(t, c.ListenAddrs(), len(recs), []string{"logs"}), recs, false)
}

// TestKafkaBrokerRestart stops the broker in the middle of a stream, with
// writes in flight, and starts it again on the same address with the same
// data. Retrying what Send leaves, as the delivery loop does, loses
// nothing; duplicates can come only from the batches in flight.
func TestKafkaBrokerRestart(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	opts := []kfake.Opt{kfake.Ports(port), kfake.DataDir(dir), kfake.SeedTopics(2, "logs")}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	addrs := c.ListenAddrs()
	cfg := kafkaConfig(addrs, "logs")
	cfg.Timeout = 2 * time.Second
	k := newTestKafka(t, cfg, nil)

	const batch, inflight = 50, 2
	recs := kafkaTestRecords(0, 3000, 200)
	var (
		delivered atomic.Int64 // batches fully delivered
		failures  atomic.Int64 // failed attempts
		wg        sync.WaitGroup
		next      atomic.Int64
	)
	errc := make(chan error, inflight)
	for range inflight {
		wg.Go(func() {
			for {
				i := int(next.Add(batch)) - batch
				if i >= len(recs) {
					return
				}
				b := &sinks.Batch{Records: slices.Clone(recs[i : i+batch])}
				deadline := time.Now().Add(60 * time.Second)
				for {
					err := k.Send(context.Background(), b)
					if err == nil {
						break
					}
					failures.Add(1)
					if time.Now().After(deadline) {
						errc <- fmt.Errorf("batch at %d undelivered: %w", i, err)
						return
					}
					time.Sleep(20 * time.Millisecond) // the loop's backoff
				}
				delivered.Add(1)
			}
		})
	}
	waitFor(t, func() bool { return delivered.Load() >= 10 })
	c.Close() // with writes in flight
	waitFor(t, func() bool { return failures.Load() >= 2 })
	if c, err = kfake.NewCluster(opts...); err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Cleanup(c.Close)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if delivered.Load() != int64(len(recs)/batch) {
		t.Fatalf("%d batches delivered, want %d", delivered.Load(), len(recs)/batch)
	}
	// Read until every record arrived; extra messages are duplicates.
	got := consume(t, addrs, len(recs), []string{"logs"})
	dups := checkDeliveredAtLeastOnce(t, got, recs)
	t.Logf("failed attempts %d, duplicates %d", failures.Load(), dups)
	if dups > batch*inflight {
		t.Fatalf("%d duplicates, want at most the batches in flight (%d records)", dups, batch*inflight)
	}
}

// waitFor polls cond with a generous deadline.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met before the deadline")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkDeliveredAtLeastOnce checks that every one of recs is in got, with
// the right value, and returns how many messages of got are duplicates.
func checkDeliveredAtLeastOnce(t *testing.T, got []*kgo.Record, recs []record.Record) int {
	t.Helper()
	enc := testEncoder()
	want := map[string]string{}
	for i := range recs {
		want[enc.ID(&recs[i])] = string(enc.AppendJSON(nil, &recs[i]))
	}
	seen := map[string]bool{}
	dups := 0
	for _, g := range got {
		id := header(g, HeaderID)
		v, ok := want[id]
		if !ok || string(g.Value) != v {
			t.Fatalf("unexpected message %s: %s", id, g.Value)
		}
		if seen[id] {
			dups++
		}
		seen[id] = true
	}
	if len(seen) != len(want) {
		t.Fatalf("%d of %d records arrived", len(seen), len(want))
	}
	return dups
}

// jsonRecord is a record whose line was parsed as JSON.
func jsonRecord(offset int64, line string) record.Record {
	return record.Record{
		Collected: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC), Source: 3, Offset: offset,
		Path: []byte("/var/log/app/json.log"), Message: []byte(line), Flags: record.FlagJSON,
	}
}

// TestKafkaTopicTemplate: each record goes to the topic its field names;
// a missing field takes the fallback; a value that is no topic name is
// dead-lettered at once; a topic that does not exist is retried until
// UNKNOWN_TOPIC_TIMEOUT, then dead-lettered; the key is a record field.
func TestKafkaTopicTemplate(t *testing.T) {
	c := startKfake(t, kfake.SeedTopics(2, "logs-a", "logs-b", "logs-other"))
	enc := testEncoder()
	dl := &fakeDeadLetters{enc: enc}
	cfg := kafkaConfig(c.ListenAddrs(), "logs-{json.app|other}")
	cfg.Key = "json.user"
	k := newTestKafka(t, cfg, dl)
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	k.now = func() time.Time { return now }

	recs := []record.Record{
		jsonRecord(0, `{"app":"a","user":"u1"}`),
		jsonRecord(1, `{"app":"b","user":"u2"}`),
		jsonRecord(2, `{"user":"u3"}`),
		jsonRecord(3, `{"app":"zzz","user":"u4"}`),
		jsonRecord(4, `{"app":"a/b","user":"u5"}`),
		jsonRecord(5, `{"app":"a","user":"u6"}`),
	}
	b := &sinks.Batch{Records: slices.Clone(recs)}
	err := k.Send(context.Background(), b)
	var se *sinks.SendError
	if !errors.As(err, &se) || se.Kind != sinks.KindAuth {
		t.Fatalf("first Send: %v, want kind auth for the missing topic", err)
	}
	if len(b.Records) != 1 || b.Records[0].Offset != 3 {
		t.Fatalf("records left %d (first offset %d), want only the one for logs-zzz", len(b.Records), b.Records[0].Offset)
	}
	if got := dl.byReason()[reasonInvalidTopic]; !slices.Equal(got, []string{enc.ID(&recs[4])}) {
		t.Fatalf("invalid_topic dead letters %v, want %s", got, enc.ID(&recs[4]))
	}

	// Within UNKNOWN_TOPIC_TIMEOUT it is still retried.
	now = now.Add(59 * time.Second)
	if err := k.Send(context.Background(), b); err == nil || len(b.Records) != 1 {
		t.Fatalf("Send before the timeout: %v, %d records left; want an error and 1", err, len(b.Records))
	}
	now = now.Add(time.Second)
	if err := k.Send(context.Background(), b); err != nil {
		t.Fatalf("Send after the timeout: %v", err)
	}
	if got := dl.byReason()[reasonUnknownTopic]; !slices.Equal(got, []string{enc.ID(&recs[3])}) {
		t.Fatalf("unknown_topic dead letters %v, want %s", got, enc.ID(&recs[3]))
	}

	got := consume(t, c.ListenAddrs(), 4, []string{"logs-a", "logs-b", "logs-other"})
	where := map[string]string{}
	for _, g := range got {
		where[header(g, HeaderID)] = g.Topic + " " + string(g.Key)
	}
	want := map[string]string{
		enc.ID(&recs[0]): "logs-a u1", enc.ID(&recs[1]): "logs-b u2",
		enc.ID(&recs[2]): "logs-other u3", enc.ID(&recs[5]): "logs-a u6",
	}
	if len(where) != len(want) {
		t.Fatalf("delivered %v, want %v", where, want)
	}
	for id, w := range want {
		if where[id] != w {
			t.Fatalf("record %s went to %q, want %q", id, where[id], w)
		}
	}
}

// TestKafkaMissingFixedTopic: a plain TOPIC that does not exist is a
// configuration error: retried (kind auth) for ever, never dead-lettered.
func TestKafkaMissingFixedTopic(t *testing.T) {
	c := startKfake(t, kfake.SeedTopics(1, "logs"))
	dl := &fakeDeadLetters{enc: testEncoder()}
	k := newTestKafka(t, kafkaConfig(c.ListenAddrs(), "nope"), dl)
	now := time.Now()
	k.now = func() time.Time { return now }
	b := &sinks.Batch{Records: kafkaTestRecords(0, 10, 100)}
	for range 2 {
		err := k.Send(context.Background(), b)
		var se *sinks.SendError
		if !errors.As(err, &se) || se.Kind != sinks.KindAuth || len(b.Records) != 10 {
			t.Fatalf("Send: %v with %d records left, want kind auth and 10", err, len(b.Records))
		}
		now = now.Add(time.Hour)
	}
	if got := dl.byReason(); len(got) != 0 {
		t.Fatalf("dead letters %v, want none", got)
	}
}

// TestKafkaLeaderChange: partition leaders move to other brokers in the
// middle of a stream; attempts answered NOT_LEADER are retried (kind
// server) until kafka-go has the new leaders, and nothing is lost.
func TestKafkaLeaderChange(t *testing.T) {
	c := startKfake(t, kfake.NumBrokers(3), kfake.SeedTopics(3, "logs"))
	cfg := kafkaConfig(c.ListenAddrs(), "logs")
	k := newTestKafka(t, cfg, nil)
	recs := kafkaTestRecords(0, 2000, 200)
	kinds := map[string]int{}
	for i := 0; i < len(recs); i += 100 {
		if i == 1000 {
			for p := range int32(3) {
				leader := c.LeaderFor("logs", p)
				if err := c.MoveTopicPartition("logs", p, (leader+1)%3); err != nil {
					t.Fatal(err)
				}
			}
		}
		b := &sinks.Batch{Records: slices.Clone(recs[i : i+100])}
		deadline := time.Now().Add(60 * time.Second)
		for {
			err := k.Send(context.Background(), b)
			if err == nil {
				break
			}
			var se *sinks.SendError
			if errors.As(err, &se) {
				kinds[se.Kind]++
			}
			if time.Now().After(deadline) {
				t.Fatalf("batch at %d undelivered: %v", i, err)
			}
			time.Sleep(20 * time.Millisecond) // the loop's backoff
		}
	}
	t.Logf("failed attempts by kind: %v", kinds)
	if kinds[sinks.KindServer] == 0 {
		t.Fatal("no attempt failed: the leaders did not move")
	}
	checkDelivered(t, consume(t, c.ListenAddrs(), len(recs), []string{"logs"}), recs, false)
}
