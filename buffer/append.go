package buffer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// Backoff between retries of a failing write (disk full, read-only).
const (
	retryMin = 50 * time.Millisecond
	retryMax = 5 * time.Second
)

// writebackBytes is how much is written between two writeback hints
// (Log.writeback).
const writebackBytes = 8 << 20

// Append appends recs, in order, as one group commit: one write (two when
// the batch crosses a segment boundary) and, under FsyncBatch, one fsync.
// When it returns nil every record is accepted under the fsync policy:
// readable by cursors, in the page cache (a process crash loses nothing),
// and under FsyncBatch on stable storage. Under WhenFullDropNewest records
// that do not fit are counted as dropped and Append still returns nil.
//
// Append blocks while the buffer is full (WhenFullBlock) and while writes
// fail (disk full, read-only volume: Err reports it), retrying until they
// succeed. If ctx is done first it returns ctx.Err(); a prefix of recs may
// then have been appended, so the caller should treat the batch as failed
// and expect duplicates if it appends them again (at-least-once). A record
// longer than the buffer can ever hold fails the whole batch up front with
// ErrRecordTooLarge.
//
// Append copies recs into frames; AppendBatch, for records the caller lays
// out as frames itself, does not. Append is safe for concurrent use; calls
// are serialised. Records may be reused by the caller once it returns.
func (l *Log) Append(ctx context.Context, recs [][]byte) error {
	maxRec := l.o.maxRecordBytes()
	for i, r := range recs {
		if int64(len(r)) > maxRec {
			return fmt.Errorf("append record %d (%d bytes, at most %d): %w", i, len(r), maxRec, ErrRecordTooLarge)
		}
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	b := &l.ab
	b.Reset()
	for _, r := range recs {
		b.Add(r)
	}
	b.fillHeaders()
	err := l.appendKept(ctx, b, false)
	if cap(b.data) > 4*maxSegmentBytes {
		*b = Batch{} // do not pin a huge buffer after one huge batch
	}
	return err
}

// AppendBatch is Append for records laid out in b: it fills each frame's
// header in place and writes b's memory as it is, without copying it. Its
// guarantees, blocking and ctx semantics are Append's. b's memory may be
// kept for the hot window (cursors that keep up read the records from
// it): b is then left empty, with other memory (after a failure, holding
// its records again). The caller may Reset and refill b once AppendBatch
// returns, must not touch it before, and must keep no slice of b's
// memory from before the call.
//
// AppendBatch is safe for concurrent use with other appends (on different
// batches); calls are serialised.
func (l *Log) AppendBatch(ctx context.Context, b *Batch) error {
	// No record can be too large when the whole batch is not: the usual
	// case, checked without a pass over the records.
	if maxRec := l.o.maxRecordBytes(); int64(len(b.data)) > maxRec {
		for i := range b.ends {
			if n := int64(b.ends[i] - b.start(i) - frameHeaderSize); n > maxRec {
				return fmt.Errorf("append record %d (%d bytes, at most %d): %w", i, n, maxRec, ErrRecordTooLarge)
			}
		}
	}
	// Outside writeMu: checksums of concurrent appends overlap.
	b.fillHeaders()
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	return l.appendKept(ctx, b, false)
}

// AppendAll is AppendBatch for a batch that must be appended whole or not
// at all (a request the ingest endpoints acknowledge): its records go into
// one segment with one write, so that a cancelled ctx, a full buffer or a
// failed write never leaves part of them appended. When it returns nil
// every record is accepted under the fsync policy, as with Append.
//
// While the buffer has no room for the whole batch, AppendAll waits under
// WhenFullBlock (and makes room under WhenFullDropOldest), as Append does;
// under WhenFullDropNewest it returns ErrFull at once instead of dropping
// the batch, since its caller can still refuse it. If ctx is done while it
// waits, nothing was appended and the error wraps ctx's error and ErrFull
// (no room) or the last write error (disk full, read-only volume). A batch
// larger than the largest record (a quarter of the bound and 64 KiB) fails
// up front with ErrRecordTooLarge.
//
// AppendAll is safe for concurrent use with other appends; calls are
// serialised. b's memory may be kept, as with AppendBatch.
func (l *Log) AppendAll(ctx context.Context, b *Batch) error {
	if maxRec := l.o.maxRecordBytes(); int64(len(b.data)) > maxRec {
		return fmt.Errorf("append %d records (%d bytes, at most %d) at once: %w", len(b.ends), len(b.data), maxRec, ErrRecordTooLarge)
	}
	if len(b.ends) == 0 {
		return nil
	}
	b.fillHeaders()
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	return l.appendKept(ctx, b, true)
}

// appendKept is appendFramed with b's memory kept in the hot window for
// the cursors (hot.go); b gets other memory if any of it was kept.
// writeMu must be held.
func (l *Log) appendKept(ctx context.Context, b *Batch, whole bool) error {
	hb, spare := l.hotAdopt(b)
	err := l.appendFramed(ctx, b, whole)
	l.hotDone(hb, spare, b, err)
	return err
}

// appendFramed appends b, whose headers are filled, as Append describes,
// or, if whole, as AppendAll does. writeMu must be held.
func (l *Log) appendFramed(ctx context.Context, b *Batch, whole bool) error {
	defer l.setStalled(false)
	backoff := retryMin
	// Records before next are appended; they end at start in b.data.
	next, start := 0, 0
	for next < len(b.ends) {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return ErrClosed
		}
		size := l.segs[len(l.segs)-1].size
		free := l.o.MaxBytes - l.used
		spaceCh := l.spaceCh
		l.spaceWaited = true // conservatively: full() may wait on it
		rollNext := l.rollNext
		haveQuarantine := len(l.quarantined) > 0
		l.mu.Unlock()

		if rollNext {
			if !rollFits(free) {
				if err := l.full(ctx, spaceCh, haveQuarantine); err != nil {
					return wrapWait(whole, err, ErrFull)
				}
				continue
			}
			if err := l.roll(); err != nil {
				if werr := l.waitRetry(ctx, err, &backoff); werr != nil {
					return wrapWait(whole, werr, err)
				}
			}
			continue
		}
		var n int
		var nbytes int64
		var roll bool
		if whole {
			n, nbytes, roll = planWhole(b.ends, size, l.o.SegmentBytes, free)
		} else {
			n, nbytes, roll = plan(b.ends[next:], start, size, l.o.SegmentBytes, free)
		}
		if roll && rollFits(free) {
			if err := l.roll(); err != nil {
				if werr := l.waitRetry(ctx, err, &backoff); werr != nil {
					return wrapWait(whole, werr, err)
				}
			}
			continue
		}
		if n == 0 {
			if l.o.WhenFull == WhenFullDropNewest && !haveQuarantine {
				// Segments nobody needs go before any record is refused.
				if freed, err := l.gc(); err != nil || freed > 0 {
					if err != nil {
						l.log.Warn("delete consumed segments", "err", err)
					}
					if freed > 0 {
						continue
					}
				}
				if whole {
					return ErrFull
				}
				l.dropNewest(len(b.ends) - next)
				return nil
			}
			if err := l.full(ctx, spaceCh, haveQuarantine); err != nil {
				return wrapWait(whole, err, ErrFull)
			}
			continue
		}
		if err := l.write(b.data[start:start+int(nbytes)], n, start, next); err != nil {
			if isNoSpace(err) && l.rollConsumed() {
				continue
			}
			if werr := l.waitRetry(ctx, err, &backoff); werr != nil {
				return wrapWait(whole, werr, err)
			}
			continue
		}
		l.setStalled(false)
		backoff = retryMin
		next += n
		start = b.ends[next-1]
	}
	return nil
}

