package buffer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// slowFsync is the fsync duration above which a warning is logged.
const slowFsync = time.Second

// Log is a bounded, segmented, append-only log on disk with one Cursor per
// consumer. See the package documentation for its guarantees.
type Log struct {
	o    Options
	fs   fileSystem
	lock *os.File // the directory lock, held until Close
	log  *slog.Logger
	m    *metrics

	// writeMu makes Append (and what it does: write, roll, drop) single
	// writer. Lock order: writeMu, then Cursor.commitMu or Cursor.readMu,
	// then gcMu, then fsyncMu, then syncMu, then mu.
	writeMu sync.Mutex
	// w is the active segment's file; replaced only under writeMu and
	// syncMu, so Sync can use it holding syncMu alone.
	w file
	// ab holds Append's records framed; reused, guarded by writeMu.
	ab Batch
	// unhinted counts bytes written since Run was last asked to start
	// their writeback; guarded by writeMu.
	unhinted int64
	// hintCh asks Run to start writeback (capacity 1).
	hintCh chan struct{}

	// fsyncMu serialises Sync's fsync passes (Run's tick, the tailer,
	// Close). They run without syncMu, so that sealing a segment, on the
	// append path, never waits for the disk.
	fsyncMu sync.Mutex
	// syncMu guards the fields below and the swap of w; held only for
	// bookkeeping, never across a disk wait but the batch policy's own
	// fsync and the seal beyond maxUnsynced.
	syncMu sync.Mutex
	// unsynced are sealed segments, oldest first, whose fsync is left to
	// the next Sync (FsyncInterval only); at most maxUnsynced. Guarded by
	// syncMu.
	unsynced []unsyncedSeg
	// kicked is the offset in the active segment up to which writeback
	// was started; guarded by syncMu.
	kicked int64
	// failed are segments whose fsync failed, oldest first: their records
	// are written again before Sync reports anything durable
	// (rewriteFailed). Guarded by syncMu.
	failed []uint64
	// passFile is the active segment's file as a Sync pass found it,
	// while the pass fsyncs it without syncMu; a roll may seal it
	// meanwhile, and whoever would close it sets passClose instead, for
	// the pass to close it when done.
	passFile  file
	passClose bool
	// rewriting is set while rewriteFailed writes records again: no Sync
	// may report success before it is done.
	rewriting bool
	// hints is writeback's scratch list, owned by Run's goroutine.
	hints []hint
	// dirDirty is set when a segment was created without fsyncing the
	// directory (all policies but FsyncBatch); Sync fsyncs it. Guarded by
	// syncMu.
	dirDirty bool
	// gcMu serialises deleting segments.
	gcMu sync.Mutex

	mu sync.Mutex // guards the fields below
	// segs are the segments in ID order; the last is the active one.
	// Invariant: never empty after Open.
	segs []segInfo
	// pubEnd is how far readers may read in the active segment; pubSeq
	// is the sequence number after the last readable record. Under
	// FsyncBatch they advance only after the fsync.
	pubEnd int64
	pubSeq uint64
	// written and synced count bytes written to segments since Open and
	// how many of them a completed fsync covers. Only syncActive advances
	// synced past what the last write's own fsync covered (FsyncBatch).
	written, synced int64
	// used is the disk bytes charged to the bound: the diskSize of every
	// segment and quarantined file, until it is unlinked.
	used int64
	// quarantined are .corrupt files, deleted first when space is short.
	quarantined []string
	qsizes      []int64
	cursors     map[string]*Cursor
	dataCh      chan struct{} // closed and replaced when records are published
	dataWaited  bool          // a reader holds dataCh
	spaceCh     chan struct{} // closed and replaced when segments are deleted
	spaceWaited bool          // an append holds spaceCh
	diskErr     error         // last write or sync failure, nil once a write succeeds
	blocked     bool          // an Append waits for space
	// blockedSince is when the Append in progress began to wait, for space
	// or for a failing write, without a write succeeding since; zero while
	// appends make progress (BlockedSince).
	blockedSince time.Time
	// rollNext is set when the active segment cannot be trusted for more
	// writes (an fsync of it failed, or it is read-only): the next Append
	// seals it first.
	rollNext bool
	closed   bool
	closedCh chan struct{}
	reported map[Pos]bool // corrupt regions already logged
	// hot is the window of batches appended last (hot.go).
	hot hotWindow
}

