package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// feedLines appends "seq=N" lines to dir/app.log at 500 a second until
// ctx is done; written counts them.
func feedLines(t *testing.T, ctx context.Context, dir string, written *atomic.Int64) chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f, err := os.OpenFile(filepath.Join(dir, "app.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		pad := strings.Repeat("x", 80)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for ctx.Err() == nil {
			var b strings.Builder
			for range 5 {
				fmt.Fprintf(&b, "seq=%d %s\n", written.Load(), pad)
				written.Add(1)
			}
			if _, err := f.WriteString(b.String()); err != nil {
				t.Error(err)
				return
			}
			<-tick.C
		}
	}()
	return done
}

// kafkaSeqs reads the topic from its start and reports whether every seq
// below n is there.
func kafkaSeqs(t *testing.T, addrs []string, n int) bool {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics("logs"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := make([]bool, n)
	missing := n
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for missing > 0 && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			var s shipped
			if json.Unmarshal(r.Value, &s) != nil {
				return
			}
			if v, ok := strings.CutPrefix(strings.Fields(s.Message)[0], "seq="); ok {
				if i, err := strconv.Atoi(v); err == nil && i < n && !seen[i] {
					seen[i] = true
					missing--
				}
			}
		})
	}
	return missing == 0
}

// produceLog records when produce requests reached which broker, for
// which partitions of "logs".
type produceLog struct {
	mu   sync.Mutex
	reqs []produceReq
}

type produceReq struct {
	at         time.Time
	node       int32
	partitions []int32
}

func (l *produceLog) watch(c *kfake.Cluster) {
	c.ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := produceReq{at: time.Now(), node: c.CurrentNode()}
		for _, tp := range r.(*kmsg.ProduceRequest).Topics {
			for _, p := range tp.Partitions {
				req.partitions = append(req.partitions, p.Partition)
			}
		}
		l.mu.Lock()
		l.reqs = append(l.reqs, req)
		l.mu.Unlock()
		return nil, nil, false
	})
}

// first is the first produce request at or after from to node (any node
// when node < 0) that holds partition p (any when p < 0).
func (l *produceLog) first(from time.Time, node, p int32) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.reqs {
		if r.at.Before(from) || (node >= 0 && r.node != node) {
			continue
		}
		for _, q := range r.partitions {
			if p < 0 || q == p {
				return r.at, true
			}
		}
	}
	return time.Time{}, false
}

func kafkaEnv(data, logs string, addrs []string) map[string]string {
	env := baseEnv(data, filepath.Join(logs, "*.log"))
	env["SKIFF_SINKS"] = "kafka"
	env["SKIFF_KAFKA_BROKERS"] = strings.Join(addrs, ",")
	env["SKIFF_KAFKA_TOPIC"] = "logs"
	env["SKIFF_LOG_LEVEL"] = "info"
	return env
}

