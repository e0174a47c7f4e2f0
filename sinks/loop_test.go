package sinks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// runLoop starts l.Run and returns a function that stops it and returns
// Run's error.
func runLoop[P any](t *testing.T, l *Loop[P]) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// waitUntil polls cond; in a synctest bubble the sleeps are virtual.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: 4 * time.Second, FirstMinuteMax: 1500 * time.Millisecond}
	for name, tc := range map[string]struct {
		b    Backoff
		age  time.Duration
		want []time.Duration // ceilings for n = 1, 2, ...
	}{
		"first minute": {b, 59 * time.Second, []time.Duration{100, 200, 400, 800, 1500, 1500}},
		"later":        {b, time.Minute, []time.Duration{100, 200, 400, 800, 1600, 3200, 4000, 4000}},
		"no first-minute cap": {Backoff{Min: 100 * time.Millisecond, Max: 4 * time.Second}, 0,
			[]time.Duration{100, 200, 400, 800, 1600, 3200, 4000}},
		"first-minute cap below Min": {Backoff{Min: 2 * time.Second, Max: 4 * time.Second, FirstMinuteMax: time.Second}, 0,
			[]time.Duration{2000, 2000}},
	} {
		t.Run(name, func(t *testing.T) {
			for i, w := range tc.want {
				n, w := i+1, w*time.Millisecond
				if got := tc.b.Ceiling(n, tc.age); got != w {
					t.Errorf("Ceiling(%d, %v) = %v, want %v", n, tc.age, got, w)
				}
				for range 200 {
					if d := tc.b.Duration(n, tc.age); d < w/2 || d > w {
						t.Fatalf("Duration(%d) = %v out of [%v, %v]", n, d, w/2, w)
					}
				}
			}
			if got, w := tc.b.Ceiling(1<<20, tc.age), tc.want[len(tc.want)-1]*time.Millisecond; got != w {
				t.Errorf("Ceiling(huge) = %v, want %v", got, w)
			}
		})
	}
}

