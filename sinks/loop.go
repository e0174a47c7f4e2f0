package sinks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/skiff-dev/skiff/internal/record"
	"github.com/skiff-dev/skiff/sinks/internal/loglimit"
)

// Entry is one record read from a Source: the record's binary form
// (record.Record.AppendBinary) and the source position just after it.
type Entry[P any] struct {
	Pos  P
	Data []byte
}

// Source is where a Loop reads records from: a buffer cursor, or a slice
// in tests. The Loop calls Next from one goroutine and Commit from any
// (never two at once), always with positions in increasing order.
//
// Next blocks until at least one record is available and returns at most
// maxRecords records of at most maxBytes Data bytes in total, except that
// a single record larger than maxBytes is returned alone. When ctx is done
// first it returns ctx's error and consumes nothing. The returned Data must
// stay valid until the records are committed.
//
// Commit records that every record up to and including pos was delivered.
type Source[P any] interface {
	Next(ctx context.Context, maxRecords, maxBytes int) ([]Entry[P], error)
	Commit(pos P) error
}

// Lagger is optionally implemented by a Source that knows its backlog.
// Lag is the number of records after the last committed position
// (including records Next returned but that are not committed yet). It
// must be safe to call concurrently with Next and Commit. With it, /status
// shows the backlog and Drain returns as soon as the sink is caught up.
type Lagger interface {
	Lag() int64
}

// Releaser is optionally implemented by a Source that can reuse the
// memory of the entries it returned. The Loop calls Release once for every
// slice Next returned, in the order Next returned them, as soon as the
// batch holding it is delivered (acknowledged or dead-lettered); it never
// releases a batch that may still be sent. Afterwards the Loop and the
// Sink use neither es nor the Data of its entries: a Sink must not keep
// any part of a record past the Send that delivered it.
type Releaser[P any] interface {
	Release(es []Entry[P])
}

// ErrStopped is returned by Drain when Run is not running any more and the
// sink is not caught up.
var ErrStopped = errors.New("delivery loop stopped")

// Defaults of LoopOptions' zero values.
const (
	DefaultMaxRecords            = 1000
	DefaultMaxBytes              = 1 << 20
	DefaultConcurrency           = 1
	DefaultBackoffMin            = 100 * time.Millisecond
	DefaultBackoffMax            = 4 * time.Second
	DefaultBackoffFirstMinuteMax = 1500 * time.Millisecond
	DefaultRetryAfterMax         = time.Minute
	DefaultBreakerFailures       = 5
	DefaultStallTimeout          = 5 * time.Minute
)

const (
	// drainIdle is how long Next must have been blocked, with nothing in
	// flight, for Drain to call a Source without Lag caught up.
	drainIdle = 200 * time.Millisecond
	// drainPoll is how often Drain checks whether the sink caught up.
	drainPoll = 20 * time.Millisecond
)