// wrapWait is the error of an append that stopped waiting with err: for
// AppendAll, which appended nothing, it also names why it waited (ErrFull,
// or the write error). ErrClosed is returned as it is.
func wrapWait(whole bool, err, cause error) error {
	if !whole || errors.Is(err, ErrClosed) || errors.Is(err, cause) {
		return err
	}
	return fmt.Errorf("%w: %w", cause, err)
}

// rollConsumed makes room on a full volume from the active segment, when
// every cursor has committed all of its records: it seals the
// segment and deletes it, which GC cannot do to an active one. Without it
// a volume that fills below the bound (the application's own files share
// it) would keep the consumed records' blocks while appends wait. It
// reports whether it freed anything; creating the new segment needs one
// free block.
func (l *Log) rollConsumed() bool {
	l.mu.Lock()
	act := l.segs[len(l.segs)-1]
	// The new segment's header must fit in the bound before the old
	// segment is gone.
	consumed := act.size > segmentHeaderSize && rollFits(l.o.MaxBytes-l.used)
	for _, c := range l.cursors {
		if c.committed.Less(Pos{Segment: act.id, Offset: act.size}) {
			consumed = false
		}
	}
	l.mu.Unlock()
	if !consumed {
		return false
	}
	if err := l.roll(); err != nil {
		return false
	}
	freed, err := l.gc()
	if err != nil {
		l.log.Warn("delete consumed segments", "err", err)
	}
	if freed > 0 {
		l.log.Info("volume full: deleted the consumed active segment to make room", "segment", act.id, "bytes", act.size)
	}
	return freed > 0
}