// TestBreaker walks the schedule through an outage: waits between
// rounds, the circuit opening after the threshold or at once on a
// timeout, one probe at a time, and a success clearing everything.
func TestBreaker(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	bo := Backoff{Min: 100 * time.Millisecond, Max: 4 * time.Second, FirstMinuteMax: 1500 * time.Millisecond}
	inWait := func(t *testing.T, b *breaker, start time.Time, c time.Duration) {
		t.Helper()
		if b.next.Before(start.Add(c/2)) || b.next.After(start.Add(c)) {
			t.Fatalf("next attempt at +%v, want within [%v, %v] after the start at +%v", b.next.Sub(t0), c/2, c, start.Sub(t0))
		}
	}
	t.Run("threshold, probes, success", func(t *testing.T) {
		b := breaker{threshold: 3, backoff: bo}
		b.failure(ms(0), ms(10), false, false)
		inWait(t, &b, ms(0), 100*time.Millisecond)
		if ok, _, wait := b.allow(ms(20)); ok || wait <= 0 {
			t.Fatalf("allow during the wait = %v (wait %v)", ok, wait)
		}
		// An attempt in flight since before that failure: the same round.
		b.failure(ms(5), ms(30), false, false)
		if b.rounds != 1 || b.state != CircuitClosed {
			t.Fatalf("rounds %d, state %v after two failures of one round", b.rounds, b.state)
		}
		if ok, probe, _ := b.allow(b.next); !ok || probe {
			t.Fatalf("allow after the wait = %v, probe %v; want an ordinary attempt", ok, probe)
		}
		start := b.next
		b.failure(start, start.Add(time.Millisecond), false, false)
		if b.state != CircuitOpen || b.rounds != 2 {
			t.Fatalf("state %v, rounds %d after the third failure", b.state, b.rounds)
		}
		inWait(t, &b, start, 200*time.Millisecond)
		for round := 3; round < 80; round++ {
			ok, probe, _ := b.allow(b.next)
			if !ok || !probe || b.state != CircuitHalfOpen {
				t.Fatalf("round %d: allow = %v, probe %v, state %v; want the probe", round, ok, probe, b.state)
			}
			if ok, _, wait := b.allow(b.next); ok || wait != 0 {
				t.Fatalf("round %d: a second attempt allowed beside the probe", round)
			}
			start := b.next
			if pt := b.probeTimeout(start); pt != 1500*time.Millisecond && start.Sub(t0) < time.Minute {
				t.Fatalf("probe timeout %v in the first minute", pt)
			}
			b.failure(start, start.Add(10*time.Millisecond), true, false)
			if b.state != CircuitOpen {
				t.Fatalf("round %d: state %v after a failed probe", round, b.state)
			}
			inWait(t, &b, start, bo.Ceiling(round, start.Sub(t0)))
		}
		if b.next.Sub(t0) < time.Minute {
			t.Fatalf("80 rounds took only %v", b.next.Sub(t0))
		}
		if pt := b.probeTimeout(b.next); pt != 4*time.Second {
			t.Errorf("probe timeout after a minute = %v, want BackoffMax", pt)
		}
		b.allow(b.next)
		b.success()
		if ok, probe, _ := b.allow(b.next); !ok || probe || b.state != CircuitClosed || !b.next.IsZero() || b.failures != 0 {
			t.Fatalf("after success: allow %v probe %v state %v next %v", ok, probe, b.state, b.next)
		}
	})
	t.Run("a timeout opens at once", func(t *testing.T) {
		b := breaker{threshold: 5, backoff: bo}
		b.failure(ms(0), ms(1500), false, true)
		if b.state != CircuitOpen {
			t.Fatalf("state %v after a timeout", b.state)
		}
		// Its wait ran out during the attempt: the probe may go now.
		if ok, probe, _ := b.allow(ms(1500)); !ok || !probe {
			t.Fatalf("allow right after a timeout = %v, probe %v", ok, probe)
		}
	})
	t.Run("disabled never opens", func(t *testing.T) {
		b := breaker{threshold: -1, backoff: bo}
		for i := range 20 {
			b.failure(ms(i*100), ms(i*100+1), false, i%2 == 0)
		}
		if b.state != CircuitClosed {
			t.Fatalf("state %v with the breaker disabled", b.state)
		}
	})
	t.Run("abandoned probe lets another through", func(t *testing.T) {
		b := breaker{threshold: 1, backoff: bo}
		b.failure(ms(0), ms(0), false, false)
		if ok, probe, _ := b.allow(b.next); !ok || !probe {
			t.Fatal("no probe")
		}
		if !b.abandon(true) || b.state != CircuitOpen {
			t.Fatalf("abandon: state %v", b.state)
		}
		if ok, probe, _ := b.allow(b.next); !ok || !probe {
			t.Fatal("no second probe after an abandoned one")
		}
	})
	t.Run("probe failing after another attempt closed the circuit", func(t *testing.T) {
		b := breaker{threshold: 3, backoff: bo}
		b.failure(ms(0), ms(0), false, false)
		b.failure(ms(200), ms(200), false, false)
		b.failure(ms(500), ms(500), false, false)
		b.allow(b.next)
		b.success() // an attempt started before the circuit opened
		b.failure(ms(2000), ms(2000), true, false)
		if b.state != CircuitClosed {
			t.Fatalf("state %v: one failure reopened a closed circuit", b.state)
		}
	})
}

func TestLatency(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var e latency
	if d := e.timeout(t0); d != 0 {
		t.Fatalf("timeout before any answer = %v, want none of the loop's own", d)
	}
	e.observe(t0, 100*time.Millisecond)
	if d := e.timeout(t0); d != minAttemptTimeout {
		t.Errorf("timeout after a 100ms answer = %v, want %v", d, minAttemptTimeout)
	}
	e.observe(t0, time.Second)
	e.observe(t0.Add(time.Millisecond), 10*time.Millisecond)
	if d := e.timeout(t0.Add(time.Millisecond)); d < 3990*time.Millisecond || d > 4*time.Second {
		t.Errorf("timeout after a 1s answer = %v, want 4s (the slowest recent answer counts)", d)
	}
	if d := e.timeout(t0.Add(latencyHalfLife)); d < 1990*time.Millisecond || d > 2010*time.Millisecond {
		t.Errorf("timeout a half-life later = %v, want 2s", d)
	}
	e.timedOut(t0.Add(latencyHalfLife), 2*time.Second)
	if d := e.timeout(t0.Add(latencyHalfLife)); d < 4*time.Second {
		t.Errorf("timeout after one ran out at 2s = %v, want at least twice as long", d)
	}
}