// LoopOptions configure a Loop. Zero values mean the defaults given.
type LoopOptions struct {
	// Name is the sink's name: the sink label of the metrics and the name
	// in logs and dead letters.
	Name string
	// MaxRecords and MaxBytes bound one batch (Entry.Data bytes); 0 means
	// DefaultMaxRecords and DefaultMaxBytes. A single larger record is
	// sent alone.
	MaxRecords, MaxBytes int
	// Linger is how long a batch that is not full waits for more records
	// before it is sent; 0 sends whatever Next returned at once.
	Linger time.Duration
	// Concurrency is the most batches read and not yet delivered (with
	// every batch before them), and so the most requests in flight; 0
	// means 1.
	Concurrency int
	// BackoffMin, BackoffMax and BackoffFirstMinuteMax bound the waits
	// between attempts while the destination fails (see Backoff); 0 means
	// the Default of each. BackoffMax is raised to BackoffMin, and
	// BackoffFirstMinuteMax is kept within them.
	BackoffMin, BackoffMax, BackoffFirstMinuteMax time.Duration
	// RetryAfterMax caps the pause a destination's Retry-After imposes; 0
	// means DefaultRetryAfterMax.
	RetryAfterMax time.Duration
	// BreakerFailures consecutive failed attempts (or one timed-out
	// attempt) open the circuit: one probe at a time until one succeeds.
	// 0 means DefaultBreakerFailures; negative never opens it.
	BreakerFailures int
	// StallTimeout: a sink with records outstanding that delivers nothing
	// for this long is reported stalled; 0 means DefaultStallTimeout.
	StallTimeout time.Duration
	// Registerer and Logger; nil means no metrics and no logs.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

func (o LoopOptions) withDefaults() LoopOptions {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxRecords, DefaultMaxRecords)
	def(&o.MaxBytes, DefaultMaxBytes)
	def(&o.Concurrency, DefaultConcurrency)
	defD(&o.BackoffMin, DefaultBackoffMin)
	defD(&o.BackoffMax, DefaultBackoffMax)
	o.BackoffMax = max(o.BackoffMax, o.BackoffMin)
	defD(&o.BackoffFirstMinuteMax, DefaultBackoffFirstMinuteMax)
	o.BackoffFirstMinuteMax = min(max(o.BackoffFirstMinuteMax, o.BackoffMin), o.BackoffMax)
	defD(&o.RetryAfterMax, DefaultRetryAfterMax)
	if o.BreakerFailures == 0 {
		o.BreakerFailures = DefaultBreakerFailures
	}
	defD(&o.StallTimeout, DefaultStallTimeout)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Loop is one sink's delivery loop. It reads batches from its Source,
// keeps up to Concurrency of them in flight, retries every failed attempt
// until it succeeds (there is no retry limit: only the buffer, when full,
// drops data), and commits the Source in order, past a batch only once it
// and every earlier batch were delivered.
//
// Retries follow one schedule for the whole sink (see breaker): capped,
// jittered backoff between attempts; a pause as long as the destination's
// Retry-After (up to RetryAfterMax); and, once the circuit is open, one
// attempt at a time, the probe, which carries a single record and has a
// short deadline. The first success closes the circuit and every batch
// goes at once, at full concurrency. Ordinary attempts get a deadline of
// a few times the destination's recent answer time, so one that stops
// answering is noticed in seconds.
//
// Records that do not decode are skipped (counted, never sent). Records a
// sink dead-letters count as delivered.
//
// Run is called once; Drain and Status may be called concurrently with it.
type Loop[P any] struct {
	sink Sink
	src  Source[P]
	o    LoopOptions
	log  *slog.Logger
	m    loopMetrics

	// slots holds one token per batch in the queue, so at most
	// Concurrency batches are outstanding and memory stays bounded while
	// the head batch is being retried.
	slots chan struct{}
	// commitMu is held by the goroutine committing (see commit); only
	// ever taken with TryLock.
	commitMu sync.Mutex

	mu sync.Mutex
	// queue holds the outstanding batches in read order; a batch leaves it
	// (from the head only) when it and all before it are done.
	queue         []*pending[P]
	brk           breaker
	lat           latency
	pauseUntil    time.Time     // no attempt starts before this (Retry-After)
	changed       chan struct{} // closed and replaced when brk or pauseUntil change
	inFlight      int
	lastErr       error
	lastErrAt     time.Time
	lastDelivery  time.Time
	progress      time.Time // last delivery of the queue head, or when the queue became non-empty
	failing       bool      // the last attempt failed (for the recovery log line)
	authFailing   bool
	configFailing bool
	errLog        loglimit.Limiter
	dropLog       loglimit.Limiter
	running       bool
	stopped       bool
	waitingSince  time.Time // Next is blocked with no records held since then; zero otherwise
	// toCommit is the position after the last batch of the delivered
	// prefix of the queue, not yet committed (valid when hasToCommit).
	// Commits are one at a time (commitMu), so they are in order, and one commit
	// covers every batch delivered while the previous one ran.
	toCommit    P
	hasToCommit bool
	freeRecs    [][]record.Record // delivered batches' records, for reuse
	cancel      context.CancelFunc
	fatal       error
}

// pending is one batch read from the Source.
type pending[P any] struct {
	pos    P               // position after the batch's last entry
	recs   []record.Record // decoded records; may be empty (all corrupt)
	raw    [][]Entry[P]    // what Next returned for it, to release
	bytes  int             // message bytes, for the delivered-bytes metric
	oldest time.Time       // earliest Collected in recs
	done   bool            // delivered (guarded by Loop.mu)
}

// NewLoop returns a Loop that delivers what src holds to sink. It starts
// nothing; call Run.
func NewLoop[P any](sink Sink, src Source[P], o LoopOptions) *Loop[P] {
	o = o.withDefaults()
	l := &Loop[P]{
		sink:  sink,
		src:   src,
		o:     o,
		log:   o.Logger.With("sink", o.Name),
		slots: make(chan struct{}, o.Concurrency),
		brk: breaker{threshold: o.BreakerFailures,
			backoff: Backoff{Min: o.BackoffMin, Max: o.BackoffMax, FirstMinuteMax: o.BackoffFirstMinuteMax}},
		changed: make(chan struct{}),
		errLog:  loglimit.Limiter{Every: loglimit.Every},
		dropLog: loglimit.Limiter{Every: loglimit.Every},
	}
	l.m = newLoopMetrics(o.Name, l.gauges)
	if err := l.m.register(o.Registerer); err != nil {
		l.log.Error("register sink metrics", "err", err)
	}
	return l
}

// Run delivers until ctx is done or a Source operation fails. Attempts in
// flight when ctx is done are cancelled and their batches stay
// uncommitted (they are sent again after a restart: at-least-once);
// batches already delivered are still committed. Run returns nil when ctx
// is done, or the Source's error. Call it once.
func (l *Loop[P]) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l.mu.Lock()
	if l.running || l.stopped {
		l.mu.Unlock()
		return errors.New("delivery loop: Run called twice")
	}
	l.running, l.cancel = true, cancel
	l.mu.Unlock()

	var wg sync.WaitGroup
	err := l.read(ctx, &wg)
	cancel()
	wg.Wait()
	// Batches delivered before the end are committed: fewer duplicates
	// after the restart.
	l.commit()

	l.mu.Lock()
	defer l.mu.Unlock()
	l.running, l.stopped = false, true
	if l.fatal != nil {
		return l.fatal
	}
	return err
}

