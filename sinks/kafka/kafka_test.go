package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	kafkago "github.com/segmentio/kafka-go"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"

	"github.com/skiff-dev/skiff/internal/config"
	"github.com/skiff-dev/skiff/internal/record"
	"github.com/skiff-dev/skiff/sinks"
	"github.com/skiff-dev/skiff/sinks/internal/loglimit"
)

// fakeWriter is a writer whose answers a test scripts.
type fakeWriter struct {
	write func(ctx context.Context, msgs []kafkago.Message) error

	mu    sync.Mutex
	calls [][]kafkago.Message
}

func (f *fakeWriter) WriteMessages(ctx context.Context, msgs ...kafkago.Message) error {
	f.mu.Lock()
	f.calls = append(f.calls, slices.Clone(msgs))
	f.mu.Unlock()
	if f.write == nil {
		return nil
	}
	return f.write(ctx, msgs)
}

func (f *fakeWriter) Close() error { return nil }

// fakeKafka is a sink whose writers are fakes; no broker is involved.
func fakeKafka(t *testing.T, main, probe *fakeWriter, dl *fakeDeadLetters, edit func(*kafkaTestConfig)) *Sink {
	t.Helper()
	cfg := kafkaTestConfig{kafkaConfig([]string{"127.0.0.1:1"}, "logs")}
	if edit != nil {
		edit(&cfg)
	}
	k := newTestKafka(t, cfg.Kafka, dl)
	k.w, k.probe = main, probe
	return k
}

// errorsFor answers a WriteMessages call with err for every message for
// which bad is true, as kafka-go does for a partition batch.
func errorsFor(msgs []kafkago.Message, bad func(m *kafkago.Message) bool, err error) error {
	werr := make(kafkago.WriteErrors, len(msgs))
	failed := false
	for i := range msgs {
		if bad(&msgs[i]) {
			werr[i], failed = err, true
		}
	}
	if !failed {
		return nil
	}
	return werr
}

func recordOffsets(recs []record.Record) []int64 {
	o := make([]int64, len(recs))
	for i := range recs {
		o[i] = recs[i].Offset
	}
	return o
}

func TestKafkaMessages(t *testing.T) {
	enc := testEncoder()
	for name, tc := range map[string]struct {
		topic, key string
		wantTopic  string
		wantKey    func(r *record.Record) string
	}{
		"plain topic, no key":          {"logs", "none", "logs", func(*record.Record) string { return "" }},
		"key is the path":              {"logs", "path", "logs", func(r *record.Record) string { return string(r.Path) }},
		"key from SKIFF_FIELDS":        {"logs", "fields.app", "logs", func(*record.Record) string { return "web" }},
		"key from the record's ID":     {"logs", "id", "logs", func(r *record.Record) string { return enc.ID(r) }},
		"topic from the pod namespace": {"{kubernetes.namespace}.logs", "none", "prod.logs", func(*record.Record) string { return "" }},
		"topic from SKIFF_FIELDS":      {"logs-{fields.app}", "kubernetes.pod", "logs-web", func(*record.Record) string { return "web-0" }},
	} {
		t.Run(name, func(t *testing.T) {
			w := &fakeWriter{}
			k := fakeKafka(t, w, &fakeWriter{}, nil, func(c *kafkaTestConfig) { c.Topic, c.Key = tc.topic, tc.key })
			recs := kafkaTestRecords(0, 5, 50)
			if err := k.Send(context.Background(), &sinks.Batch{Records: slices.Clone(recs)}); err != nil {
				t.Fatal(err)
			}
			if len(w.calls) != 1 || len(w.calls[0]) != len(recs) {
				t.Fatalf("calls %d, want one of %d messages", len(w.calls), len(recs))
			}
			for i, m := range w.calls[0] {
				r := &recs[i]
				if m.Topic != tc.wantTopic {
					t.Fatalf("topic %q, want %q", m.Topic, tc.wantTopic)
				}
				if string(m.Key) != tc.wantKey(r) {
					t.Fatalf("key %q, want %q", m.Key, tc.wantKey(r))
				}
				if string(m.Value) != string(enc.AppendJSON(nil, r)) {
					t.Fatalf("value %s, want the record's JSON", m.Value)
				}
				want := []kafkago.Header{{Key: "skiff-id", Value: []byte(enc.ID(r))}, {Key: "skiff-path", Value: r.Path}}
				if fmt.Sprint(m.Headers) != fmt.Sprint(want) {
					t.Fatalf("headers %v, want %v", m.Headers, want)
				}
				if !m.Time.Equal(r.Time()) {
					t.Fatalf("time %v, want %v", m.Time, r.Time())
				}
			}
		})
	}
}

