package procs

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// recorder stands in for runtime.GOMAXPROCS.
type recorder struct {
	mu   sync.Mutex
	cur  int
	sets []int
}

func (r *recorder) set(n int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev := r.cur
	r.cur = n
	r.sets = append(r.sets, n)
	return prev
}

func (r *recorder) now() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

// TestGovernorFollowsCPU: one P at start and while quiet, Max as soon as
// an interval keeps a core busy, one again only after LowerAfter quiet
// intervals in a row, and one when it stops.
func TestGovernorFollowsCPU(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = time.Second
		// Share of a core used in each interval, and GOMAXPROCS after it.
		steps := []struct {
			share float64
			want  int
		}{
			{0.05, 1}, {0.5, 1}, // live rates, even busy ones, stay on one P
			{0.9, 4},           // bulk: CPU-bound on one P
			{1.4, 4}, {0.4, 4}, // still busy, then between the thresholds
			{0.1, 4}, {0.1, 4}, {0.5, 4}, // quiet twice, then not: the count starts again
			{0.1, 4}, {0.1, 4}, {0.1, 4}, // three quiet intervals
			{0.1, 1},  // the fourth lowers it
			{0.61, 4}, // and a busy one raises it again
		}
		var (
			mu   sync.Mutex
			used time.Duration
		)
		r := &recorder{cur: 4}
		g := New(Options{Max: 4, Interval: interval, LowerAfter: 4, cpu: func() (time.Duration, error) {
			mu.Lock()
			defer mu.Unlock()
			return used, nil
		}, set: r.set}, quietLog)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { g.Run(ctx); close(done) }()
		synctest.Wait()
		if got := r.now(); got != 1 {
			t.Fatalf("GOMAXPROCS at start = %d, want 1", got)
		}
		for i, s := range steps {
			mu.Lock()
			used += time.Duration(s.share * float64(interval))
			mu.Unlock()
			time.Sleep(interval)
			synctest.Wait()
			if got := r.now(); got != s.want {
				t.Fatalf("step %d (%.2f of a core): GOMAXPROCS = %d, want %d", i, s.share, got, s.want)
			}
		}
		cancel()
		<-done
		if got := r.now(); got != 1 {
			t.Fatalf("GOMAXPROCS after Run = %d, want 1", got)
		}
	})
}

// TestGovernorOneMax: with a runtime default of one P there is nothing to
// follow: it sets one and returns.
func TestGovernorOneMax(t *testing.T) {
	r := &recorder{cur: 1}
	g := New(Options{Max: 1, cpu: func() (time.Duration, error) {
		t.Fatal("read CPU time with nothing to decide")
		return 0, nil
	}, set: r.set}, quietLog)
	g.Run(t.Context())
	if len(r.sets) != 1 || r.sets[0] != 1 {
		t.Fatalf("sets = %v, want [1]", r.sets)
	}
}

// TestGovernorRealCPU reads this process's real CPU time: a goroutine that
// spins raises it, and it comes down once the spinning stops.
func TestGovernorRealCPU(t *testing.T) {
	r := &recorder{cur: 2}
	g := New(Options{Max: 2, Interval: 50 * time.Millisecond, Raise: 0.4, Lower: 0.2, LowerAfter: 2, set: r.set}, quietLog)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan struct{})
	go func() { g.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	spin, stopSpin := context.WithCancel(ctx)
	go func() {
		for spin.Err() == nil {
			for i := 0; i < 1e6; i++ {
			}
		}
	}()
	waitFor(t, "raised while a goroutine spins", func() bool { return r.now() == 2 })
	stopSpin()
	waitFor(t, "lowered once the spinning stopped", func() bool { return r.now() == 1 })
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s within 30s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