// commit commits the delivered position, if any. The goroutine that
// delivered a batch calls it right after (a commit is a write to the page
// cache, not an fsync: a goroutine of its own is not worth the hand-off),
// and Run at the end. One goroutine commits at a time, so commits are in
// order; one that finds another committing leaves its position to it: the
// committer checks for a newer position before it lets go (under mu, so
// one set after that check is committed by the goroutine that set it). A
// failure is fatal: Run stops and returns it.
func (l *Loop[P]) commit() {
	if !l.commitMu.TryLock() {
		return
	}
	for {
		l.mu.Lock()
		if !l.hasToCommit || l.fatal != nil {
			l.commitMu.Unlock()
			l.mu.Unlock()
			return
		}
		pos := l.toCommit
		l.hasToCommit = false
		l.mu.Unlock()
		if err := l.src.Commit(pos); err != nil {
			l.mu.Lock()
			if l.fatal == nil {
				l.fatal = fmt.Errorf("commit sink %s: %w", l.o.Name, err)
			}
			cancel := l.cancel
			l.commitMu.Unlock()
			l.mu.Unlock()
			cancel()
			return
		}
	}
}

// read is Run's reading side: it takes a slot, reads a batch and starts
// its delivery, until ctx is done.
func (l *Loop[P]) read(ctx context.Context, wg *sync.WaitGroup) error {
	for {
		select {
		case l.slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		b, err := l.nextBatch(ctx)
		if err != nil {
			<-l.slots
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read for sink %s: %w", l.o.Name, err)
		}
		l.mu.Lock()
		if len(l.queue) == 0 {
			l.progress = time.Now()
		}
		l.queue = append(l.queue, b)
		l.mu.Unlock()
		wg.Go(func() { l.deliver(ctx, b) })
	}
}

// nextBatch reads one batch, lingering for more records if so configured.
func (l *Loop[P]) nextBatch(ctx context.Context) (*pending[P], error) {
	l.setWaiting(true)
	es, err := l.src.Next(ctx, l.o.MaxRecords, l.o.MaxBytes)
	l.setWaiting(false)
	if err != nil {
		return nil, err
	}
	b := &pending[P]{recs: l.takeRecs(len(es))}
	n, size := l.add(b, es)
	if l.o.Linger > 0 && n < l.o.MaxRecords && size < l.o.MaxBytes {
		lctx, cancel := context.WithTimeout(ctx, l.o.Linger)
		for n < l.o.MaxRecords && size < l.o.MaxBytes {
			es, err := l.src.Next(lctx, l.o.MaxRecords-n, l.o.MaxBytes-size)
			if err != nil {
				if lctx.Err() == nil || ctx.Err() != nil {
					cancel()
					return nil, err
				}
				break // linger over
			}
			dn, ds := l.add(b, es)
			n, size = n+dn, size+ds
		}
		cancel()
	}
	return b, nil
}

// add decodes es into b and returns the entries and Data bytes added.
func (l *Loop[P]) add(b *pending[P], es []Entry[P]) (n, size int) {
	if _, ok := l.src.(Releaser[P]); ok {
		b.raw = append(b.raw, es)
	}
	for _, e := range es {
		size += len(e.Data)
		b.pos = e.Pos
		var r record.Record
		if err := r.Decode(e.Data); err != nil {
			l.m.corrupt.Inc()
			l.mu.Lock()
			ok, suppressed := l.dropLog.Allow(time.Now())
			l.mu.Unlock()
			if ok {
				l.log.Error("skip undecodable record", "err", err, "bytes", len(e.Data), "skipped_since_last_log", suppressed)
			}
			continue
		}
		if b.oldest.IsZero() || r.Collected.Before(b.oldest) {
			b.oldest = r.Collected
		}
		b.bytes += len(r.Message)
		b.recs = append(b.recs, r)
	}
	return len(es), size
}

func (l *Loop[P]) setWaiting(w bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w {
		l.waitingSince = time.Now()
	} else {
		l.waitingSince = time.Time{}
	}
}

// deliver sends b until it succeeds or ctx is done, then finishes it.
func (l *Loop[P]) deliver(ctx context.Context, b *pending[P]) {
	if len(b.recs) > 0 {
		batch := &Batch{Records: b.recs}
		for attempt := 0; len(batch.Records) > 0; attempt++ {
			a, err := l.admit(ctx)
			if err != nil {
				return
			}
			if !l.try(ctx, batch, a, attempt) {
				return
			}
		}
		l.m.latency.observeSince(time.Now(), b.recs)
		l.m.records.Add(float64(len(b.recs)))
		l.m.bytes.Add(float64(b.bytes))
	}
	l.finish(b)
}

// admission is what admit allows an attempt.
type admission struct {
	probe   bool          // the probe: one record, alone in flight
	timeout time.Duration // the loop's own deadline; 0: the sink's only
}

// try makes one attempt admitted as a, leaving in batch the records still
// undelivered. It reports false when ctx is done.
func (l *Loop[P]) try(ctx context.Context, batch *Batch, a admission, attempt int) bool {
	send := batch
	if a.probe {
		// A single record: cheap for an endpoint that is recovering, and
		// quick to answer within the probe's short deadline.
		send = &Batch{Records: batch.Records[:1:1]}
	}
	actx, cancel := ctx, context.CancelFunc(func() {})
	if a.timeout > 0 {
		actx, cancel = context.WithTimeout(ctx, a.timeout)
	}
	start := time.Now()
	l.setInFlight(+1)
	err := l.sink.Send(actx, send)
	l.setInFlight(-1)
	expired := actx.Err() != nil && ctx.Err() == nil
	cancel()
	switch {
	case a.probe && (err == nil || len(send.Records) == 0):
		batch.Records = batch.Records[1:]
	case err == nil:
		batch.Records = nil
	}
	if err == nil {
		l.succeeded(start, a)
		return true
	}
	if ctx.Err() != nil {
		l.mu.Lock()
		if l.brk.abandon(a.probe) {
			l.signal()
		}
		l.mu.Unlock()
		return false
	}
	if expired {
		err = &SendError{Kind: KindTimeout, Err: fmt.Errorf("no answer within %v: %w", a.timeout, err)}
	}
	l.failed(err, start, a, expired, attempt)
	l.m.retries.Inc()
	return true
}

// admit blocks until an attempt may start: the sink is not paused by a
// Retry-After and the schedule lets it through.
func (l *Loop[P]) admit(ctx context.Context) (admission, error) {
	for {
		l.mu.Lock()
		now := time.Now()
		var wait time.Duration
		if now.Before(l.pauseUntil) {
			wait = l.pauseUntil.Sub(now)
		} else {
			ok, probe, w := l.brk.allow(now)
			if ok {
				a := admission{probe: probe, timeout: l.lat.timeout(now)}
				if probe {
					a.timeout = l.brk.probeTimeout(now)
				}
				l.mu.Unlock()
				return a, nil
			}
			wait = w
		}
		ch := l.changed
		l.mu.Unlock()
		var timeout <-chan time.Time
		var t *time.Timer
		if wait > 0 {
			t = time.NewTimer(wait)
			timeout = t.C
		}
		select {
		case <-ch:
		case <-timeout:
		case <-ctx.Done():
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return admission{}, ctx.Err()
		}
	}
}

// signal wakes the attempts waiting in admit. Callers hold mu.
func (l *Loop[P]) signal() {
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *Loop[P]) setInFlight(d int) {
	l.mu.Lock()
	l.inFlight += d
	l.mu.Unlock()
}

func (l *Loop[P]) succeeded(start time.Time, a admission) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if !a.probe {
		l.lat.observe(now, now.Sub(start))
	}
	if l.brk.state != CircuitClosed {
		l.log.Info("circuit closed: the destination accepts data again", "failing_for", now.Sub(l.brk.since).Round(time.Millisecond))
	}
	if l.brk.failures > 0 {
		l.signal()
	}
	l.brk.success()
	if l.failing {
		l.log.Info("delivering again", "errors_since_last_log", l.errLog.Suppressed())
		l.errLog = loglimit.Limiter{Every: loglimit.Every}
	}
	l.failing, l.authFailing, l.configFailing = false, false, false
	l.lastDelivery = now
}