// messageSize must never be below kafka-go's own estimate, or kafka-go
// fails a whole WriteMessages call that the sink thought safe. kafka-go's
// check is reproduced here through its public behaviour.
func TestKafkaMessageSizeMatchesKafkaGo(t *testing.T) {
	for _, size := range []int{0, 1, 100, 127, 128, 16383, 16384, 70000} {
		m := kafkago.Message{Key: []byte("k"), Value: make([]byte, size), Headers: []kafkago.Header{{Key: HeaderID, Value: []byte("pod-1-0000000000000001-42")}, {Key: HeaderPath, Value: []byte("/var/log/a.log")}}}
		est := messageSize(&m)
		for _, limit := range []int64{est - 1, est} {
			tr := &kafkago.Transport{}
			w := &kafkago.Writer{Addr: kafkago.TCP("127.0.0.1:1"), BatchBytes: limit, Topic: "t", Transport: tr}
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // past the size check, kafka-go gives up at once
			err := w.WriteMessages(ctx, m)
			tooLarge := errors.As(err, new(kafkago.MessageTooLargeError))
			if tooLarge != (limit < est) {
				t.Fatalf("value %d bytes, limit %d, estimate %d: kafka-go says too large = %v (%v)", size, limit, est, tooLarge, err)
			}
			_ = w.Close()
			tr.CloseIdleConnections()
		}
	}
}

// TestKafkaIsolatesOnlyTheCulprit: kafka-go fails every record of a
// partition batch for one record's sake; the sink splits, delivers the
// others and dead-letters only a record rejected on its own.
func TestKafkaIsolatesOnlyTheCulprit(t *testing.T) {
	enc := testEncoder()
	culprit := func(m *kafkago.Message) bool { return strings.Contains(string(m.Value), "line 13 ") }
	// The shared writer fails the whole call (one partition batch).
	main := &fakeWriter{write: func(_ context.Context, msgs []kafkago.Message) error {
		return errorsFor(msgs, func(*kafkago.Message) bool { return true }, kafkago.MessageSizeTooLarge)
	}}
	// The probe fails a call holding the culprit, whole.
	probe := &fakeWriter{write: func(_ context.Context, msgs []kafkago.Message) error {
		if slices.ContainsFunc(msgs, func(m kafkago.Message) bool { return culprit(&m) }) {
			return errorsFor(msgs, func(*kafkago.Message) bool { return true }, fmt.Errorf("kafka.(*Client).Produce: %w", kafkago.MessageSizeTooLarge))
		}
		return nil
	}}
	dl := &fakeDeadLetters{enc: enc}
	k := fakeKafka(t, main, probe, dl, nil)
	recs := kafkaTestRecords(0, 40, 50)
	b := &sinks.Batch{Records: slices.Clone(recs)}
	if err := k.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if got := dl.byReason(); len(got) != 1 || !slices.Equal(got[reasonTooLarge], []string{enc.ID(&recs[13])}) {
		t.Fatalf("dead letters %v, want only %s", got, enc.ID(&recs[13]))
	}
	// Halving: at most two writes per halving (2*ceil(log2 40) = 12), not
	// one per record.
	if n := len(probe.calls); n > 12 {
		t.Fatalf("%d isolation writes for 40 records, want at most 12", n)
	}
}

