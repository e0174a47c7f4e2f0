package tailer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// maxPollInterval bounds how long a write waits to be noticed without
	// inotify, and how often open files are checked for truncation,
	// deletion, idleness and a pending multiline timeout.
	maxPollInterval = 250 * time.Millisecond
	// goneQuiet is how long a deleted file must sit at EOF without growing
	// before it is released, unless a successor file shows the writer has
	// moved on.
	goneQuiet = time.Second
	// finishTimeout bounds the final reads and appends on shutdown, which
	// block while the buffer is full.
	finishTimeout = 5 * time.Second
	// minEventScanGap spaces rescans caused by create/rename/remove events,
	// so a directory churning with other files cannot keep the loop
	// walking; the poll tick picks up a deferred rescan.
	minEventScanGap = 50 * time.Millisecond
)

// Tailer follows the files matching Options.Paths and appends their lines
// to an Appender. Create it with New and run it with Run; WaitQuiet may be
// called from another goroutine while Run runs.
type Tailer struct {
	o     Options
	app   Appender
	log   *slog.Logger
	m     *metrics
	match *matcher
	poll  time.Duration

	running atomic.Bool

	// Owned by the Run goroutine.
	files     map[fileKey]*follower // every followed identity; written under filesMu
	byPath    map[string]*follower  // current path of each follower, for events
	saved     map[fileKey]ckEntry   // loaded checkpoints not yet matched to a file
	replayed  map[uint64]resumeAt   // by Source: where the buffer's last record of a file ends
	problems  map[string]string     // paths already logged as unusable, and why
	w         *watch                // nil without inotify
	buf       []byte                // shared read buffer: minReadBuf, grown for long lines (growBuf)
	batch     batch
	now       time.Time // collection time of the lines being emitted
	needScan  bool
	lastScan  time.Time
	fpBuf     []byte      // scratch for fingerprint checks
	redactBuf []byte      // scratch for a redacted message (Options.Filter)
	checks    []*follower // scratch: files due for their checks in a pass
	polled    bool        // a poll tick marked every follower since the last pass
	ckDirty   bool        // a checkpoint changed since the last write
	ckFailing bool        // the last checkpoint write failed
	ckLogged  time.Time   // when a checkpoint failure was last logged
	initialed bool        // the first scan is done

	filesMu sync.Mutex // guards writes to files and the janitor's reads of it

	// appendSince is when the Append in progress began (unix ns), 0 when
	// none: a loop inside Append is waiting, not wedged.
	appendSince atomic.Int64

	evMu sync.Mutex
	ev   events
	wake chan struct{} // capacity 1: "events are waiting"

	quietMu  sync.Mutex
	busy     bool      // some file was not at EOF after the last pass
	lastGrow time.Time // when a file last grew
	lastPass time.Time // when the last full poll pass ended
}

// New checks o and returns a Tailer. It starts nothing and touches no
// file; Run does.
func New(o Options, app Appender) (*Tailer, error) {
	if app == nil {
		return nil, errors.New("new tailer: nil appender")
	}
	o, err := o.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("new tailer: %w", err)
	}
	mt, err := newMatcher(o.Paths, o.Exclude)
	if err != nil {
		return nil, fmt.Errorf("new tailer: %w", err)
	}
	mt.follow = o.FollowSymlinks
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("new tailer: %w", err)
	}
	for _, p := range mt.patterns {
		m.lag.WithLabelValues(p.glob).Set(0)
	}
	t := &Tailer{
		o:        o,
		app:      app,
		log:      o.Logger,
		m:        m,
		match:    mt,
		poll:     min(maxPollInterval, o.ScanInterval),
		files:    map[fileKey]*follower{},
		byPath:   map[string]*follower{},
		problems: map[string]string{},
		buf:      make([]byte, min(minReadBuf, maxReadBuf(o.MaxLineBytes))),
		fpBuf:    make([]byte, fpLen),
		ev:       events{paths: map[string]struct{}{}},
		wake:     make(chan struct{}, 1),
		busy:     true,
	}
	return t, nil
}