// TestLoopDeliversInOrder: with several batches in flight finishing out of
// order, every record arrives and the cursor only moves past a batch once
// every earlier one is delivered.
func TestLoopDeliversInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newMemSource(testRecords(100, 0)...)
		var got offsets
		var calls atomic.Int64
		sink := funcSink(func(ctx context.Context, b *Batch) error {
			// The first batch is slowest, so later ones finish first.
			if b.Records[0].Offset == 0 {
				time.Sleep(time.Second)
			} else {
				time.Sleep(time.Duration(calls.Add(1)%3) * 10 * time.Millisecond)
			}
			got.add(b)
			return nil
		})
		reg := prometheus.NewRegistry()
		l := NewLoop(sink, src, LoopOptions{Name: "t", MaxRecords: 10, Concurrency: 4, Registerer: reg})
		stop := runLoop(t, l)
		time.Sleep(500 * time.Millisecond)
		synctest.Wait()
		if c := src.committed(); c != 0 {
			t.Fatalf("committed %d while the first batch is in flight", c)
		}
		if v := testutil.ToFloat64(l.m.sampled[0]); v != 1 {
			t.Errorf("requests in flight = %v while only the first batch is sending, want 1", v)
		}
		if v := testutil.ToFloat64(l.m.sampled[2]); v < 0.5 {
			t.Errorf("oldest undelivered age = %vs, want at least 0.5s", v)
		}
		if n := l.Status().Outstanding; n != 4 {
			t.Errorf("outstanding batches = %d, want Concurrency 4", n)
		}
		waitUntil(t, "all committed", func() bool { return src.committed() == 100 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if got.count() != 100 {
			t.Fatalf("delivered %d distinct records, want 100", got.count())
		}
		for off, n := range got.seen {
			if n != 1 {
				t.Errorf("record %d delivered %d times", off, n)
			}
		}
		if v := testutil.ToFloat64(l.m.records); v != 100 {
			t.Errorf("records delivered metric = %v", v)
		}
		if v := testutil.ToFloat64(l.m.bytes); v != float64(len("line 0 ")*10+len("line 10 ")*90) {
			t.Errorf("bytes delivered metric = %v", v)
		}
		if n := testutil.CollectAndCount(l.m.latency); n != 1 {
			t.Errorf("latency histogram series = %d", n)
		}
		if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP skiff_sink_requests_in_flight Delivery attempts in progress.
# TYPE skiff_sink_requests_in_flight gauge
skiff_sink_requests_in_flight{sink="t"} 0
`), "skiff_sink_requests_in_flight"); err != nil {
			t.Error(err)
		}
	})
}

// TestLoopRetriesWithBackoff: failed attempts are retried with waits
// within the jittered exponential bounds until one succeeds.
func TestLoopRetriesWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newMemSource(testRecords(5, 0)...)
		var attempts []time.Time
		sink := funcSink(func(ctx context.Context, b *Batch) error {
			attempts = append(attempts, time.Now())
			if len(attempts) <= 6 {
				return &SendError{Kind: KindServer, Err: errors.New("500")}
			}
			return nil
		})
		reg := prometheus.NewRegistry()
		o := LoopOptions{Name: "t", BackoffMin: time.Second, BackoffMax: 8 * time.Second, BackoffFirstMinuteMax: 8 * time.Second,
			BreakerFailures: -1, Registerer: reg}
		l := NewLoop(sink, src, o)
		stop := runLoop(t, l)
		waitUntil(t, "committed", func() bool { return src.committed() == 5 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if len(attempts) != 7 {
			t.Fatalf("%d attempts, want 7", len(attempts))
		}
		b := Backoff{Min: o.BackoffMin, Max: o.BackoffMax}
		for i := 1; i < len(attempts); i++ {
			c := b.Ceiling(i, attempts[i-1].Sub(attempts[0]))
			if gap := attempts[i].Sub(attempts[i-1]); gap < c/2 || gap > c {
				t.Errorf("wait before retry %d = %v, want within [%v, %v]", i, gap, c/2, c)
			}
		}
		if v := testutil.ToFloat64(l.m.retries); v != 6 {
			t.Errorf("retries = %v, want 6", v)
		}
		if v := testutil.ToFloat64(l.m.errors.WithLabelValues(KindServer)); v != 6 {
			t.Errorf("server errors = %v, want 6", v)
		}
	})
}

// TestLoopRetryAfterPausesSink: a Retry-After on one batch holds back
// every batch of the sink for at least that long.
func TestLoopRetryAfterPausesSink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newMemSource(testRecords(40, 0)...)
		var mu sync.Mutex
		var throttledAt time.Time
		var starts []time.Time
		sink := funcSink(func(ctx context.Context, b *Batch) error {
			mu.Lock()
			starts = append(starts, time.Now())
			first := throttledAt.IsZero()
			if first {
				throttledAt = time.Now()
			}
			mu.Unlock()
			if first {
				return &SendError{Kind: KindThrottled, RetryAfter: 7 * time.Second, Err: errors.New("429")}
			}
			time.Sleep(100 * time.Millisecond)
			return nil
		})
		l := NewLoop(sink, src, LoopOptions{Name: "t", MaxRecords: 5, Concurrency: 3, BackoffMin: time.Millisecond, BackoffMax: time.Millisecond})
		stop := runLoop(t, l)
		waitUntil(t, "committed", func() bool { return src.committed() == 40 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		// Attempts that started together with the throttled one are fine;
		// none may start after it and before the pause ends.
		for _, s := range starts {
			if s.After(throttledAt) && s.Before(throttledAt.Add(7*time.Second)) {
				t.Errorf("attempt at +%v, inside the 7s Retry-After pause", s.Sub(throttledAt))
			}
		}
	})
}

// TestLoopRecovery drives the loop, with its default schedule, through
// outages of a destination that fails fast or accepts requests and never
// answers them: once the circuit is open one probe of one record is in
// flight at a time, the probes are spaced by the capped backoff (1.5s in
// the first minute, 4s later), the first probe after the destination is
// back succeeds within that cap, and then every slot sends at once.
func TestLoopRecovery(t *testing.T) {
	for name, tc := range map[string]struct {
		outage time.Duration
		hang   bool
	}{
		"refused 10s": {outage: 10 * time.Second},
		"refused 3m":  {outage: 3 * time.Minute},
		"hang 10s":    {outage: 10 * time.Second, hang: true},
		"hang 3m":     {outage: 3 * time.Minute, hang: true},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { testRecovery(t, tc.outage, tc.hang) })
		})
	}
}

type attemptLog struct {
	start, end time.Time
	records    int
	inFlight   int // including itself, when it started
	ok         bool
}

func testRecovery(t *testing.T, outage time.Duration, hang bool) {
	const concurrency, before, during = 4, 50, 400
	src := newMemSource(testRecords(before, 0)...)
	var (
		mu       sync.Mutex
		down     bool
		inFlight int
		log      []*attemptLog
		got      offsets
	)
	sink := funcSink(func(ctx context.Context, b *Batch) error {
		mu.Lock()
		inFlight++
		a := &attemptLog{start: time.Now(), records: len(b.Records), inFlight: inFlight}
		log = append(log, a)
		isDown := down
		mu.Unlock()
		defer func() {
			mu.Lock()
			inFlight--
			a.end = time.Now()
			mu.Unlock()
		}()
		time.Sleep(time.Millisecond)
		if isDown {
			if hang {
				<-ctx.Done()
				return ctx.Err()
			}
			return &SendError{Kind: KindNetwork, Err: errors.New("connection refused")}
		}
		a.ok = true
		got.add(b)
		return nil
	})
	reg := prometheus.NewRegistry()
	l := NewLoop(sink, src, LoopOptions{Name: "t", MaxRecords: 10, Concurrency: concurrency, Registerer: reg})
	stop := runLoop(t, l)
	waitUntil(t, "first records", func() bool { return src.committed() == before })

	mu.Lock()
	down = true
	mu.Unlock()
	downAt := time.Now()
	var more [][]byte
	for i := before; i < before+during; i++ {
		more = append(more, testRecord(i, 0))
	}
	src.push(more...)
	time.Sleep(outage)
	mu.Lock()
	down = false
	mu.Unlock()
	upAt := time.Now()
	waitUntil(t, "all committed", func() bool { return src.committed() == before+during })
	doneAt := time.Now()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got.count() != before+during {
		t.Fatalf("%d distinct records delivered, want %d", got.count(), before+during)
	}

	mu.Lock()
	defer mu.Unlock()
	limit := func(at time.Time) time.Duration {
		if at.Sub(downAt) < time.Minute {
			return DefaultBackoffFirstMinuteMax
		}
		return DefaultBackoffMax
	}
	var probes []*attemptLog
	var firstOK *attemptLog
	maxAfter := 0
	for _, a := range log {
		switch {
		case a.start.Before(downAt):
		case a.start.Before(upAt):
			if a.records == 1 {
				probes = append(probes, a)
			} else if len(probes) > 0 {
				t.Fatalf("an attempt of %d records at +%v, after the circuit opened", a.records, a.start.Sub(downAt))
			}
		default:
			if firstOK == nil && a.ok {
				firstOK = a
			}
			maxAfter = max(maxAfter, a.inFlight)
		}
	}
	if len(probes) < 5 {
		t.Fatalf("%d probes during a %v outage", len(probes), outage)
	}
	var gaps []time.Duration
	for i := 1; i < len(probes); i++ {
		if probes[i].start.Before(probes[i-1].end) {
			t.Fatalf("probe %d started at +%v, while the previous one was in flight", i, probes[i].start.Sub(downAt))
		}
		gap := probes[i].start.Sub(probes[i-1].start)
		if lim := limit(probes[i-1].start); gap > lim {
			t.Errorf("probe %d came %v after the previous one, above the %v cap", i, gap, lim)
		}
		if gap < DefaultBackoffMin/2 {
			t.Errorf("probe %d came %v after the previous one", i, gap)
		}
		gaps = append(gaps, gap)
	}
	// The waits grow: in the first minute, past the first few seconds,
	// they are at least half the cap.
	for i, g := range gaps {
		if at := probes[i].start.Sub(downAt); at > 5*time.Second && g < limit(probes[i].start)/2 {
			t.Errorf("probe %d at +%v came only %v after the previous one", i+1, at, g)
		}
	}
	if firstOK == nil {
		t.Fatal("nothing succeeded after the outage")
	}
	if d, lim := firstOK.start.Sub(upAt), limit(upAt); d > lim {
		t.Errorf("first accepted attempt %v after the destination was back, want at most %v", d, lim)
	}
	if maxAfter != concurrency {
		t.Errorf("at most %d attempts in flight after recovery, want all %d slots", maxAfter, concurrency)
	}
	if d := doneAt.Sub(firstOK.start); d > time.Second {
		t.Errorf("backlog drained %v after the first success", d)
	}
	t.Logf("%d probes; back after %v, drained after %v", len(probes), firstOK.start.Sub(upAt), doneAt.Sub(upAt))
}

// TestLoopSkipsCorrupt: records that do not decode are counted and never
// sent, and the cursor moves past them.
func TestLoopSkipsCorrupt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		data := testRecords(10, 0)
		data[3] = []byte("garbage")
		data = append(data, []byte{9, 9}) // a batch of only garbage at the end
		src := newMemSource(data...)
		var got offsets
		reg := prometheus.NewRegistry()
		l := NewLoop(funcSink(func(ctx context.Context, b *Batch) error { got.add(b); return nil }), src,
			LoopOptions{Name: "t", MaxRecords: 10, Registerer: reg})
		stop := runLoop(t, l)
		waitUntil(t, "committed", func() bool { return src.committed() == 11 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if got.count() != 9 || got.seen[3] != 0 {
			t.Errorf("delivered %v", got.seen)
		}
		if v := testutil.ToFloat64(l.m.corrupt); v != 2 {
			t.Errorf("corrupt = %v, want 2", v)
		}
	})
}

// TestLoopCancelCommitsNothingUndelivered: on shutdown the attempt in
// flight is cancelled and its batch stays uncommitted, while the batches
// delivered before it are committed.
func TestLoopCancelCommitsNothingUndelivered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newMemSource(testRecords(20, 0)...)
		var cancelled atomic.Bool
		sink := funcSink(func(ctx context.Context, b *Batch) error {
			if b.Records[0].Offset < 10 {
				return nil
			}
			<-ctx.Done()
			cancelled.Store(true)
			return ctx.Err()
		})
		l := NewLoop(sink, src, LoopOptions{Name: "t", MaxRecords: 10})
		stop := runLoop(t, l)
		waitUntil(t, "first batch", func() bool { return src.committed() == 10 })
		synctest.Wait()
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if !cancelled.Load() {
			t.Error("attempt in flight was not cancelled")
		}
		if c := src.committed(); c != 10 {
			t.Errorf("committed %d, want 10", c)
		}
	})
}

func TestLoopCommitErrorStopsRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &failCommit{newMemSource(testRecords(3, 0)...)}
		l := NewLoop(funcSink(func(ctx context.Context, b *Batch) error { return nil }), src, LoopOptions{Name: "t"})
		err := l.Run(context.Background())
		if err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("Run = %v, want the commit error", err)
		}
	})
}

type failCommit struct{ *memSource }

// slowCommit is a source whose Commit takes a while, like a cursor file
// written with fsync.
type slowCommit struct {
	*memSource
	calls atomic.Int64
}

func (s *slowCommit) Commit(p int) error {
	s.calls.Add(1)
	time.Sleep(50 * time.Millisecond)
	return s.memSource.Commit(p)
}

// TestLoopCoalescesCommits: batches delivered while a commit runs are
// covered by the next single commit, so a slow Commit does not throttle
// delivery to one batch per commit.
func TestLoopCoalescesCommits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &slowCommit{memSource: newMemSource(testRecords(400, 0)...)}
		sink := funcSink(func(ctx context.Context, b *Batch) error { time.Sleep(5 * time.Millisecond); return nil })
		l := NewLoop(sink, src, LoopOptions{Name: "t", MaxRecords: 4, Concurrency: 4})
		stop := runLoop(t, l)
		waitUntil(t, "committed", func() bool { return src.committed() == 400 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if c := src.calls.Load(); c >= 100 {
			t.Errorf("%d commits for 100 batches; want them coalesced", c)
		}
	})
}

func (failCommit) Commit(int) error { return errors.New("disk full") }

// TestLoopDrain: Drain returns once everything is delivered, with and
// without a Lagger source, and gives up when its ctx expires.
func TestLoopDrain(t *testing.T) {
	tests := map[string]struct {
		lagger bool
		stuck  bool
	}{
		"lagger":         {lagger: true},
		"no lagger":      {lagger: false},
		"stuck sink":     {lagger: true, stuck: true},
		"stuck no lager": {stuck: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ms := newMemSource(testRecords(50, 0)...)
				var src Source[int] = ms
				if !tc.lagger {
					src = noLag{ms}
				}
				sink := funcSink(func(ctx context.Context, b *Batch) error {
					time.Sleep(100 * time.Millisecond)
					if tc.stuck {
						return &SendError{Kind: KindServer, Err: errors.New("503")}
					}
					return nil
				})
				l := NewLoop(sink, src, LoopOptions{Name: "t", MaxRecords: 7, Concurrency: 2})
				stop := runLoop(t, l)
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				err := l.Drain(ctx)
				if tc.stuck {
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("Drain = %v, want deadline exceeded", err)
					}
				} else if err != nil || ms.committed() != 50 {
					t.Errorf("Drain = %v with %d committed, want nil and 50", err, ms.committed())
				}
				if err := stop(); err != nil {
					t.Fatal(err)
				}
				if err := l.Drain(context.Background()); tc.stuck && !errors.Is(err, ErrStopped) {
					t.Errorf("Drain after Run = %v, want ErrStopped", err)
				}
			})
		})
	}
}

// TestLoopAuthStallAndLogs: an endpoint refusing the credentials raises
// auth_failing, the sink is reported stalled after StallTimeout, errors
// are logged at most once per interval, and recovery clears it all.
func TestLoopAuthStallAndLogs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newMemSource(testRecords(5, 0)...)
		var fixed atomic.Bool
		sink := funcSink(func(ctx context.Context, b *Batch) error {
			if !fixed.Load() {
				return &SendError{Kind: KindAuth, Err: errors.New("401 Unauthorized")}
			}
			return nil
		})
		var logs syncBuffer
		reg := prometheus.NewRegistry()
		l := NewLoop(sink, src, LoopOptions{Name: "t", BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second,
			BreakerFailures: -1, StallTimeout: 2 * time.Minute, Registerer: reg,
			Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		stop := runLoop(t, l)
		time.Sleep(time.Minute)
		st := l.Status()
		if !st.AuthFailing || st.Stalled || !strings.Contains(st.LastError, "401") {
			t.Errorf("status after 1m: %+v", st)
		}
		if v, _ := testutil.GatherAndCount(reg, "skiff_sink_auth_failing"); v != 1 {
			t.Errorf("auth_failing series = %d", v)
		}
		time.Sleep(2 * time.Minute)
		st = l.Status()
		if !st.Stalled {
			t.Errorf("not stalled after 3m: %+v", st)
		}
		if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP skiff_sink_auth_failing 1 while the destination answers 401, 403 or 404: credentials or URL are wrong (alert on it).
# TYPE skiff_sink_auth_failing gauge
skiff_sink_auth_failing{sink="t"} 1
# HELP skiff_sink_stalled 1 while records are outstanding and nothing was delivered for the stall timeout.
# TYPE skiff_sink_stalled gauge
skiff_sink_stalled{sink="t"} 1
`), "skiff_sink_auth_failing", "skiff_sink_stalled"); err != nil {
			t.Error(err)
		}
		// ~180 retries in 3 minutes, at most one line per 30s.
		if n := strings.Count(logs.String(), "credentials"); n < 2 || n > 7 {
			t.Errorf("%d error lines in 3 minutes:\n%s", n, logs.String())
		}
		fixed.Store(true)
		waitUntil(t, "delivered", func() bool { return src.committed() == 5 })
		st = l.Status()
		if st.AuthFailing || st.Stalled || st.OldestUndeliveredSeconds != 0 {
			t.Errorf("status after recovery: %+v", st)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestLoopLinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newMemSource(testRecords(3, 0)...)
		var sizes []int
		var mu sync.Mutex
		sink := funcSink(func(ctx context.Context, b *Batch) error {
			mu.Lock()
			sizes = append(sizes, len(b.Records))
			mu.Unlock()
			return nil
		})
		l := NewLoop(sink, src, LoopOptions{Name: "t", MaxRecords: 10, Linger: time.Second})
		stop := runLoop(t, l)
		time.Sleep(500 * time.Millisecond)
		src.push(testRecords(4, 0)...)
		waitUntil(t, "committed", func() bool { return src.committed() == 7 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if len(sizes) != 1 || sizes[0] != 7 {
			t.Errorf("batch sizes %v, want one batch of 7", sizes)
		}
	})
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// scribbleSource is a memSource that is a Releaser: it hands out copies of
// its data and overwrites a batch's Data when it is released, as a buffer
// cursor reusing the memory would, so that a batch released too early
// shows as garbage in a later Send.
type scribbleSource struct {
	*memSource
	mu       sync.Mutex
	out      map[*Entry[int]]bool // batches handed out and not released
	released int
	bad      []string // releases that were not of an outstanding batch
}

func (s *scribbleSource) Next(ctx context.Context, maxRecords, maxBytes int) ([]Entry[int], error) {
	es, err := s.memSource.Next(ctx, maxRecords, maxBytes)
	if err != nil {
		return nil, err
	}
	es = slices.Clone(es)
	for i := range es {
		es[i].Data = bytes.Clone(es[i].Data)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out == nil {
		s.out = map[*Entry[int]]bool{}
	}
	s.out[&es[0]] = true
	return es, nil
}

func (s *scribbleSource) Release(es []Entry[int]) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.out[&es[0]] {
		s.bad = append(s.bad, fmt.Sprintf("release of batch at %d not outstanding", es[0].Pos))
		return
	}
	delete(s.out, &es[0])
	s.released++
	for _, e := range es {
		for i := range e.Data {
			e.Data[i] = 0xff
		}
	}
}

// TestLoopReleasesDeliveredBatches: every batch Next returned is released
// exactly once, and only once it is delivered: a sink that fails attempts
// (so that batches are retried, several in flight) still sees intact
// records in every attempt, which fails if a batch is released before its
// last Send. Lingering batches (several Next calls each) are released too.
func TestLoopReleasesDeliveredBatches(t *testing.T) {
	for name, linger := range map[string]time.Duration{"no linger": 0, "linger": 50 * time.Millisecond} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const n = 2000
				src := &scribbleSource{memSource: newMemSource()}
				var mu sync.Mutex
				attempts := 0
				var seen offsets
				var corrupt []string
				sink := funcSink(func(ctx context.Context, b *Batch) error {
					time.Sleep(time.Millisecond) // a request in flight
					mu.Lock()
					attempts++
					fail := attempts%3 != 0
					mu.Unlock()
					for _, r := range b.Records {
						if !bytes.HasPrefix(r.Message, fmt.Appendf(nil, "line %d ", r.Offset)) {
							mu.Lock()
							corrupt = append(corrupt, fmt.Sprintf("offset %d: %q", r.Offset, r.Message))
							mu.Unlock()
						}
					}
					if fail {
						return &SendError{Kind: KindServer, Err: errors.New("500")}
					}
					seen.add(b)
					return nil
				})
				o := LoopOptions{Name: "t", MaxRecords: 37, Concurrency: 4, Linger: linger,
					BackoffMin: time.Millisecond, BackoffMax: time.Millisecond, BreakerFailures: -1}
				l := NewLoop(sink, src, o)
				stop := runLoop(t, l)
				for i := 0; i < n; i += 100 {
					src.push(testRecords(n, 20)[i : i+100]...)
					time.Sleep(10 * time.Millisecond)
				}
				waitUntil(t, "committed", func() bool { return src.committed() == n })
				if err := stop(); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				defer mu.Unlock()
				if len(corrupt) > 0 {
					t.Fatalf("a batch was released before it was delivered: %d corrupt records, first %s", len(corrupt), corrupt[0])
				}
				src.mu.Lock()
				defer src.mu.Unlock()
				if len(src.bad) > 0 || len(src.out) > 0 {
					t.Fatalf("%d bad releases (%v), %d batches never released", len(src.bad), src.bad, len(src.out))
				}
				if seen.count() != n {
					t.Fatalf("%d records delivered, want %d", seen.count(), n)
				}
			})
		})
	}
}