// TestKafkaNeverDeadLettersForANeighbour: when the shared writer rejects a
// record only because another Send's record shared its request, the probe
// delivers it and nothing is dead-lettered.
func TestKafkaNeverDeadLettersForANeighbour(t *testing.T) {
	main := &fakeWriter{write: func(_ context.Context, msgs []kafkago.Message) error {
		return errorsFor(msgs, func(*kafkago.Message) bool { return true }, kafkago.MessageSizeTooLarge)
	}}
	dl := &fakeDeadLetters{enc: testEncoder()}
	k := fakeKafka(t, main, &fakeWriter{}, dl, nil)
	b := &sinks.Batch{Records: kafkaTestRecords(0, 1, 50)}
	if err := k.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if got := dl.byReason(); len(got) != 0 {
		t.Fatalf("dead letters %v, want none", got)
	}
}

// TestKafkaDeadLetterFailure: when the dead-letter store fails, the culprit
// stays in the batch (kind rejected) and the others are delivered.
func TestKafkaDeadLetterFailure(t *testing.T) {
	enc := testEncoder()
	culprit := func(m *kafkago.Message) bool { return strings.Contains(string(m.Value), "line 2 ") }
	reject := func(_ context.Context, msgs []kafkago.Message) error {
		return errorsFor(msgs, culprit, kafkago.InvalidRecord)
	}
	dl := &fakeDeadLetters{enc: enc, fail: func(string) error { return syscall.ENOSPC }}
	k := fakeKafka(t, &fakeWriter{write: reject}, &fakeWriter{write: reject}, dl, nil)
	b := &sinks.Batch{Records: kafkaTestRecords(0, 5, 50)}
	err := k.Send(context.Background(), b)
	var se *sinks.SendError
	if !errors.As(err, &se) || se.Kind != sinks.KindRejected || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Send: %v, want kind rejected wrapping ENOSPC", err)
	}
	if got := recordOffsets(b.Records); !slices.Equal(got, []int64{2000}) {
		t.Fatalf("records left at offsets %v, want [2000]", got)
	}
}

func TestKafkaErrorKinds(t *testing.T) {
	for name, tc := range map[string]struct {
		err  error
		kind string
	}{
		"leader moved":          {kafkago.NotLeaderForPartition, sinks.KindServer},
		"not enough replicas":   {fmt.Errorf("kafka.(*Client).Produce: %w", kafkago.NotEnoughReplicas), sinks.KindServer},
		"broker timeout":        {kafkago.RequestTimedOut, sinks.KindTimeout},
		"deadline":              {context.DeadlineExceeded, sinks.KindTimeout},
		"connection refused":    {&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, sinks.KindNetwork},
		"connection closed":     {io.ErrUnexpectedEOF, sinks.KindNetwork},
		"topic not authorized":  {kafkago.TopicAuthorizationFailed, sinks.KindAuth},
		"sasl":                  {fmt.Errorf("dial: %w", kafkago.SASLAuthenticationFailed), sinks.KindAuth},
		"quota":                 {kafkago.ThrottlingQuotaExceeded, sinks.KindThrottled},
		"unknown broker answer": {kafkago.Error(9999), sinks.KindServer},
	} {
		t.Run(name, func(t *testing.T) {
			w := &fakeWriter{write: func(_ context.Context, msgs []kafkago.Message) error {
				return errorsFor(msgs, func(m *kafkago.Message) bool { return m.Time.UnixMilli()%2 == 1 }, tc.err)
			}}
			k := fakeKafka(t, w, &fakeWriter{}, nil, nil)
			b := &sinks.Batch{Records: kafkaTestRecords(0, 6, 50)}
			err := k.Send(context.Background(), b)
			var se *sinks.SendError
			if !errors.As(err, &se) || se.Kind != tc.kind {
				t.Fatalf("Send: %v, want kind %s", err, tc.kind)
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("Send: %v does not wrap %v", err, tc.err)
			}
			// Only the records that failed are left, in order.
			if got := recordOffsets(b.Records); !slices.Equal(got, []int64{1000, 3000, 5000}) {
				t.Fatalf("records left at %v, want [1000 3000 5000]", got)
			}
		})
	}
}

