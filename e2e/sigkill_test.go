package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// sigkillLine is the application's line number seq.
func sigkillLine(seq int) string {
	return fmt.Sprintf("seq=%08d some payload to make the line longer", seq)
}

// httpCollector is an HTTP endpoint that feeds every record's message
// into c and answers 200.
func httpCollector(t *testing.T, c *collector) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msgs []string
		sc := bufio.NewScanner(r.Body)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			var s shipped
			if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			msgs = append(msgs, s.Message)
		}
		if sc.Err() != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		for _, m := range msgs { // only once the request is whole
			c.add(m)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/ingest"
}

// kafkaCollector starts a kfake broker with topic logs and a consumer that
// feeds every record's message into c; it returns the broker addresses.
func kafkaCollector(t *testing.T, c *collector) string {
	cl, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "logs"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	consumer, err := kgo.NewClient(kgo.SeedBrokers(cl.ListenAddrs()...), kgo.ConsumeTopics("logs"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			consumer.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				var s shipped
				if err := json.Unmarshal(r.Value, &s); err != nil {
					t.Errorf("message is not a record: %q", r.Value)
					return
				}
				c.add(s.Message)
			})
		}
	}()
	t.Cleanup(func() { cancel(); <-done; consumer.Close() })
	return strings.Join(cl.ListenAddrs(), ",")
}

// TestSIGKILLLosesNothing: skiff is killed with SIGKILL, at random moments,
// while the application keeps writing, and restarted on the same data
// dir; every line arrives at least once, with duplicates bounded by what
// a kill can leave in flight (batches delivered and not yet committed).
// One variant per sink (stdout, HTTP, Kafka against kfake), one with
// SKIFF_BUFFER_FSYNC=batch, and one where the application rotates its
// file (rename) during the kills. The variants run in parallel.
func TestSIGKILLLosesNothing(t *testing.T) {
	kills := 4
	if os.Getenv("SKIFF_LONG") != "" {
		kills = 30
	}
	for name, v := range map[string]struct {
		env    map[string]string
		sink   func(t *testing.T, c *collector, env map[string]string)
		rotate int // lines between renames of app.log; 0: none
		// inFlight bounds the records one kill can repeat: the loop's
		// batches in flight (concurrency × batch records) and one more
		// whose commit was pending.
		inFlight int
	}{
		"stdout":             {inFlight: 2 * 1000},
		"stdout fsync=batch": {env: map[string]string{"SKIFF_BUFFER_FSYNC": "batch"}, inFlight: 2 * 1000},
		"stdout rotation":    {rotate: 3000, inFlight: 2 * 1000},
		"http": {sink: func(t *testing.T, c *collector, env map[string]string) {
			env["SKIFF_SINKS"], env["SKIFF_HTTP_URL"] = "http", httpCollector(t, c)
		}, inFlight: 3 * 2000},
		"kafka": {sink: func(t *testing.T, c *collector, env map[string]string) {
			env["SKIFF_SINKS"], env["SKIFF_KAFKA_BROKERS"], env["SKIFF_KAFKA_TOPIC"] = "kafka", kafkaCollector(t, c), "logs"
		}, inFlight: 5 * 1000},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			logs, data := t.TempDir(), t.TempDir()
			env := baseEnv(data, filepath.Join(logs, "app.log*"))
			for k, val := range v.env {
				env[k] = val
			}
			c := newCollector()
			if v.sink != nil {
				v.sink(t, c, env)
			}
			var written atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { // the application: steady appends with a sequence number
				defer wg.Done()
				path := filepath.Join(logs, "app.log")
				f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
				if err != nil {
					t.Error(err)
					return
				}
				defer func() { f.Close() }()
				for seq, rotated := 0, 0; ; seq++ {
					select {
					case <-stop:
						return
					default:
					}
					if v.rotate > 0 && seq > 0 && seq%v.rotate == 0 {
						rotated++
						if err := os.Rename(path, fmt.Sprintf("%s.%d", path, rotated)); err != nil {
							t.Error(err)
							return
						}
						f.Close()
						if f, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
							t.Error(err)
							return
						}
					}
					if _, err := fmt.Fprintln(f, sigkillLine(seq)); err != nil {
						t.Error(err)
						return
					}
					written.Add(1)
					if seq%20 == 0 {
						time.Sleep(time.Millisecond)
					}
				}
			}()

			for i := 0; i < kills; i++ {
				p := start(t, env)
				drained := c.drain(t, p)
				time.Sleep(time.Duration(200+rand.IntN(600)) * time.Millisecond)
				p.signal(syscall.SIGKILL)
				p.wait(10 * time.Second)
				<-drained
			}
			close(stop)
			wg.Wait()
			total := int(written.Load())

			p := start(t, env)
			drained := c.drain(t, p)
			// Until it logs this, a SIGTERM would find no handler: the
			// earlier runs may have delivered everything already.
			waitFor(t, 30*time.Second, "skiff started", func() bool { return strings.Contains(p.stderr.String(), "skiff started") })
			waitFor(t, 90*time.Second, "every written line", func() bool {
				c.mu.Lock()
				defer c.mu.Unlock()
				return len(c.count) >= total
			})
			p.signal(syscall.SIGTERM)
			if code := p.wait(30 * time.Second); code != 0 {
				t.Errorf("exit code %d after SIGTERM", code)
			}
			<-drained

			c.mu.Lock()
			defer c.mu.Unlock()
			dups := 0
			for seq := 0; seq < total; seq++ {
				n := c.count[sigkillLine(seq)]
				if n == 0 {
					t.Fatalf("line seq=%d lost (written %d lines, %d kills)", seq, total, kills)
				}
				dups += n - 1
			}
			if len(c.count) != total {
				t.Errorf("%d distinct messages for %d lines written", len(c.count), total)
			}
			if dups > kills*v.inFlight {
				t.Errorf("%d duplicates over %d kills: more than the %d records in flight a kill can repeat", dups, kills, v.inFlight)
			}
			t.Logf("%d lines, %d kills, %d duplicates", total, kills, dups)
		})
	}
}
