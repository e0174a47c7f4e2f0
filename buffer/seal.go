package buffer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
)

// maxUnsynced bounds the sealed segments whose fsync waits for the next
// Sync: past it, sealing a segment fsyncs the oldest of them at once, so
// that a power loss can tear at most this many sealed segments (plus the
// active one, and those a Sync in progress is fsyncing) even when nobody
// calls Sync. 16 default segments are 1 GiB,
// about what one FsyncInterval of writes at page-cache speed seals, so
// that with Run syncing every interval sealing does not wait for the disk:
// at 4 every fourth seal on the benchmark's 1 GiB did (0.08 s per 2 GiB,
// as much as sealing synchronously).
const maxUnsynced = 16

// unsyncedSeg is a sealed segment, still open, that no fsync has covered
// since its last write.
type unsyncedSeg struct {
	id uint64
	f  file
	// written is Log.written when it was sealed: its last byte.
	written int64
	// size is the segment's size; writeback was started up to kicked.
	size, kicked int64
}

// seal takes the active segment's file f (segment id, size bytes) out of
// service when a new one replaces it. Under FsyncInterval a segment with
// unsynced writes is not fsynced here, on the append path, but left to the
// next Sync (Run calls it every FsyncInterval, the tailer before checkpoints),
// which fsyncs sealed segments before the active one: so an fsync still
// covers every byte before what Sync reports durable. Under FsyncBatch
// nothing is unsynced; under FsyncNever nothing is fsynced. syncMu must be
// held.
func (l *Log) seal(id uint64, f file, size int64) {
	l.mu.Lock()
	written := l.written
	dirty := l.synced < written
	if n := len(l.unsynced); n > 0 && l.unsynced[n-1].written == written {
		dirty = false // nothing written since the last sealed one
	}
	l.mu.Unlock()
	if !dirty || l.o.Fsync == FsyncNever {
		if err := l.closeSegmentFile(f); err != nil {
			l.log.Warn("close sealed segment", "segment", id, "err", err)
		}
		return
	}
	if l.o.Fsync == FsyncInterval {
		l.unsynced = append(l.unsynced, unsyncedSeg{id: id, f: f, written: written, size: size, kicked: l.kicked})
		if len(l.unsynced) <= maxUnsynced {
			return
		}
		s := l.unsynced[0]
		l.unsynced = slices.Delete(l.unsynced, 0, 1)
		id, f = s.id, s.f
	}
	if err := l.syncSealed(id, f); err != nil {
		// The segment is sealed anyway: its records were acknowledged
		// and stay readable from the page cache, and the next Sync
		// writes them again.
		l.log.Error("fsync of sealed segment failed; its records are written again", "err", err)
		l.failed = append(l.failed, id)
	}
}

// syncSealed fsyncs and closes a sealed segment's file. syncMu must be
// held.
func (l *Log) syncSealed(id uint64, f file) error {
	err := l.fsync(f)
	if err != nil {
		err = fmt.Errorf("sync sealed segment %d: %w", id, err)
	}
	if cerr := l.closeSegmentFile(f); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close sealed segment %d: %w", id, cerr))
	}
	return err
}