// full makes room when the bound is reached: quarantined files go first,
// then the policy applies (drop_newest is handled by the caller). It
// returns when it is worth planning again, or with ctx's error.
func (l *Log) full(ctx context.Context, spaceCh <-chan struct{}, haveQuarantine bool) error {
	if haveQuarantine {
		if err := l.deleteQuarantined(); err != nil {
			backoff := retryMin
			return l.waitRetry(ctx, err, &backoff)
		}
		return nil
	}
	// Segments nobody needs (say, with no cursors at all) go first.
	if _, err := l.gc(); err != nil {
		l.log.Warn("delete consumed segments", "err", err)
	}
	if l.o.WhenFull == WhenFullDropOldest {
		ok, err := l.dropOldest()
		if err != nil {
			backoff := retryMin
			return l.waitRetry(ctx, err, &backoff)
		}
		if ok {
			return nil
		}
	}
	start := time.Now()
	l.setBlocked(true)
	l.setStalled(true)
	defer func() {
		l.setBlocked(false)
		l.m.blocked.WithLabelValues("full").Add(time.Since(start).Seconds())
	}()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-l.closedCh:
		return ErrClosed
	case <-spaceCh:
		return nil
	}
}

// waitRetry records a failed write, waits *backoff (doubling it) and
// returns nil to retry, or ctx's error.
func (l *Log) waitRetry(ctx context.Context, cause error, backoff *time.Duration) error {
	l.mu.Lock()
	if l.diskErr == nil {
		l.log.Error("buffer write failed; appends wait and retry", "err", cause)
	}
	l.diskErr = cause
	if l.blockedSince.IsZero() {
		l.blockedSince = time.Now()
	}
	spaceCh := l.spaceCh // deleted segments may be what was missing
	l.spaceWaited = true
	l.mu.Unlock()
	start := time.Now()
	defer func() { l.m.blocked.WithLabelValues("disk_error").Add(time.Since(start).Seconds()) }()
	t := time.NewTimer(*backoff)
	defer t.Stop()
	*backoff = min(2**backoff, retryMax)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-l.closedCh:
		return ErrClosed
	case <-t.C:
		return nil
	case <-spaceCh:
		return nil
	}
}