// Stats is a snapshot of the buffer's size.
type Stats struct {
	Bytes      int64   // disk bytes charged to the bound
	MaxBytes   int64   // the bound
	Records    int64   // records retained
	Segments   int     // segment files
	UsageRatio float64 // Bytes / MaxBytes
	// Blocked is true while an Append waits for space (WhenFullBlock).
	Blocked bool
}

// Open opens (creating if needed) the buffer in o.Dir, repairing whatever a
// crash left behind; see the package documentation for what recovery does.
// It fails only on I/O errors, invalid options, or data written by a newer
// format version (*VersionError). It starts no goroutine; call Run.
func Open(o Options) (*Log, error) {
	return open(o, osFS{})
}

func open(o Options, fs fileSystem) (*Log, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	l := &Log{
		o:        o,
		fs:       fs,
		log:      o.Logger,
		m:        newMetrics(o.Registerer),
		cursors:  map[string]*Cursor{},
		dataCh:   make(chan struct{}),
		spaceCh:  make(chan struct{}),
		closedCh: make(chan struct{}),
		hintCh:   make(chan struct{}, 1),
		reported: map[Pos]bool{},
		hot:      hotWindow{max: o.HotBytes},
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil { // buffered lines are log content: skiff's user alone
		return nil, fmt.Errorf("open buffer: %w", err)
	}
	lock, err := lockDir(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("open buffer %s: %w", o.Dir, err)
	}
	l.lock = lock
	fail := func(err error) (*Log, error) {
		if l.w != nil {
			_ = l.w.Close() // err is what matters
		}
		l.unlock()
		return nil, err
	}
	if err := l.recover(); err != nil {
		return fail(fmt.Errorf("open buffer %s: %w", o.Dir, err))
	}
	if _, err := l.gc(); err != nil {
		// Not fatal: the segments are retried at the next commit.
		l.log.Warn("delete consumed segments at open", "err", err)
	}
	if err := l.m.register(stateCollector{l}); err != nil {
		return fail(fmt.Errorf("open buffer: register metrics: %w", err))
	}
	return l, nil
}

// unlock releases the directory lock.
func (l *Log) unlock() {
	if l.lock != nil {
		_ = l.lock.Close() // closing releases the flock; nothing written
		l.lock = nil
	}
}

func (l *Log) path(name string) string { return filepath.Join(l.o.Dir, name) }

// Run calls Sync every FsyncInterval (unless FsyncNever: under
// FsyncInterval that fsyncs the segments and the cursor files, under
// FsyncBatch the cursor files, the segments being fsynced per batch),
// starts the writeback of what Append wrote (unless FsyncBatch) every few
// MiB, and returns nil when ctx is done or the Log is closed. Sync
// failures are logged and shown by Err; they are not fatal. Run must be
// called at most once. Without Run the Log works as well, but nothing is
// fsynced before Sync or Close, and the writeback is left to the kernel,
// so the fsyncs take longer.
func (l *Log) Run(ctx context.Context) error {
	var tick <-chan time.Time
	if l.o.Fsync != FsyncNever {
		t := time.NewTicker(l.o.FsyncInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-l.closedCh:
			return nil
		case <-l.hintCh:
			l.writeback()
		case <-tick:
			if err := l.Sync(); err != nil && !errors.Is(err, ErrClosed) {
				l.log.Error("buffer sync failed", "err", err)
			}
		}
	}
}

// writeback starts writing to disk what was written and not yet handed to
// writeback, without waiting: the last bytes of the segments sealed since,
// then the active one. So the page cache does not fill with dirty pages
// that must all be written at once, and the next fsync has little to do;
// and the append path does not pay for it (0.08 s per 2 GiB, more when the
// disk queue is full: the call then waits for room in it). Leaving the
// active segment out made its writes a little faster but left its whole
// content to Sync's fsync: the tailer's final Sync took 9 ms longer per
// 20 MB (BenchmarkIntoBuffer).
func (l *Log) writeback() {
	l.syncMu.Lock()
	if l.closedErr() != nil {
		l.syncMu.Unlock()
		return
	}
	hints := l.hints[:0]
	for i := range l.unsynced {
		s := &l.unsynced[i]
		if s.kicked < s.size {
			hints = append(hints, hint{s.f, s.kicked, s.size - s.kicked})
			s.kicked = s.size
		}
	}
	l.mu.Lock()
	end := l.segs[len(l.segs)-1].size
	l.mu.Unlock()
	if end > l.kicked {
		hints = append(hints, hint{l.w, l.kicked, end - l.kicked})
		l.kicked = end
	}
	l.hints = hints
	l.syncMu.Unlock()
	// Outside syncMu: the call waits when the disk queue is full, and a
	// roll must not. A file closed meanwhile (a Sync done with it, GC)
	// makes its hint fail; errors are ignored anyway: it is a hint, and a
	// real failure shows at the next fsync.
	for _, h := range hints {
		_ = h.f.Writeback(h.off, h.n)
	}
	clear(hints)
}

// hint is one range to start writing back.
type hint struct {
	f      file
	off, n int64
}

// Sync makes every record appended before the call durable (fdatasync),
// and every cursor position committed before it, unless Options.Fsync is
// FsyncNever, where it does nothing. The tailer calls it before writing
// checkpoints that skip past the records. It is safe to call concurrently
// with Append, Commit and Next, and blocks Append only while it writes
// records again (below), a Commit of a cursor only while it fsyncs that
// cursor's file.
//
// A failed fsync is never retried, since the kernel may have dropped the
// dirty pages: the error is returned, so that the caller does not
// checkpoint past the records, and the next Sync first appends the
// failed segment's records again (a new segment) and reports success only
// once an fsync covered the copies (rewriteFailed). A cursor file whose
// fsync failed has its position written again before the next fsync.
func (l *Log) Sync() error {
	if err := l.closedErr(); err != nil || l.o.Fsync == FsyncNever {
		return err
	}
	err := l.rewriteFailed()
	if err == nil {
		err = l.syncActive()
	}
	return errors.Join(err, l.syncCursors())
}

// syncActive fsyncs the sealed segments waiting for an fsync, oldest
// first, then the active segment if it has unsynced writes, then the
// directory if segments were created since. Only when all succeed does
// synced advance: what Sync reports durable was covered by a completed
// fsync, whichever segment it is in.
//
// The fsyncs run holding fsyncMu, not syncMu: the pass takes the list of
// waiting segments for itself (it fsyncs and closes them), and the active
// segment's file stays open if a roll seals it meanwhile (it joins the
// next pass's list). An append that rolls never waits for the disk.
func (l *Log) syncActive() error {
	l.fsyncMu.Lock()
	defer l.fsyncMu.Unlock()
	l.syncMu.Lock()
	l.mu.Lock()
	f, target, id := l.w, l.written, l.segs[len(l.segs)-1].id
	dirty := l.synced < target // always, while a sealed segment waits
	l.mu.Unlock()
	dir := l.dirDirty
	if l.rewriting || len(l.failed) > 0 {
		// Records whose fsync failed are not yet written again: a
		// success now would let a checkpoint skip them.
		l.syncMu.Unlock()
		return errRewriting
	}
	if !dirty && !dir {
		l.syncMu.Unlock()
		return nil
	}
	sealed := l.unsynced
	l.unsynced = nil
	l.dirDirty = false
	l.passFile, l.passClose = f, false
	l.syncMu.Unlock()

	sealedErr := l.syncSealedList(sealed)
	err := l.fsync(f)
	l.syncMu.Lock()
	if l.passClose {
		if cerr := f.Close(); cerr != nil {
			l.log.Warn("close sealed segment", "segment", id, "err", cerr)
		}
	}
	l.passFile, l.passClose = nil, false
	// A failure the seal path met meanwhile (an fsync beyond
	// maxUnsynced) forbids reporting success too.
	failedMeanwhile := l.rewriting || len(l.failed) > 0
	l.syncMu.Unlock()
	if err != nil {
		l.syncMu.Lock()
		l.failed = append(l.failed, id)
		l.dirDirty = l.dirDirty || dir
		l.syncMu.Unlock()
		l.mu.Lock()
		if l.segs[len(l.segs)-1].id == id {
			l.rollNext = true
		}
		l.diskErr = err
		l.mu.Unlock()
		return errors.Join(sealedErr, fmt.Errorf("sync segment %d: %w", id, err))
	}
	if sealedErr == nil && dir {
		// The new segments' names: without them their data is lost too.
		if derr := l.fs.SyncDir(l.o.Dir); derr != nil {
			sealedErr = fmt.Errorf("sync buffer dir: %w", derr)
		} else {
			dir = false
		}
	}
	if sealedErr == nil && failedMeanwhile {
		sealedErr = errRewriting
	}
	if sealedErr != nil {
		l.syncMu.Lock()
		l.dirDirty = l.dirDirty || dir
		l.syncMu.Unlock()
		return sealedErr
	}
	l.mu.Lock()
	l.synced = max(l.synced, target)
	l.mu.Unlock()
	return nil
}

func (l *Log) closedErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	return nil
}

