package e2e

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skiff-dev/skiff/internal/loggen"
)

// TestKafkaEndToEnd ships files through the real binary into an in-process
// Kafka-protocol broker and reads them back with an independent client:
// every line arrives, each message carrying the record ID header.
func TestKafkaEndToEnd(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "logs"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	logs, data := t.TempDir(), t.TempDir()
	env := baseEnv(data, filepath.Join(logs, "*.log"))
	env["SKIFF_SINKS"] = "kafka"
	env["SKIFF_KAFKA_BROKERS"] = strings.Join(c.ListenAddrs(), ",")
	env["SKIFF_KAFKA_TOPIC"] = "logs"
	env["SKIFF_KAFKA_COMPRESSION"] = "lz4"
	env["SKIFF_KAFKA_KEY"] = "path"
	p := start(t, env)
	want := generate(t, context.Background(), loggen.Options{Streams: streams(logs, 2), Size: 200, Lines: pick[uint64](10000, 500000)})

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("logs"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	checker := loggen.NewChecker()
	ids := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for checker.Result("s0", 0).Distinct < want["s0"] || checker.Result("s1", 0).Distinct < want["s1"] {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("timed out: got %d and %d of %v", checker.Result("s0", 0).Distinct, checker.Result("s1", 0).Distinct, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			var s shipped
			if err := json.Unmarshal(r.Value, &s); err != nil {
				t.Fatalf("message is not a record: %v", err)
			}
			var id string
			for _, h := range r.Headers {
				if h.Key == "skiff-id" {
					id = string(h.Value)
				}
			}
			if id != s.ID || string(r.Key) != s.Path {
				t.Fatalf("headers/key do not match the record: id %q vs %q, key %q vs %q", id, s.ID, r.Key, s.Path)
			}
			ids[id] = true
			checker.Add([]byte(s.Message))
		})
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
	if err := checker.Verify(want, false); err != nil {
		t.Fatal(err)
	}
	if uint64(len(ids)) != total(want) {
		t.Errorf("%d distinct record IDs for %d lines", len(ids), total(want))
	}
}