// write appends frames (n whole frames) to the active segment with one
// write and, under FsyncBatch, one fsync, then publishes them. On failure
// nothing is published and the segment is cut back to where it was. The
// frames are frames first to first+n of the batch being appended, from
// start in its memory: the hot window keeps them as they are.
func (l *Log) write(frames []byte, n, start, first int) error {
	l.mu.Lock()
	act := l.segs[len(l.segs)-1]
	l.mu.Unlock()
	if _, err := l.w.WriteAt(frames, act.size); err != nil {
		// A short write may have left part of a frame: cut it off so the
		// retry starts clean. If that fails too the retry overwrites it.
		_ = l.w.Truncate(act.size)
		return fmt.Errorf("write segment %d: %w", act.id, err)
	}
	end := act.size + int64(len(frames))
	if l.o.Fsync == FsyncBatch {
		l.syncMu.Lock()
		err := l.fsync(l.w)
		l.syncMu.Unlock()
		if err != nil {
			// Never retry an fsync: the pages may be gone. Drop the batch
			// from this segment and write it again in a new one.
			_ = l.w.Truncate(act.size)
			l.mu.Lock()
			l.rollNext = true
			l.mu.Unlock()
			return fmt.Errorf("sync segment %d: %w", act.id, err)
		}
	}
	l.mu.Lock()
	l.segs[len(l.segs)-1].size = end
	l.used += diskSize(end) - diskSize(act.size)
	l.written += int64(len(frames))
	if l.o.Fsync == FsyncBatch {
		l.synced = l.written
	}
	l.hotAddLocked(act.id, act.size, l.pubSeq, start, first, n)
	l.publishLocked(end, l.pubSeq+uint64(n))
	if l.diskErr != nil {
		l.log.Info("buffer writes succeed again")
		l.diskErr = nil
	}
	l.mu.Unlock()
	if l.o.Fsync != FsyncBatch {
		l.unhinted += int64(len(frames))
		if l.unhinted >= writebackBytes {
			// Run starts the writeback, off the append path. Without Run
			// the hints are skipped: the kernel writes back anyway.
			select {
			case l.hintCh <- struct{}{}:
			default: // one is pending already
			}
			l.unhinted = 0
		}
	}
	l.m.appended.Add(float64(n))
	l.m.appendedBytes.Add(float64(len(frames)))
	return nil
}

// roll seals the active segment and starts a new one. The new segment is
// created (header written; under FsyncBatch also fsynced, then the
// directory) before the old one is sealed, so that a failure leaves the old
// one active. Under FsyncInterval the fsyncs of both wait for the next Sync
// (seal, syncActive).
func (l *Log) roll() error {
	l.mu.Lock()
	act := l.segs[len(l.segs)-1]
	firstSeq := l.pubSeq
	l.mu.Unlock()
	id := act.id + 1
	// Under FsyncBatch the new segment is durable before a record goes in
	// (its records' fdatasync would not cover the directory entry). Under
	// the other policies that waits for the next Sync, like the old
	// segment's fsync (seal): nothing in it is durable before then anyway.
	durable := l.o.Fsync == FsyncBatch
	f, err := l.createSegment(id, firstSeq, durable)
	if err != nil {
		return err
	}
	// Cut off anything a failed write left after the last frame, so the
	// sealed segment holds only whole frames.
	if err := l.w.Truncate(act.size); err != nil {
		l.log.Warn("truncate sealed segment", "segment", act.id, "err", err)
	}
	l.syncMu.Lock()
	l.seal(act.id, l.w, act.size)
	if !durable {
		l.dirDirty = true
	}
	l.w = f
	l.kicked = segmentHeaderSize
	l.mu.Lock()
	l.segs = append(l.segs, segInfo{id: id, firstSeq: firstSeq, size: segmentHeaderSize})
	l.used += diskSize(segmentHeaderSize)
	l.rollNext = false
	l.publishLocked(segmentHeaderSize, firstSeq)
	l.mu.Unlock()
	l.syncMu.Unlock()
	return nil
}