// Run follows the files until ctx is done, then ships the unterminated
// last lines of open files, calls Appender.Sync and writes the final
// checkpoints. It returns nil after a clean stop, or the Append error that
// stopped it (a failed Sync or checkpoint write is logged, counted and
// retried, and only costs repeated lines after a restart). It must be
// called once.
func (t *Tailer) Run(ctx context.Context) error {
	if !t.running.CompareAndSwap(false, true) {
		return errors.New("tailer: run called twice")
	}
	ck, err := loadCheckpoints(t.o.DataDir)
	if err != nil {
		// A checkpoint that cannot be trusted costs repeated lines, not a
		// refusal to start.
		t.log.Error("ignoring unreadable checkpoints; files are read again from their start", "err", err)
		t.m.errors.WithLabelValues("checkpoint").Inc()
	}
	t.saved = make(map[fileKey]ckEntry, len(ck.Files))
	for _, e := range ck.Files {
		t.saved[fileKey{e.Dev, e.Ino}] = e
	}
	if err := t.replay(ctx, ck.Mark); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Without the replay lines since the checkpoint are read again:
		// duplicates, never loss.
		t.log.Warn("cannot replay the buffer after the last checkpoint; lines since then will repeat", "err", err)
		t.m.errors.WithLabelValues("replay").Inc()
	}

	t.startWatcher()
	bg, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if t.w != nil {
		w := t.w.w
		wg.Go(func() { t.pump(bg, w) })
	}
	if br, ok := t.app.(BlockReporter); ok {
		wg.Go(func() { t.janitor(bg, br) })
	}

	loopErr := t.loop(ctx)
	stop()
	if t.w != nil {
		if err := t.w.w.Close(); err != nil {
			t.log.Debug("close watcher", "err", err)
		}
	}
	wg.Wait()
	finErr := t.finish(ctx)
	return errors.Join(loopErr, finErr)
}