// fsync syncs f, timing it.
func (l *Log) fsync(f file) error {
	start := time.Now()
	err := f.Sync()
	d := time.Since(start)
	l.m.fsync.Observe(d.Seconds())
	if d > slowFsync {
		l.log.Warn("slow fdatasync in buffer", "took", d, "expected", "< "+slowFsync.String())
	}
	return err
}

// Err returns the disk error that currently makes appends wait (disk
// full, read-only volume, failed fsync), or nil when writes succeed. It is
// meant for readiness checks; the condition clears by itself once a write
// succeeds.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.diskErr
}

// BlockedSince returns when the Append in progress began to wait (for
// space under WhenFullBlock, or for a failing write to succeed) without a
// write succeeding since, or the zero time when no Append waits. A slow
// Append (an fsync under FsyncBatch) is not blocked. The tailer uses it
// to decide when a deleted file it cannot read may be let go. Safe for
// concurrent use.
func (l *Log) BlockedSince() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.blockedSince
}

// Stats returns the buffer's current size. Safe for concurrent use.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Stats{Bytes: l.used, MaxBytes: l.o.MaxBytes, Segments: len(l.segs), Blocked: l.blocked}
	if len(l.segs) > 0 {
		s.Records = int64(l.pubSeq - l.segs[0].firstSeq)
	}
	s.UsageRatio = float64(s.Bytes) / float64(s.MaxBytes)
	return s
}