// TestLoopKeepsDetailOutOfStatus: what a destination said (SendError.Detail,
// often an echo of the records) shows in the log at debug level only, and
// never in Status or in the info-level lines.
func TestLoopKeepsDetailOutOfStatus(t *testing.T) {
	const logText = "user=alice card=4111-1111-1111-1111"
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		synctest.Test(t, func(t *testing.T) {
			src := newMemSource(testRecords(3, 0)...)
			var fixed atomic.Bool
			sink := funcSink(func(ctx context.Context, b *Batch) error {
				if !fixed.Load() {
					return &SendError{Kind: KindServer, Err: errors.New("http 500 Internal Server Error"), Detail: "could not index " + logText}
				}
				return nil
			})
			var logs syncBuffer
			l := NewLoop(sink, src, LoopOptions{Name: "t", BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second,
				BreakerFailures: -1, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: level}))})
			stop := runLoop(t, l)
			time.Sleep(5 * time.Second)
			st := l.Status()
			if !strings.Contains(st.LastError, "http 500") || strings.Contains(st.LastError, logText) {
				t.Errorf("status last_error = %q", st.LastError)
			}
			if got := strings.Contains(logs.String(), logText); got != (level == slog.LevelDebug) {
				t.Errorf("level %v: the detail in the log = %v:\n%s", level, got, logs.String())
			}
			fixed.Store(true)
			waitUntil(t, "delivered", func() bool { return src.committed() == 3 })
			if err := stop(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