func (t *Tailer) loop(ctx context.Context) error {
	t.rescan()
	t.initialed = true
	pollT := time.NewTicker(t.poll)
	defer pollT.Stop()
	scanT := time.NewTicker(t.o.ScanInterval)
	defer scanT.Stop()
	ckT := time.NewTicker(t.o.CheckpointInterval)
	defer ckT.Stop()
	for {
		if ctx.Err() != nil {
			return nil
		}
		ev := t.takeEvents()
		if ev.overflow && t.w != nil {
			t.fallback("inotify queue overflow", errors.New("events were lost"))
		}
		if ev.scan || t.needScan {
			if time.Since(t.lastScan) >= minEventScanGap {
				t.rescan()
			} else {
				t.needScan = true
			}
		}
		for p := range ev.paths {
			if f := t.byPath[p]; f != nil {
				f.dirty = true
			}
		}
		if ev.all {
			for _, f := range t.files {
				if f.isOpen() {
					f.dirty = true
				}
			}
		}
		busy, err := t.readPass(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		t.setBusy(busy)
		if busy {
			// Serve timers without waiting, then read on.
			select {
			case <-pollT.C:
				t.markAll()
			case <-scanT.C:
				t.needScan = true
			case <-ckT.C:
				t.checkpoint()
			default:
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.wake:
		case <-pollT.C:
			t.markAll()
		case <-scanT.C:
			t.needScan = true
		case <-ckT.C:
			t.checkpoint()
		}
	}
}

// markAll schedules every follower for a read and the poll checks.
func (t *Tailer) markAll() {
	t.polled = true
	for _, f := range t.files {
		f.dirty, f.check = true, true
	}
}

// readPass processes every dirty follower once and reports whether any
// still has bytes to read.
func (t *Tailer) readPass(ctx context.Context) (bool, error) {
	busy := false
	polled := t.polled
	t.polled = false
	checks := t.checks[:0]
	for _, f := range t.files {
		if !f.dirty {
			continue
		}
		more, eof, err := t.process(ctx, f)
		if err != nil {
			return false, err
		}
		busy = busy || more
		if eof && f.check {
			checks = append(checks, f)
		}
	}
	// One append for what the pass read from every file, before the
	// checks, which may release or truncate a file.
	if err := t.flush(ctx); err != nil {
		return false, err
	}
	for _, f := range checks {
		f.check = false
		if err := t.checkAtEOF(ctx, f); err != nil {
			if err := t.fileErr(ctx, f, err); err != nil {
				return false, err
			}
		}
	}
	clear(checks)
	t.checks = checks[:0]
	if polled {
		t.updateGauges()
		t.quietMu.Lock()
		t.lastPass = time.Now()
		t.quietMu.Unlock()
	}
	return busy, nil
}

// process reads f. It reports whether f has more to read, and whether it
// read f to EOF (then readPass runs its checks, if due).
func (t *Tailer) process(ctx context.Context, f *follower) (more, eof bool, err error) {
	f.mu.Lock()
	released := f.released
	f.mu.Unlock()
	if released {
		t.forget(f)
		return false, false, nil
	}
	if !f.isOpen() {
		// Closed for inactivity: an event or a poll asks whether it changed.
		f.dirty, f.check = false, false
		t.checkClosed(f)
		return false, false, nil
	}
	if err := t.checkTruncation(ctx, f); err != nil {
		return false, false, t.fileErr(ctx, f, err)
	}
	// Nothing past what was read before (at most an incomplete last line):
	// skip the read, which makes an idle file cost one fstat per poll.
	if f.size > f.seen {
		eof, err := t.readChecked(ctx, f, f.size)
		if err != nil {
			return false, false, t.fileErr(ctx, f, err)
		}
		if !eof {
			return true, false, nil
		}
	}
	f.dirty = false
	return false, true, nil
}

// fileErr turns an error met while handling f into the loop's error when
// it is fatal (Append failed, ctx done), and otherwise logs it, counts it
// and lets go of the file.
func (t *Tailer) fileErr(ctx context.Context, f *follower, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ae *appendError
	if errors.As(err, &ae) {
		return err
	}
	if !errors.Is(err, errReleased) {
		t.log.Error("stop following file", "path", f.path, "err", err)
		t.m.errors.WithLabelValues("read").Inc()
	}
	// What was read before the file went away is shipped all the same.
	if ferr := t.flush(ctx); ferr != nil {
		return ferr
	}
	t.forget(f)
	return nil
}

// stampSettle is how old a file's modification and change times must be
// before an unchanged size and unchanged times are trusted to mean
// unchanged contents: file times come from the kernel's coarse clock
// (one tick, 1 to 10 ms), so a rewrite within the same tick as the last
// write can leave them as they were. Ten ticks of the coarsest clock;
// a file system with coarser times (1 s on ext3, 2 s on FAT) can hide a
// same-size rewrite that follows the last write within its granularity.
const stampSettle = 100 * time.Millisecond

// checkTruncation restarts f at 0, as a new generation, when the file
// shrank below the read position, its first bytes changed (copytruncate,
// or truncate and rewrite), or it was written to without growing and the
// bytes before the read position changed (a truncate and rewrite to the
// same size). It runs before every read so that a truncated file's new
// bytes are never read at the old offset. An idle file costs one fstat.
func (t *Tailer) checkTruncation(ctx context.Context, f *follower) error {
	st, err := f.stat()
	if err != nil {
		return err
	}
	size := st.Size()
	now := time.Now()
	if size > f.size {
		f.lastGrowth = now
	}
	mt, ct := stampOf(st)
	grew, stamped := size != f.size, mt != f.mtime || ct != f.ctime
	settled := f.settled
	defer func() {
		f.size, f.mtime, f.ctime = size, mt, ct
		f.settled = now.Sub(time.Unix(0, max(mt, ct))) >= stampSettle
	}()
	if size < f.off {
		return t.truncated(ctx, f, size, "shrank below the read position")
	}
	if !grew && !stamped && int64(len(f.fp)) >= min(size, fpLen) {
		if settled {
			return nil // unchanged, and the fingerprint already covers the head
		}
		// The times are too fresh to tell a rewrite within the same clock
		// tick: the guard alone, one small read, does.
		return t.checkGuard(ctx, f, size)
	}
	n, err := f.readAt(t.fpBuf[:min(size, fpLen)], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	head := t.fpBuf[:n]
	if !fpMatch(f.fp, head) {
		return t.truncated(ctx, f, size, "first bytes changed")
	}
	if len(head) > len(f.fp) {
		f.fp = append(f.fp[:0:0], head...)
	}
	if !grew {
		// Written to without growing: the bytes before the read position
		// tell a rewrite to the same size. (A file that grew has them
		// checked by the read itself, readChecked.)
		return t.checkGuard(ctx, f, size)
	}
	return nil
}

// checkGuard restarts f as a new generation when it no longer holds the
// bytes read before its read position.
func (t *Tailer) checkGuard(ctx context.Context, f *follower, size int64) error {
	ok, err := f.guardHolds(size, t.fpBuf)
	if err != nil {
		return err
	}
	if !ok {
		return t.truncated(ctx, f, size, "rewritten to the same size")
	}
	return nil
}

// readChecked is readFile, restarting f as a new generation when the
// bytes before its read position changed (the file was truncated and
// rewritten to at least its old size between two checks).
func (t *Tailer) readChecked(ctx context.Context, f *follower, size int64) (bool, error) {
	eof, err := t.readFile(ctx, f, size)
	if errors.Is(err, errRewritten) {
		return false, t.truncated(ctx, f, f.size, "the bytes before the read position changed")
	}
	return eof, err
}

func (t *Tailer) truncated(ctx context.Context, f *follower, size int64, why string) error {
	// What was read of the old contents ships first, under the old Source.
	if err := t.flushMultiline(ctx, f); err != nil {
		return err
	}
	if err := t.flush(ctx); err != nil {
		return err
	}
	t.log.Warn("file truncated; reading it again from the start", "path", f.path, "why", why,
		"old_offset", f.off, "size", size)
	t.m.truncations.Inc()
	t.recoverFromCopy(lostTail{dir: filepath.Dir(f.path), key: f.key, fp: f.fp, off: f.off,
		source: f.sourceFor(), inLong: f.inLong, pattern: f.pattern,
		guard: bytes.Clone(f.guard), guardAt: f.guardAt})
	f.setOff(0)
	f.committed, f.committedInLong, f.inLong = 0, false, false
	f.seen = 0
	f.mu.Lock()
	f.readHi = 0
	f.mu.Unlock()
	f.newGeneration()
	head, err := f.head(int(min(size, fpLen)))
	if err != nil {
		return err
	}
	f.fp = head
	t.ckDirty = true
	return nil
}

// checkAtEOF runs the poll checks of an open file at EOF: deletion,
// rotation, multiline timeout, release and idleness.
func (t *Tailer) checkAtEOF(ctx context.Context, f *follower) error {
	now := time.Now()
	if f.ml.pending && now.Sub(f.ml.last) >= t.o.MultilineTimeout {
		if err := t.flushMultiline(ctx, f); err != nil {
			return err
		}
		if err := t.flush(ctx); err != nil {
			return err
		}
	}
	st, err := f.stat()
	if err != nil {
		return err
	}
	if nlinkOf(st) == 0 && !f.deleted {
		f.deleted = true
		if !f.gone {
			f.gone = true
			t.m.rotations.WithLabelValues("delete").Inc()
			t.log.Info("file deleted; reading it to its end", "path", f.path)
		}
	}
	// A rename is found by the rescan (at once with inotify, else every
	// scan interval): only a scan can find the file that replaces it.
	if st.Size() > f.size {
		f.lastGrowth = now
		f.size = st.Size()
		f.dirty = true // it grew since the read: read again before deciding
		return nil
	}
	if f.gone {
		if !f.successor {
			if pst, err := os.Stat(f.path); err == nil && keyOf(pst) != f.key && pst.Size() > 0 {
				f.successor = true
				f.dirty, f.check = true, true // one more read to EOF, now that the writer has moved on
				return nil
			}
		}
		// A deleted file pins disk space, so it goes after a short quiet. A
		// renamed one costs only a descriptor: its writer may not have
		// reopened yet (logrotate's postrotate signal), so it is kept as
		// long as an idle file would be.
		quiet := goneQuiet
		if !f.deleted {
			quiet = t.o.CloseInactive
		}
		if f.successor || now.Sub(f.lastGrowth) >= quiet {
			return t.release(ctx, f)
		}
		return nil
	}
	quiet := now.Sub(f.lastGrowth)
	if f.seen > f.off && quiet >= t.o.PartialFlush {
		// An unterminated last line the writer may never finish (or not
		// for a long while): ship what there is, marked partial; the rest
		// of the line, if it comes, is its continuation.
		if err := t.emitRest(ctx, f, f.size, true); err != nil {
			return err
		}
		if err := t.flush(ctx); err != nil {
			return err
		}
	}
	// The unterminated line goes out before the file is closed.
	if quiet >= t.o.CloseInactive && !f.ml.pending && (f.seen <= f.off || quiet >= t.o.PartialFlush) {
		if _, err := f.closeFile(); err != nil {
			t.log.Warn("close inactive file", "path", f.path, "err", err)
		}
		t.log.Debug("closed inactive file", "path", f.path)
	}
	return nil
}

// release ships the rest of a rotated-away or deleted file, then closes
// and forgets it.
func (t *Tailer) release(ctx context.Context, f *follower) error {
	st, err := f.stat()
	if err != nil {
		return err
	}
	if st.Size() > f.size {
		f.dirty = true // grew again: not done yet
		return nil
	}
	if err := t.emitRest(ctx, f, st.Size(), false); err != nil {
		return err
	}
	if err := t.flushMultiline(ctx, f); err != nil {
		return err
	}
	if err := t.flush(ctx); err != nil {
		return err
	}
	if f.off < st.Size() {
		f.dirty = true
		return nil
	}
	t.log.Info("released rotated file after reading it to its end", "path", f.path, "deleted", f.deleted, "size", st.Size())
	if f.deleted {
		t.forget(f)
		return nil
	}
	// A renamed file may still be inside the globs (app.log.1 with
	// SKIFF_PATHS=app.log*) and be renamed again (app.log.2): keep its
	// identity and offset, closed, so that the next scan recognises it
	// instead of reading it again from the head. A scan that no longer
	// finds it forgets it.
	if _, err := f.closeFile(); err != nil {
		t.log.Warn("close file", "path", f.path, "err", err)
	}
	f.gone, f.successor = false, false
	t.needScan = true
	t.ckDirty = true
	return nil
}

// checkClosed decides about a follower closed for inactivity: reopen it
// when its path still names it and it changed.
func (t *Tailer) checkClosed(f *follower) {
	st, err := os.Stat(f.path)
	if err != nil || keyOf(st) != f.key {
		t.needScan = true
		return
	}
	if st.Size() == f.size {
		return
	}
	if t.reopen(f) {
		f.dirty, f.check = true, true
		f.lastGrowth = time.Now()
		t.log.Debug("reopened file", "path", f.path)
	}
}

// reopen opens f's file again by its path, if the path still names it.
func (t *Tailer) reopen(f *follower) bool {
	file, err := t.openFile(f.path)
	if err != nil {
		t.problem(f.path, errKind(err), err)
		return false
	}
	fst, err := file.Stat()
	if err != nil || keyOf(fst) != f.key {
		_ = file.Close() // read-only: nothing to lose
		t.needScan = true
		return false
	}
	f.mu.Lock()
	f.file = file
	f.mu.Unlock()
	return true
}

// forget closes f and drops it and its checkpoint.
func (t *Tailer) forget(f *follower) {
	if _, err := f.closeFile(); err != nil {
		t.log.Warn("close file", "path", f.path, "err", err)
	}
	t.filesMu.Lock()
	if t.files[f.key] == f {
		delete(t.files, f.key)
	}
	t.filesMu.Unlock()
	if t.byPath[f.path] == f {
		delete(t.byPath, f.path)
	}
	if t.batch.holds(f) {
		// The janitor released f mid-batch, or f is done before the pass
		// appends: those records were read and are still worth shipping.
		return
	}
	t.ckDirty = true
}

func (t *Tailer) setBusy(b bool) {
	t.quietMu.Lock()
	t.busy = b
	t.quietMu.Unlock()
}

func (t *Tailer) progress() {
	t.quietMu.Lock()
	t.lastGrow = time.Now()
	t.quietMu.Unlock()
}

// WaitQuiet blocks until every followed file has been at EOF, with no
// growth, for quiet (checked by Run's polls), or until ctx is done. It is
// meant for graceful shutdown: call it, then cancel Run's context. It is
// safe to call concurrently with Run.
func (t *Tailer) WaitQuiet(ctx context.Context, quiet time.Duration) error {
	tick := time.NewTicker(min(quiet/4+time.Millisecond, 50*time.Millisecond))
	defer tick.Stop()
	for {
		t.quietMu.Lock()
		now := time.Now()
		ok := !t.busy && now.Sub(t.lastGrow) >= quiet && t.lastPass.After(t.lastGrow) &&
			now.Sub(t.lastPass) < quiet+2*t.poll
		t.quietMu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// wedgedAfter is how long the read loop may go without finishing a pass,
// while not waiting on the buffer, before Wedged reports it.
const wedgedAfter = time.Minute

// Wedged reports an error when Run's loop has not finished a read pass for
// a minute although it is not blocked in Append (backpressure from a full
// buffer is not a wedge). It is for a liveness probe; safe for concurrent
// use.
func (t *Tailer) Wedged() error {
	if !t.running.Load() || t.appendSince.Load() != 0 {
		return nil
	}
	t.quietMu.Lock()
	last := t.lastPass
	t.quietMu.Unlock()
	if last.IsZero() {
		return nil // not through the first pass yet: the scan may be large
	}
	if d := time.Since(last); d > wedgedAfter {
		return fmt.Errorf("tailer: no read pass for %s", d.Round(time.Second))
	}
	return nil
}