// Close syncs (unless FsyncNever) and closes the log. Blocked Append and
// Next calls return ErrClosed. Cursors must not be used afterwards.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closed = true
	close(l.closedCh) // wakes blocked Append and Next calls
	cursors := l.cursorsLocked()
	l.hot = hotWindow{} // lent memory stays with its consumers
	l.mu.Unlock()

	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	var errs []error
	if l.o.Fsync != FsyncNever {
		if err := l.syncActive(); err != nil {
			errs = append(errs, err)
		}
		if err := l.syncCursors(); err != nil {
			errs = append(errs, err)
		}
	}
	l.syncMu.Lock()
	for _, s := range l.unsynced { // only after a failed Sync above
		if err := s.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close sealed segment %d: %w", s.id, err))
		}
	}
	l.unsynced = nil
	if err := l.w.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close active segment: %w", err))
	}
	l.syncMu.Unlock()
	for _, c := range cursors {
		c.readMu.Lock()
		c.closeFile()
		c.readMu.Unlock()
		c.commitMu.Lock()
		c.closeCursorFile()
		c.commitMu.Unlock()
	}
	l.m.unregister()
	l.unlock()
	return errors.Join(errs...)
}

// cursorList returns the cursors sorted by name.
func (l *Log) cursorList() []*Cursor {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cursorsLocked()
}

func (l *Log) cursorsLocked() []*Cursor {
	cs := make([]*Cursor, 0, len(l.cursors))
	for _, c := range l.cursors {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	return cs
}

// Cursor returns the cursor of the named consumer, which must be one of
// Options.Cursors. Each call returns the same *Cursor.
func (l *Log) Cursor(name string) (*Cursor, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	c, ok := l.cursors[name]
	if !ok {
		return nil, fmt.Errorf("cursor %q: %w", name, ErrUnknownCursor)
	}
	return c, nil
}

// publishLocked makes records up to end (sequence seq) of the active
// segment readable and wakes waiting readers. l.mu must be held.
// The channel is replaced only if a reader took it, so that appends
// allocate nothing when no reader waits.
func (l *Log) publishLocked(end int64, seq uint64) {
	l.pubEnd, l.pubSeq = end, seq
	if l.dataWaited {
		close(l.dataCh)
		l.dataCh = make(chan struct{})
		l.dataWaited = false
	}
}

// freedLocked wakes appends waiting for space. l.mu must be held.
func (l *Log) freedLocked() {
	if l.spaceWaited {
		close(l.spaceCh)
		l.spaceCh = make(chan struct{})
		l.spaceWaited = false
	}
}