// TestKafkaWholeCallError: an error that is not per message (no metadata,
// broker unreachable) leaves the whole batch.
func TestKafkaWholeCallError(t *testing.T) {
	w := &fakeWriter{write: func(context.Context, []kafkago.Message) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}}
	k := fakeKafka(t, w, &fakeWriter{}, nil, nil)
	b := &sinks.Batch{Records: kafkaTestRecords(0, 4, 50)}
	err := k.Send(context.Background(), b)
	var se *sinks.SendError
	if !errors.As(err, &se) || se.Kind != sinks.KindNetwork || len(b.Records) != 4 {
		t.Fatalf("Send: %v with %d records left, want kind network and 4", err, len(b.Records))
	}
}

// TestKafkaCancelled: a cancelled attempt delivered nothing as far as the
// sink knows; all records stay.
func TestKafkaCancelled(t *testing.T) {
	w := &fakeWriter{write: func(ctx context.Context, _ []kafkago.Message) error {
		<-ctx.Done()
		return ctx.Err()
	}}
	k := fakeKafka(t, w, &fakeWriter{}, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := &sinks.Batch{Records: kafkaTestRecords(0, 4, 50)}
	err := k.Send(ctx, b)
	var se *sinks.SendError
	if !errors.As(err, &se) || se.Kind != sinks.KindTimeout || len(b.Records) != 4 {
		t.Fatalf("Send: %v with %d records left, want kind timeout and 4", err, len(b.Records))
	}
}

// TestKafkaTopicGroups: with a per-record topic, each topic gets its own
// WriteMessages call, so that one missing topic does not fail the others.
func TestKafkaTopicGroups(t *testing.T) {
	w := &fakeWriter{write: func(_ context.Context, msgs []kafkago.Message) error {
		if msgs[0].Topic == "logs-missing" {
			return kafkago.UnknownTopicOrPartition // as kafka-go does: the whole call
		}
		return nil
	}}
	k := fakeKafka(t, w, &fakeWriter{}, nil, func(c *kafkaTestConfig) { c.Topic = "logs-{json.app}" })
	b := &sinks.Batch{Records: []record.Record{
		jsonRecord(0, `{"app":"a"}`), jsonRecord(1, `{"app":"missing"}`), jsonRecord(2, `{"app":"a"}`),
	}}
	err := k.Send(context.Background(), b)
	var se *sinks.SendError
	if !errors.As(err, &se) || se.Kind != sinks.KindAuth || !strings.Contains(err.Error(), "logs-missing") {
		t.Fatalf("Send: %v, want kind auth naming logs-missing", err)
	}
	if got := recordOffsets(b.Records); !slices.Equal(got, []int64{1}) {
		t.Fatalf("records left at %v, want [1]", got)
	}
	if len(w.calls) != 2 {
		t.Fatalf("%d WriteMessages calls, want one per topic (2)", len(w.calls))
	}
	if n := testutil.ToFloat64(k.m.unknownTopics); n != 1 {
		t.Fatalf("unknown topics gauge %v, want 1", n)
	}
}

func TestNewKafkaRejects(t *testing.T) {
	enc := testEncoder()
	dl := &fakeDeadLetters{enc: enc}
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		edit func(*kafkaTestConfig)
		deps sinks.Deps
		want string
	}{
		"invalid config":       {func(c *kafkaTestConfig) { c.Acks = "most" }, sinks.Deps{Encoder: enc, DeadLetters: dl}, "SKIFF_KAFKA_ACKS"},
		"field no record has":  {func(c *kafkaTestConfig) { c.Topic = "logs-{fields.team}" }, sinks.Deps{Encoder: enc, DeadLetters: dl}, "SKIFF_FIELDS"},
		"no dead-letter store": {nil, sinks.Deps{Encoder: enc}, "dead-letter"},
		"CA file without PEM":  {func(c *kafkaTestConfig) { c.TLSCAFile = notPEM }, sinks.Deps{Encoder: enc, DeadLetters: dl}, "no PEM certificate"},
		"unreadable SASL secret": {func(c *kafkaTestConfig) {
			c.SASLMechanism, c.SASLUsername, c.SASLPasswordFile = "plain", "u", "/nonexistent"
		}, sinks.Deps{Encoder: enc, DeadLetters: dl}, "SASL_PASSWORD_FILE"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := kafkaTestConfig{kafkaConfig([]string{"127.0.0.1:1"}, "logs")}
			if tc.edit != nil {
				tc.edit(&cfg)
			}
			k, err := New("kafka", cfg.Kafka, tc.deps)
			if err == nil {
				_ = k.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// TestKafkaMetricsGoWithTheSink: a closed sink's series are deleted, and
// two sinks share the metric families.
func TestKafkaMetricsGoWithTheSink(t *testing.T) {
	reg := prometheus.NewRegistry()
	enc := testEncoder()
	deps := sinks.Deps{Encoder: enc, DeadLetters: &fakeDeadLetters{enc: enc}, Registerer: reg}
	cfg := kafkaConfig([]string{"127.0.0.1:1"}, "logs")
	a, err := New("a", cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New("b", cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	a.w, b.w = &fakeWriter{}, &fakeWriter{}
	for _, k := range []*Sink{a, b} {
		if err := k.Send(context.Background(), &sinks.Batch{Records: kafkaTestRecords(0, 3, 10)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := testutil.CollectAndCount(reg, "skiff_sink_kafka_message_bytes_total"); n != 2 {
		t.Fatalf("%d message_bytes series, want 2", n)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(reg, "skiff_sink_kafka_message_bytes_total"); n != 1 {
		t.Fatalf("%d message_bytes series after closing a, want 1", n)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

// kafkaTestConfig lets table tests edit a config.Kafka by field.
type kafkaTestConfig struct{ config.Kafka }

// roundTripFunc is a kafkago.RoundTripper made of a function.
type roundTripFunc func(ctx context.Context, addr net.Addr, req kafkago.Request) (kafkago.Response, error)

func (f roundTripFunc) RoundTrip(ctx context.Context, addr net.Addr, req kafkago.Request) (kafkago.Response, error) {
	return f(ctx, addr, req)
}

// TestKafkaMetadataLookupsAreShared: the per-message metadata lookup of
// kafka-go reaches the transport once per topic and second; failures are
// not remembered.
func TestKafkaMetadataLookupsAreShared(t *testing.T) {
	calls := map[string]int{}
	fail := true
	next := roundTripFunc(func(_ context.Context, _ net.Addr, req kafkago.Request) (kafkago.Response, error) {
		topic := req.(*metadataAPI.Request).TopicNames[0]
		calls[topic]++
		if fail {
			return nil, io.ErrUnexpectedEOF
		}
		return &metadataAPI.Response{Topics: []metadataAPI.ResponseTopic{{Name: topic}}}, nil
	})
	now := time.Now()
	mt := &meteredTransport{next: next, m: newMetrics(nil, "t"), now: func() time.Time { return now }}
	lookup := func(topic string) error {
		_, err := mt.RoundTrip(context.Background(), kafkago.TCP("x:1"), &metadataAPI.Request{TopicNames: []string{topic}})
		return err
	}
	for range 2 { // failures are not remembered: both reach the transport
		if lookup("a") == nil {
			t.Fatal("a failed lookup succeeded")
		}
	}
	fail = false
	for range 100 {
		if err := lookup("a"); err != nil {
			t.Fatal(err)
		}
		if err := lookup("b"); err != nil {
			t.Fatal(err)
		}
	}
	if calls["a"] != 3 || calls["b"] != 1 {
		t.Fatalf("transport calls %v, want a:3 (two failures, one answer) b:1", calls)
	}
	now = now.Add(partitionCountTTL)
	if err := lookup("a"); err != nil || calls["a"] != 4 {
		t.Fatalf("lookup after the TTL: %v, calls %d; want a fresh answer", err, calls["a"])
	}
}

// TestKafkaTopicUnresolved: a record whose topic field is missing (no
// fallback) or makes no valid topic is dead-lettered without a write.
func TestKafkaTopicUnresolved(t *testing.T) {
	enc := testEncoder()
	dl := &fakeDeadLetters{enc: enc}
	w := &fakeWriter{}
	k := fakeKafka(t, w, &fakeWriter{}, dl, func(c *kafkaTestConfig) { c.Topic = "logs-{json.app}" })
	recs := []record.Record{
		jsonRecord(0, `{"app":"a"}`), jsonRecord(1, `{"other":1}`), jsonRecord(2, `{"app":{"x":1}}`),
		jsonRecord(3, `{"app":"with space"}`), jsonRecord(4, `{"app":7}`),
	}
	if err := k.Send(context.Background(), &sinks.Batch{Records: slices.Clone(recs)}); err != nil {
		t.Fatal(err)
	}
	got := dl.byReason()
	if !slices.Equal(got[reasonTopicUnresolved], []string{enc.ID(&recs[1]), enc.ID(&recs[2])}) ||
		!slices.Equal(got[reasonInvalidTopic], []string{enc.ID(&recs[3])}) {
		t.Fatalf("dead letters %v", got)
	}
	var topics []string
	for _, c := range w.calls {
		for _, m := range c {
			topics = append(topics, m.Topic)
		}
	}
	slices.Sort(topics)
	if !slices.Equal(topics, []string{"logs-7", "logs-a"}) {
		t.Fatalf("written to %v, want logs-7 and logs-a", topics)
	}
}

func TestKafkaPoisonReasons(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{kafkago.MessageSizeTooLarge, reasonTooLarge},
		{kafkago.RecordListTooLarge, reasonTooLarge},
		{kafkago.MessageTooLargeError{}, reasonTooLarge},
		{kafkago.InvalidRecord, reasonInvalid},
		{kafkago.InvalidMessage, reasonInvalid},
		{fmt.Errorf("x: %w", kafkago.InvalidTimestamp), reasonTimestamp},
		{kafkago.NotLeaderForPartition, ""},
		{io.EOF, ""},
	} {
		if got := poisonReason(tc.err); got != tc.want {
			t.Errorf("poisonReason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// TestKafkaWarnings: insecure TLS and acks=none are logged as warnings.
func TestKafkaWarnings(t *testing.T) {
	var buf strings.Builder
	log := slog.New(slog.NewTextHandler(&syncWriter{w: &buf}, nil))
	enc := testEncoder()
	cfg := kafkaConfig([]string{"127.0.0.1:1"}, "logs")
	cfg.TLSInsecureSkipVerify, cfg.Acks = true, "none"
	k, err := New("kafka", cfg, sinks.Deps{Encoder: enc, DeadLetters: &fakeDeadLetters{enc: enc}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	for _, want := range []string{"level=WARN msg=\"KAFKA TLS CERTIFICATE VERIFICATION IS OFF", "SKIFF_KAFKA_TLS_INSECURE_SKIP_VERIFY", "acks=none"} {
		if !strings.Contains(buf.String(), want) {
			t.Fatalf("log %q lacks %q", buf.String(), want)
		}
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// TestKafkaSecretsAreReadPerConnection: a rotated password file or client
// certificate is used by the next connection, without a restart.
func TestKafkaSecretsAreReadPerConnection(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := kafkaConfig([]string{"127.0.0.1:1"}, "logs")
	cfg.SASLMechanism, cfg.SASLUsername, cfg.SASLPasswordFile = "plain", "u", pw
	m, err := saslMechanism(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"one", "two"} {
		if want == "two" {
			if err := os.WriteFile(pw, []byte("two"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		_, ir, err := m.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if string(ir) != "\x00u\x00"+want {
			t.Fatalf("PLAIN initial response %q, want password %q", ir, want)
		}
	}

	ca := newKafkaTestCA(t)
	_, certFile, keyFile := ca.issue(t, true)
	cfg.TLSCertFile, cfg.TLSKeyFile = certFile, keyFile
	tc, err := tlsConfig(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	first, err := tc.GetClientCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, cert2, key2 := ca.issue(t, true)
	for from, to := range map[string]string{cert2: certFile, key2: keyFile} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	second, err := tc.GetClientCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(first.Certificate[0]) == string(second.Certificate[0]) {
		t.Fatal("the renewed client certificate was not picked up")
	}
}

// TestKafkaIsolationCutShort: when the attempt's time runs out during
// isolation, the records not yet settled stay in the batch as a timeout,
// not as rejected.
func TestKafkaIsolationCutShort(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	allRejected := func(_ context.Context, msgs []kafkago.Message) error {
		return errorsFor(msgs, func(*kafkago.Message) bool { return true }, kafkago.MessageSizeTooLarge)
	}
	probe := &fakeWriter{write: func(c context.Context, msgs []kafkago.Message) error {
		cancel()
		return allRejected(c, msgs)
	}}
	dl := &fakeDeadLetters{enc: testEncoder()}
	k := fakeKafka(t, &fakeWriter{write: allRejected}, probe, dl, nil)
	b := &sinks.Batch{Records: kafkaTestRecords(0, 8, 50)}
	err := k.Send(ctx, b)
	var se *sinks.SendError
	if !errors.As(err, &se) || se.Kind != sinks.KindTimeout || len(b.Records) != 8 {
		t.Fatalf("Send: %v with %d records left, want kind timeout and 8", err, len(b.Records))
	}
	if got := dl.byReason(); len(got) != 0 {
		t.Fatalf("dead letters %v, want none", got)
	}
}

// TestKafkaDeadLetterLogIsLimited: a stream of dead-lettered records logs
// one warning per reason and interval; the metric counts every record.
func TestKafkaDeadLetterLogIsLimited(t *testing.T) {
	var buf strings.Builder
	enc := testEncoder()
	cfg := kafkaConfig([]string{"127.0.0.1:1"}, "logs")
	cfg.MessageMaxBytes = 2 << 10
	k, err := New("kafka", cfg, sinks.Deps{Encoder: enc, DeadLetters: &fakeDeadLetters{enc: enc},
		Logger: slog.New(slog.NewTextHandler(&syncWriter{w: &buf}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	k.w = &fakeWriter{}
	now := time.Now()
	k.now = func() time.Time { return now }
	for i := range 5 {
		if err := k.Send(context.Background(), &sinks.Batch{Records: kafkaTestRecords(i*10, 2, 4<<10)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(buf.String(), "records dead-lettered"); n != 1 {
		t.Fatalf("%d warnings, want 1:\n%s", n, buf.String())
	}
	now = now.Add(loglimit.Every)
	if err := k.Send(context.Background(), &sinks.Batch{Records: kafkaTestRecords(100, 1, 4<<10)}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "logs_suppressed=4") {
		t.Fatalf("second warning does not count the 4 suppressed:\n%s", buf.String())
	}
	if n := testutil.ToFloat64(k.m.deadLetters.WithLabelValues(reasonTooLarge)); n != 11 {
		t.Fatalf("dead-lettered records counted %v, want 11", n)
	}
}