// failed records a failed attempt that started at start; expired: it ran
// out of the loop's own deadline.
func (l *Loop[P]) failed(err error, start time.Time, a admission, expired bool, attempt int) {
	kind := kindOf(err)
	l.m.errors.WithLabelValues(kind).Inc()
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	l.lastErr, l.lastErrAt, l.failing = err, now, true
	if expired && !a.probe {
		l.lat.timedOut(now, a.timeout)
	}
	before := l.brk.state
	l.brk.failure(start, now, a.probe, kind == KindTimeout)
	if before == CircuitClosed && l.brk.state == CircuitOpen {
		l.log.Warn("circuit open: one probe at a time until the destination answers", "err", err)
	}
	l.signal()
	var se *SendError
	if errors.As(err, &se) && se.RetryAfter > 0 {
		// A little jitter, so that the agents a server throttled together
		// do not all come back in the same instant.
		ra := min(se.RetryAfter, l.o.RetryAfterMax)
		ra += rand.N(ra/10 + 1)
		if until := now.Add(ra); until.After(l.pauseUntil) {
			l.pauseUntil = until
		}
	}
	switch kind {
	case KindAuth:
		l.authFailing = true
	case KindConfig:
		l.configFailing = true
	}
	if ok, suppressed := l.errLog.Allow(now); ok {
		args := []any{"kind", kind, "attempt", attempt + 1, "err", err, "errors_since_last_log", suppressed}
		if se != nil && se.RetryAfter > 0 {
			args = append(args, "retry_after", se.RetryAfter)
		}
		switch kind {
		case KindAuth:
			l.log.Error("destination refuses our credentials or URL; data is kept and retried", args...)
		case KindConfig:
			l.log.Error("destination refuses every record for the same reason, a configuration error; data is kept and retried", args...)
		default:
			l.log.Warn("delivery failed; retrying", args...)
		}
		if se != nil && se.Detail != "" {
			// Possibly log content: at debug level only (docs/HTTP.md).
			l.log.Debug("the destination's answer", "kind", kind, "detail", se.Detail)
		}
	}
}