// syncSealedList fsyncs and closes sealed segments a Sync took from the
// waiting list, oldest first. Each is tried once: a failed fsync is never
// retried (the pages may be gone), so the failure is returned and logged,
// and the segment's records are written again (rewriteFailed).
func (l *Log) syncSealedList(list []unsyncedSeg) error {
	var errs []error
	for _, s := range list {
		err := l.fsync(s.f)
		if err != nil {
			err = fmt.Errorf("sync sealed segment %d: %w", s.id, err)
		}
		if cerr := s.f.Close(); cerr != nil { // the list is this pass's alone
			err = errors.Join(err, fmt.Errorf("close sealed segment %d: %w", s.id, cerr))
		}
		if err != nil {
			l.log.Error("fsync of sealed segment failed; its records are written again", "err", err)
			l.syncMu.Lock()
			l.failed = append(l.failed, s.id)
			l.syncMu.Unlock()
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// closeSegmentFile closes a segment file, unless a Sync pass is fsyncing
// it (passFile): the pass closes it once done. syncMu must be held.
func (l *Log) closeSegmentFile(f file) error {
	if f == l.passFile {
		l.passClose = true
		return nil
	}
	return f.Close()
}

// forgetUnsynced closes, without an fsync, the files of deleted segments
// still waiting for one: every cursor is past their records, and an open
// descriptor would keep their blocks allocated after the unlink, beyond
// the bound. syncMu must be held.
func (l *Log) forgetUnsynced(deleted func(id uint64) bool) {
	l.unsynced = slices.DeleteFunc(l.unsynced, func(s unsyncedSeg) bool {
		if !deleted(s.id) {
			return false
		}
		_ = l.closeSegmentFile(s.f) // deleted: nothing in it matters any more
		return true
	})
}

// errRewriting is Sync's answer while records whose fsync failed are
// being written again (by a concurrent Sync).
var errRewriting = errors.New("records of a segment whose fsync failed are being written again")

// rewriteFailed appends again, as new records, the records of every
// segment whose fsync failed. A failed fsync is never retried: the kernel
// may have dropped the dirty pages and reported it once, so a later fsync
// of the same file can succeed without the data being on disk. The copies
// go into a segment of their own (the failed one is sealed first if it is
// the active one), and Sync reports nothing durable until an fsync covers
// them. Cursors that already read the records read them again
// (at-least-once), after the records appended since. A segment GC has
// deleted meanwhile needs nothing: every sink has delivered it.
func (l *Log) rewriteFailed() error {
	l.syncMu.Lock()
	pending := len(l.failed) > 0
	l.syncMu.Unlock()
	if !pending {
		return nil
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	l.syncMu.Lock()
	ids := l.failed
	l.failed = nil
	l.rewriting = true
	l.syncMu.Unlock()
	defer func() {
		l.syncMu.Lock()
		l.rewriting = false
		l.syncMu.Unlock()
	}()
	for i, id := range ids {
		if err := l.rewriteSegment(id); err != nil {
			l.syncMu.Lock()
			l.failed = append(ids[i:], l.failed...) // tried again at the next Sync
			l.syncMu.Unlock()
			return fmt.Errorf("write again the records of segment %d, whose fsync failed: %w", id, err)
		}
	}
	return nil
}

// rewriteSegment appends the records of segment id again (rewriteFailed).
// writeMu must be held.
func (l *Log) rewriteSegment(id uint64) error {
	l.mu.Lock()
	i := segIndex(l.segs, id)
	if i >= len(l.segs) || l.segs[i].id != id {
		l.mu.Unlock()
		return nil
	}
	end, active := l.segs[i].size, i == len(l.segs)-1
	if active {
		end = l.pubEnd
	}
	l.mu.Unlock()
	if active {
		if err := l.roll(); err != nil {
			return err
		}
	}
	// Its own fsync is not tried again, even when sealing queued one.
	l.syncMu.Lock()
	l.forgetUnsynced(func(s uint64) bool { return s == id })
	l.syncMu.Unlock()

	f, err := l.fs.OpenFile(l.path(segmentName(id)), os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close() // read-only: nothing to lose
	buf := make([]byte, 1<<20)
	var recs []Record
	var b Batch
	copied := 0
	for off := int64(segmentHeaderSize); off < end; {
		n := min(int64(len(buf)), end-off)
		if _, err := f.ReadAt(buf[:n], off); err != nil {
			return err
		}
		var pos int64
		var derr error
		recs, pos, derr = decodeFrames(recs[:0], buf[:n], Pos{Segment: id, Offset: off}, end, math.MaxInt)
		if len(recs) == 0 {
			if size, lerr := frameLen(buf[:n], end-off-frameHeaderSize); errors.Is(derr, errShortFrame) && lerr == nil {
				buf = make([]byte, frameHeaderSize+size) // one record larger than buf
				continue
			}
			// The page cache no longer holds what was written: these
			// records are lost, as after a power loss.
			l.m.corrupt.Inc()
			l.m.corruptBytes.Add(float64(end - off))
			l.log.Error("records of a segment whose fsync failed cannot be read back to be written again",
				"segment", id, "offset", off, "bytes", end-off, "written_again", copied)
			return nil
		}
		// The frames just checked are appended as they are, headers and
		// checksums included: no copy, no second CRC pass.
		b.data = buf[:pos]
		b.ends = b.ends[:0]
		for _, r := range recs {
			b.ends = append(b.ends, int(r.Pos.Offset-off))
		}
		if err := l.appendFramed(context.Background(), &b, false); err != nil {
			return err
		}
		copied += len(recs)
		off += pos
	}
	l.log.Warn("records of a segment whose fsync failed written again; sinks that read them get them twice",
		"segment", id, "records", copied)
	return nil
}