// TestRecoveryKafkaBrokerDown: the only broker stops (connections refused)
// for 1s, 15s and 2 minutes and comes back on the same port with its data;
// with the default settings the first produce request reaches it within
// 2s of its return (5s after the 2-minute outage), the backlog follows,
// and no line is lost.
func TestRecoveryKafkaBrokerDown(t *testing.T) {
	t.Parallel()
	outages := []time.Duration{time.Second, 15 * time.Second, 2 * time.Minute}
	if s := os.Getenv("SKIFF_RECOVERY_OUTAGES"); s != "" {
		outages = nil
		for _, f := range strings.Split(s, ",") {
			d, err := time.ParseDuration(f)
			if err != nil {
				t.Fatal(err)
			}
			outages = append(outages, d)
		}
	}
	opts := []kfake.Opt{kfake.Ports(freePortNum(t)), kfake.DataDir(t.TempDir()), kfake.SeedTopics(2, "logs")}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { c.Close() }()
	var plog produceLog
	plog.watch(c)
	addrs := c.ListenAddrs()
	logs, data := t.TempDir(), t.TempDir()
	p := start(t, kafkaEnv(data, logs, addrs))
	var written atomic.Int64
	ctx, stopFeed := context.WithCancel(context.Background())
	feedDone := feedLines(t, ctx, logs, &written)
	defer func() { stopFeed(); <-feedDone }()

	caughtUp := func(n int, limit time.Duration) time.Time {
		t.Helper()
		deadline := time.Now().Add(limit)
		for !kafkaSeqs(t, addrs, n) {
			if time.Now().After(deadline) {
				t.Fatalf("lines below %d still missing after %v", n, limit)
			}
		}
		return time.Now()
	}
	time.Sleep(2 * time.Second)
	caughtUp(int(written.Load()), 30*time.Second)
	var report []string
	for _, outage := range outages {
		c.Close()
		time.Sleep(outage)
		if c, err = kfake.NewCluster(opts...); err != nil {
			t.Fatalf("restart: %v", err)
		}
		plog.watch(c)
		up := time.Now()
		n := int(written.Load())
		done := caughtUp(n, time.Minute)
		first, ok := plog.first(up, -1, -1)
		if !ok {
			t.Fatal("no produce request after the restart")
		}
		bound := 2 * time.Second
		if outage > time.Minute {
			bound = 5 * time.Second
		}
		resume := first.Sub(up)
		report = append(report, fmt.Sprintf("broker down %-6v first produce +%-7v backlog of %d lines read back by +%v",
			outage, resume.Round(time.Millisecond), n, done.Sub(up).Round(time.Millisecond)))
		if resume > bound*3/2 {
			t.Errorf("after a %v outage the first produce request came %v after the broker was back, want within %v", outage, resume, bound)
		}
		if d := done.Sub(first); d > 15*time.Second {
			t.Errorf("after a %v outage the backlog was read back %v after the first produce request", outage, d)
		}
	}
	stopFeed()
	<-feedDone
	caughtUp(int(written.Load()), time.Minute)
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
	t.Logf("kafka recovery with the default settings, %d lines, none lost:\n%s", written.Load(), strings.Join(report, "\n"))
}

// TestRecoveryKafkaLeaderMoves: partition leaders move to other brokers
// under a steady stream; each time the new leader gets the partition's
// next produce request within 2s, and no line is lost.
func TestRecoveryKafkaLeaderMoves(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(3, "logs"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var plog produceLog
	plog.watch(c)
	addrs := c.ListenAddrs()
	logs, data := t.TempDir(), t.TempDir()
	p := start(t, kafkaEnv(data, logs, addrs))
	var written atomic.Int64
	ctx, stopFeed := context.WithCancel(context.Background())
	feedDone := feedLines(t, ctx, logs, &written)
	defer func() { stopFeed(); <-feedDone }()
	time.Sleep(2 * time.Second)
	var report []string
	for move := range 4 {
		at := time.Now()
		leaders := map[int32]int32{}
		for part := range int32(3) {
			to := (c.LeaderFor("logs", part) + 1) % 3
			if err := c.MoveTopicPartition("logs", part, to); err != nil {
				t.Fatal(err)
			}
			leaders[part] = to
		}
		time.Sleep(3 * time.Second)
		for part, node := range leaders {
			first, ok := plog.first(at, node, part)
			if !ok {
				t.Errorf("move %d: no produce request for partition %d at its new leader %d within 3s", move, part, node)
				continue
			}
			d := first.Sub(at)
			report = append(report, fmt.Sprintf("move %d partition %d: first produce at the new leader +%v", move, part, d.Round(time.Millisecond)))
			if d > 3*time.Second {
				t.Errorf("move %d: partition %d reached its new leader %v after the move, want within 2s", move, part, d)
			}
		}
	}
	stopFeed()
	<-feedDone
	n := int(written.Load())
	deadline := time.Now().Add(time.Minute)
	for !kafkaSeqs(t, addrs, n) {
		if time.Now().After(deadline) {
			t.Fatalf("lines missing a minute after the feed stopped")
		}
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
	t.Logf("%d lines, none lost:\n%s", n, strings.Join(report, "\n"))
}

// freePortNum is a loopback port nobody listens on right now.
func freePortNum(t *testing.T) int {
	_, port, _ := strings.Cut(freeAddr(t), ":")
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