// finish marks b delivered, takes the delivered prefix off the queue,
// frees its slots and commits its end position.
func (l *Loop[P]) finish(b *pending[P]) {
	l.mu.Lock()
	b.done = true
	n := 0
	for n < len(l.queue) && l.queue[n].done {
		n++
	}
	if n == 0 {
		l.mu.Unlock()
		return
	}
	l.toCommit, l.hasToCommit = l.queue[n-1].pos, true
	var few [4]*pending[P] // usually one batch: no allocation
	delivered := append(few[:0], l.queue[:n]...)
	rest := copy(l.queue, l.queue[n:])
	clear(l.queue[rest:])
	l.queue = l.queue[:rest]
	l.progress = time.Now()
	l.mu.Unlock()
	for range n {
		<-l.slots
	}
	l.commit()
	l.recycle(delivered)
}

// maxFreeRecs bounds the decoded-record slices kept for reuse.
const maxFreeRecs = 4

// recycle hands the memory of delivered batches back: their entries to
// the Source (when it is a Releaser) and their decoded records to the
// Loop's own free list. Their positions are already committed.
func (l *Loop[P]) recycle(done []*pending[P]) {
	rel, _ := l.src.(Releaser[P])
	for _, b := range done {
		if rel != nil {
			for _, es := range b.raw {
				rel.Release(es)
			}
		}
		clear(b.recs[:cap(b.recs)]) // do not pin released Data through them
		l.mu.Lock()
		if len(l.freeRecs) < maxFreeRecs {
			l.freeRecs = append(l.freeRecs, b.recs[:0])
		}
		l.mu.Unlock()
		b.raw, b.recs = nil, nil
	}
}