// createSegment creates segment id with its header written and, if
// durable, the file and then the directory fsynced. On error the partial
// file is removed.
func (l *Log) createSegment(id, firstSeq uint64, durable bool) (file, error) {
	name := l.path(segmentName(id))
	f, err := l.fs.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create segment %d: %w", id, err)
	}
	err = func() error {
		if _, err := f.WriteAt(encodeSegmentHeader(firstSeq), 0); err != nil {
			return err
		}
		if !durable {
			return nil
		}
		if err := l.fsync(f); err != nil {
			return err
		}
		return l.fs.SyncDir(l.o.Dir)
	}()
	if err != nil {
		_ = f.Close()                               // already failing
		if rerr := l.fs.Remove(name); rerr == nil { // nothing in it yet
			_ = l.fs.SyncDir(l.o.Dir)
		}
		return nil, fmt.Errorf("create segment %d: %w", id, err)
	}
	return f, nil
}

// dropNewest counts n refused records for every cursor.
func (l *Log) dropNewest(n int) {
	for _, c := range l.cursorList() {
		l.m.dropped.WithLabelValues(c.name, reasonBufferFull).Add(float64(n))
	}
	l.log.Warn("buffer full: records dropped (when_full=drop_newest)", "records", n)
}

// dropOldest moves every cursor that still needs the oldest segment to the
// start of the next one, counting what each skips, then deletes
// the segment. It reports false when there is no sealed segment to drop.
func (l *Log) dropOldest() (bool, error) {
	l.mu.Lock()
	if len(l.segs) < 2 {
		l.mu.Unlock()
		return false, nil
	}
	segs := slices.Clone(l.segs[:2])
	type move struct {
		c    *Cursor
		skip int64
	}
	var moves []move
	for _, c := range l.cursorsLocked() {
		if c.committed.Segment <= segs[0].id {
			p := c.committed
			if p.Less(c.readPos) {
				p = c.readPos
			}
			moves = append(moves, move{c, dropSkips(segs, p)})
		}
	}
	l.mu.Unlock()
	to := startOf(segs[1])
	for _, mv := range moves {
		if err := mv.c.advance(to); err != nil {
			return false, err
		}
		if mv.skip > 0 {
			l.m.dropped.WithLabelValues(mv.c.name, reasonBufferFull).Add(float64(mv.skip))
			l.log.Warn("buffer full: sink skips the oldest segment (when_full=drop_oldest)",
				"sink", mv.c.name, "segment", segs[0].id, "records", mv.skip)
		}
	}
	if _, err := l.gc(); err != nil {
		return false, err
	}
	return true, nil
}

// deleteQuarantined removes the oldest quarantined file to make room.
func (l *Log) deleteQuarantined() error {
	l.mu.Lock()
	if len(l.quarantined) == 0 {
		l.mu.Unlock()
		return nil
	}
	name, size := l.quarantined[0], l.qsizes[0]
	l.mu.Unlock()
	if err := l.fs.Remove(l.path(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove quarantined %s: %w", name, err)
	}
	l.log.Warn("buffer full: deleted quarantined file", "file", name, "bytes", size)
	l.mu.Lock()
	l.quarantined, l.qsizes = l.quarantined[1:], l.qsizes[1:]
	l.used -= diskSize(size)
	l.mu.Unlock()
	return l.fs.SyncDir(l.o.Dir)
}

func (l *Log) setBlocked(b bool) {
	l.mu.Lock()
	l.blocked = b
	l.mu.Unlock()
}

// setStalled starts the BlockedSince clock, unless it runs already, or
// stops it.
func (l *Log) setStalled(s bool) {
	l.mu.Lock()
	switch {
	case !s:
		l.blockedSince = time.Time{}
	case l.blockedSince.IsZero():
		l.blockedSince = time.Now()
	}
	l.mu.Unlock()
}
