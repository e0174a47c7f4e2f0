package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/loggen"
)

// TestSIGKILLAtLiveRates: skiff with its defaults (the read delay, cursor
// commits written in place and fsynced once a second), fed 1,000 lines/s
// over four files one write(2) per line, is killed with SIGKILL at random
// moments of steady shipping and restarted on the same data dir. Every
// line arrives (lost = 0), and each kill repeats at most what was in
// flight: the batches sent or being sent (two requests at a time), and the
// one the tailer was appending. A batch at these rates is what one read
// delay brings, so the bound per kill is three times the largest request
// of the second before the kill. (Commits that only an fsync made stick
// would repeat up to a second of lines per kill.)
func TestSIGKILLAtLiveRates(t *testing.T) {
	logs, data := t.TempDir(), t.TempDir()
	r := newReceiver(t)
	env := httpEnv(data, r, filepath.Join(logs, "*.log"))
	env["SKIFF_LOG_LEVEL"] = "info"
	delete(env, "SKIFF_SCAN_INTERVAL") // defaults, as a user runs it
	kills := pick(4, 20)
	const rate, files = 1000, 4

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	written := map[string]uint64{}
	wg.Go(func() { // the application: one write per line, at a steady rate
		fs := make([]*os.File, files)
		for i := range fs {
			f, err := os.OpenFile(filepath.Join(logs, fmt.Sprintf("app%d.log", i)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			fs[i] = f
		}
		var line []byte
		begin := time.Now()
		for k := 0; ; k++ {
			if d := time.Until(begin.Add(time.Duration(k) * time.Second / rate)); d > 0 {
				select {
				case <-stop:
					return
				case <-time.After(d):
				}
			}
			i := k % files
			id := fmt.Sprintf("s%d", i)
			mu.Lock()
			written[id]++
			seq := written[id]
			mu.Unlock()
			line = loggen.AppendLine(line[:0], loggen.FormatPlain, loggen.Line{Stream: id, Seq: seq, Time: time.Now()}, 200)
			if _, err := fs[i].Write(append(line, '\n')); err != nil {
				t.Error(err)
				return
			}
		}
	})

	bound := 0
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 13))
	for range kills {
		p := start(t, env)
		// Past the catch-up after the restart, into steady shipping.
		time.Sleep(time.Duration(2000+rng.IntN(1500)) * time.Millisecond)
		inFlight := 3 * r.largestSince(time.Now().Add(-time.Second))
		p.signal(syscall.SIGKILL)
		p.wait(10 * time.Second)
		bound += inFlight
	}
	close(stop)
	wg.Wait()
	mu.Lock()
	want := map[string]uint64{}
	for id, n := range written {
		want[id] = n
	}
	mu.Unlock()

	p := start(t, env)
	waitDelivered(t, r, want, 60*time.Second)
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
	r.verify(t, want, true) // lost = 0
	dups := 0
	for id := range want {
		dups += r.duplicates(id)
	}
	if dups > bound {
		t.Errorf("%d duplicates over %d kills, more than the %d lines in flight at the kills", dups, kills, bound)
	}
	t.Logf("%d lines, %d kills, %d duplicates (in flight at the kills: at most %d)", total(want), kills, dups, bound)
}