// takeRecs returns an empty slice for about n decoded records, reusing a
// delivered batch's when there is one.
func (l *Loop[P]) takeRecs(n int) []record.Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	if k := len(l.freeRecs); k > 0 {
		r := l.freeRecs[k-1]
		l.freeRecs = l.freeRecs[:k-1]
		return r
	}
	return make([]record.Record, 0, n)
}

// Drain blocks until the sink is caught up: nothing outstanding, and the
// Source has nothing more (Lag is 0, or, without Lagger, Next has been
// waiting for a while). It is meant for shutdown, once nothing appends to
// the Source any more; Run must be running. It returns ctx's error if ctx
// is done first, or ErrStopped if Run has stopped. Drain does not stop
// Run: cancel Run's ctx afterwards. Safe to call concurrently with Run.
func (l *Loop[P]) Drain(ctx context.Context) error {
	t := time.NewTicker(drainPoll)
	defer t.Stop()
	for {
		if ok, err := l.caughtUp(); ok || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (l *Loop[P]) caughtUp() (bool, error) {
	l.mu.Lock()
	empty, stopped, waiting := len(l.queue) == 0 && !l.hasToCommit, l.stopped, l.waitingSince
	l.mu.Unlock()
	lag, known := l.lag()
	switch {
	case empty && known:
		if lag == 0 {
			return true, nil
		}
	case empty && !waiting.IsZero() && time.Since(waiting) >= drainIdle:
		return true, nil
	}
	if stopped {
		return false, ErrStopped
	}
	return false, nil
}

func (l *Loop[P]) lag() (int64, bool) {
	if lg, ok := l.src.(Lagger); ok {
		return lg.Lag(), true
	}
	return 0, false
}

// LoopStatus is a sink's delivery state, for /status and readiness.
type LoopStatus struct {
	Sink    string `json:"sink"`
	Running bool   `json:"running"`
	// Circuit is closed, half-open or open.
	Circuit string `json:"circuit"`
	// InFlight is the number of requests being sent; Outstanding the
	// batches read and not yet committed.
	InFlight    int       `json:"in_flight"`
	Outstanding int       `json:"outstanding_batches"`
	PausedUntil time.Time `json:"paused_until,omitzero"`
	// Backlog is the Source's Lag, when BacklogKnown.
	Backlog      int64 `json:"backlog_records"`
	BacklogKnown bool  `json:"backlog_known"`
	// OldestUndeliveredSeconds is the age of the oldest record read and
	// not yet delivered.
	OldestUndeliveredSeconds float64   `json:"oldest_undelivered_age_seconds"`
	LastDelivery             time.Time `json:"last_delivery,omitzero"`
	LastError                string    `json:"last_error,omitempty"`
	LastErrorAt              time.Time `json:"last_error_at,omitzero"`
	// AuthFailing: the last attempt was refused as unauthorised or not
	// found (configuration, not data).
	AuthFailing bool `json:"auth_failing"`
	// ConfigFailing: the last attempt had every record refused for the
	// same reason (configuration, not data).
	ConfigFailing bool `json:"config_failing"`
	// NextAttempt is when the next attempt may start, while the
	// destination fails (backoff or Retry-After).
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// Stalled: records are outstanding and none was delivered for
	// StallTimeout.
	Stalled bool `json:"stalled"`
}

// Status returns the loop's current state. Safe to call concurrently.
func (l *Loop[P]) Status() LoopStatus {
	lag, known := l.lag()
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	s := LoopStatus{
		Sink:                     l.o.Name,
		Running:                  l.running,
		Circuit:                  l.brk.state.String(),
		InFlight:                 l.inFlight,
		Outstanding:              len(l.queue),
		Backlog:                  lag,
		BacklogKnown:             known,
		OldestUndeliveredSeconds: l.oldestAge(now).Seconds(),
		LastDelivery:             l.lastDelivery,
		LastErrorAt:              l.lastErrAt,
		AuthFailing:              l.authFailing,
		ConfigFailing:            l.configFailing,
		Stalled:                  l.stalled(now),
	}
	if now.Before(l.pauseUntil) {
		s.PausedUntil = l.pauseUntil
	}
	next := l.brk.next
	if l.pauseUntil.After(next) {
		next = l.pauseUntil
	}
	if now.Before(next) {
		s.NextAttempt = next
	}
	if l.lastErr != nil {
		s.LastError = l.lastErr.Error()
	}
	return s
}

// oldestAge is the age of the oldest outstanding record. Callers hold mu.
func (l *Loop[P]) oldestAge(now time.Time) time.Duration {
	var oldest time.Time
	for _, b := range l.queue {
		if !b.done && !b.oldest.IsZero() && (oldest.IsZero() || b.oldest.Before(oldest)) {
			oldest = b.oldest
		}
	}
	if oldest.IsZero() {
		return 0
	}
	return max(now.Sub(oldest), 0)
}

// stalled reports a backlog with no progress for StallTimeout. Callers
// hold mu.
func (l *Loop[P]) stalled(now time.Time) bool {
	return len(l.queue) > 0 && now.Sub(l.progress) >= l.o.StallTimeout
}

// gauges samples the state-derived gauges for the metrics.
func (l *Loop[P]) gauges() gaugeValues {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	return gaugeValues{
		inFlight: float64(l.inFlight),
		circuit:  float64(l.brk.state),
		oldest:   l.oldestAge(now).Seconds(),
		auth:     b2f(l.authFailing),
		config:   b2f(l.configFailing),
		stalled:  b2f(l.stalled(now)),
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
