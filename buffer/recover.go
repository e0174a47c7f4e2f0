package buffer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"syscall"
)

// recover builds the in-memory state from the directory, repairing what a
// crash or a disk fault left: temp files are removed, a segment with a
// damaged header is quarantined, the torn tail of the last segment is cut
// off, and cursors are validated. It never fails over damaged data, only on
// I/O errors and on data of a newer format version.
func (l *Log) recover() error {
	entries, err := l.fs.ReadDir(l.o.Dir)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	var ids []uint64
	cursorFiles := map[string]bool{}
	var maxID uint64
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, tmpSuffix):
			// Repairs that fail (a read-only volume) are logged, not
			// fatal: the buffer still starts and serves what it holds.
			if err := l.fs.Remove(l.path(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				l.log.Warn("remove temp file", "file", name, "err", err)
			}
			l.m.recovery.WithLabelValues("removed_temp").Inc()
		case strings.HasSuffix(name, segmentSuffix):
			if id, ok := parseSegmentName(name); ok {
				ids = append(ids, id)
				maxID = max(maxID, id)
			}
		case strings.HasSuffix(name, corruptSuffix):
			info, err := e.Info()
			if err != nil {
				return fmt.Errorf("stat %s: %w", name, err)
			}
			l.quarantined = append(l.quarantined, name)
			l.qsizes = append(l.qsizes, info.Size())
			l.used += diskSize(info.Size())
			if id, ok := parseSegmentName(strings.TrimSuffix(name, corruptSuffix)); ok {
				maxID = max(maxID, id)
			}
		case strings.HasSuffix(name, cursorSuffix):
			cursorFiles[strings.TrimSuffix(name, cursorSuffix)] = true
		}
	}
	slices.Sort(ids)

	// Sealed segments: only their headers are read. Corruption inside them
	// is found and skipped by readers.
	for i, id := range ids {
		if i == len(ids)-1 {
			break
		}
		// The newest sealed segments may still wait for an fsync left by a
		// process that crashed: it is done now, before anything new is
		// built on them (the tail gets the same in openTail).
		s, err := l.openSealed(id, i >= len(ids)-1-maxUnsynced)
		if err != nil {
			return err
		}
		if s != nil {
			l.segs = append(l.segs, *s)
		}
	}
	// The tail: scanned frame by frame and cut at the first bad one. A tail
	// whose header is damaged is quarantined or removed and the previous
	// segment becomes the tail.
	if len(ids) > 0 {
		if err := l.openTail(ids[len(ids)-1]); err != nil {
			return err
		}
	}
	for l.w == nil && len(l.segs) > 0 {
		prev := l.segs[len(l.segs)-1]
		l.segs = l.segs[:len(l.segs)-1]
		l.used -= diskSize(prev.size)
		if err := l.openTail(prev.id); err != nil {
			return err
		}
	}

	// Cursor files are read before a first segment is created, so that
	// its ID and sequence number continue after anything they point to.
	positions := map[string]cursorState{}
	var damaged []string
	var maxSeq uint64
	for name := range cursorFiles {
		st, err := l.readCursorFile(name)
		var ve *VersionError
		if errors.As(err, &ve) {
			ve.File = name + cursorSuffix
			return ve
		}
		if err != nil {
			damaged = append(damaged, name)
			l.log.Warn("damaged cursor file; the sink restarts at the oldest retained record", "sink", name, "err", err)
			continue
		}
		positions[name] = st
		maxID = max(maxID, st.pos.Segment)
		maxSeq = max(maxSeq, st.pos.Seq)
	}
	if l.w == nil {
		f, err := l.createSegment(maxID+1, maxSeq, true)
		if err != nil {
			return err
		}
		l.w, l.kicked = f, segmentHeaderSize
		l.segs = append(l.segs, segInfo{id: maxID + 1, firstSeq: maxSeq, size: segmentHeaderSize})
		l.used += diskSize(segmentHeaderSize)
		l.pubEnd, l.pubSeq = segmentHeaderSize, maxSeq
	}
	if err := l.fs.SyncDir(l.o.Dir); err != nil {
		// Segments created by a crashed process without a directory
		// fsync; a read-only volume cannot have lost anything new.
		l.log.Warn("sync buffer dir", "err", err)
	}
	return l.recoverCursors(positions, damaged)
}

// openSealed reads a sealed segment's header, fsyncing the file first if
// sync is set. A damaged header makes the segment quarantined (nil, nil); a
// newer version is an error.
func (l *Log) openSealed(id uint64, sync bool) (*segInfo, error) {
	name := segmentName(id)
	f, err := l.fs.OpenFile(l.path(name), os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("open segment %d: %w", id, err)
	}
	defer f.Close() //nolint:errcheck // read-only
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat segment %d: %w", id, err)
	}
	firstSeq, err := readHeader(f)
	var ve *VersionError
	if errors.As(err, &ve) {
		ve.File = name
		return nil, ve
	}
	if err != nil {
		if err := l.quarantine(id, info.Size(), err); err != nil {
			return nil, err
		}
		return nil, nil
	}
	if sync {
		if err := f.Sync(); err != nil {
			l.log.Warn("sync sealed segment", "segment", id, "err", err)
		}
	}
	l.used += diskSize(info.Size())
	return &segInfo{id: id, firstSeq: firstSeq, size: info.Size()}, nil
}

func readHeader(f file) (uint64, error) {
	h := make([]byte, segmentHeaderSize)
	n, err := f.ReadAt(h, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	return decodeSegmentHeader(h[:n])
}

// quarantine renames a segment with a damaged header to .corrupt; it is
// kept for inspection, charged to the bound, and deleted first when space
// is short.
func (l *Log) quarantine(id uint64, size int64, cause error) error {
	from := segmentName(id)
	to := from + corruptSuffix
	if err := l.fs.Rename(l.path(from), l.path(to)); err != nil {
		// Cannot rename (read-only volume): leave it under its name,
		// out of the log, still charged and deleted first for room.
		l.log.Warn("rename quarantined segment", "segment", id, "err", err)
		to = from
	} else if err := l.fs.SyncDir(l.o.Dir); err != nil {
		l.log.Warn("sync buffer dir", "err", err)
	}
	l.quarantined = append(l.quarantined, to)
	l.qsizes = append(l.qsizes, size)
	l.used += diskSize(size)
	l.m.recovery.WithLabelValues("quarantined_segment").Inc()
	l.log.Error("segment with a damaged header quarantined; its records are lost", "segment", id, "file", to, "bytes", size, "err", cause)
	return nil
}

// openTail opens segment id as the active segment, cutting off a torn
// tail. If its header is damaged it is removed (when it holds nothing else)
// or quarantined, and l.w stays nil.
func (l *Log) openTail(id uint64) error {
	name := segmentName(id)
	f, err := l.fs.OpenFile(l.path(name), os.O_RDWR, 0)
	readOnly := false
	if errors.Is(err, syscall.EROFS) {
		// A read-only volume: what is buffered stays readable, appends
		// wait (the roll to a new segment retries) until it is writable.
		readOnly = true
		f, err = l.fs.OpenFile(l.path(name), os.O_RDONLY, 0)
	}
	if err != nil {
		return fmt.Errorf("open segment %d: %w", id, err)
	}
	info, err := f.Stat()
	if err != nil {
		_ = f.Close() // the stat error is what matters
		return fmt.Errorf("stat segment %d: %w", id, err)
	}
	firstSeq, err := readHeader(f)
	if err != nil {
		_ = f.Close() // nothing written
		var ve *VersionError
		if errors.As(err, &ve) {
			ve.File = name
			return ve
		}
		if info.Size() <= segmentHeaderSize {
			// Crashed while creating it: it never held a record.
			if err := l.fs.Remove(l.path(name)); err != nil {
				return fmt.Errorf("remove torn segment %d: %w", id, err)
			}
			l.m.recovery.WithLabelValues("torn_tail").Inc()
			l.log.Warn("removed segment torn during creation", "segment", id)
			return l.fs.SyncDir(l.o.Dir)
		}
		return l.quarantine(id, info.Size(), err)
	}
	end, seq, err := scanFrames(f, info.Size(), firstSeq)
	if err != nil {
		_ = f.Close() // the read error is what matters
		return fmt.Errorf("scan segment %d: %w", id, err)
	}
	if readOnly {
		l.rollNext = true
		l.diskErr = fmt.Errorf("open segment %d for writing: %w", id, syscall.EROFS)
		l.log.Error("buffer volume is read-only; appends wait until it is writable", "segment", id)
	} else if end < info.Size() {
		cut := info.Size() - end
		if err := f.Truncate(end); err != nil {
			_ = f.Close()
			return fmt.Errorf("truncate segment %d: %w", id, err)
		}
		l.m.truncated.Add(float64(cut))
		l.m.recovery.WithLabelValues("torn_tail").Inc()
		l.log.Warn("torn tail cut off the last segment", "segment", id, "offset", end, "bytes", cut)
	}
	if !readOnly {
		// Whatever a crashed process left in the page cache becomes
		// durable before anything new is built on it.
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return fmt.Errorf("sync segment %d: %w", id, err)
		}
	}
	l.w, l.kicked = f, end
	l.segs = append(l.segs, segInfo{id: id, firstSeq: firstSeq, size: end})
	l.used += diskSize(end)
	l.pubEnd, l.pubSeq = end, seq
	return nil
}

// scanFrames reads frames from the header to size and returns the end of
// the last valid one and the sequence number after it. Memory is bounded by
// the largest frame plus a fixed chunk.
func scanFrames(f io.ReaderAt, size int64, seq uint64) (end int64, next uint64, err error) {
	const chunk = 1 << 20
	buf := make([]byte, chunk)
	off := int64(segmentHeaderSize)
	for off < size {
		n := min(int64(len(buf)), size-off)
		b := buf[:n]
		if _, err := f.ReadAt(b, off); err != nil {
			return 0, 0, err
		}
		var pos int64
		for pos < n {
			_, fs, err := decodeFrame(b[pos:], size-off-pos-frameHeaderSize)
			if err != nil {
				break
			}
			pos += fs
			seq++
		}
		if pos == 0 {
			// Either a bad frame, or one larger than the chunk.
			fl, err := frameLen(b, size-off-frameHeaderSize)
			if err != nil || frameHeaderSize+fl <= n {
				return off, seq, nil
			}
			big := make([]byte, frameHeaderSize+fl)
			if _, err := f.ReadAt(big, off); err != nil {
				return 0, 0, err
			}
			if _, _, err := decodeFrame(big, fl); err != nil {
				return off, seq, nil
			}
			pos = int64(len(big))
			seq++
		}
		off += pos
	}
	return off, seq, nil
}

// readCursorFile reads and decodes a cursor file.
func (l *Log) readCursorFile(name string) (cursorState, error) {
	f, err := l.fs.OpenFile(l.path(name+cursorSuffix), os.O_RDONLY, 0)
	if err != nil {
		return cursorState{}, err
	}
	defer f.Close()                     //nolint:errcheck // read-only
	b := make([]byte, 2*cursorFileSize) // room to see that a file is too long
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return cursorState{}, err
	}
	return decodeCursor(b[:n])
}

// adoptCursorFile opens c's version-2 file, found at Open holding st, for
// in-place commits. It fsyncs it once: a process that crashed may have
// left its newest slot in the page cache only, and later commits write
// the other slot on the assumption that this one is durable. It reports
// false when the file cannot be used (the caller writes a new one).
func (l *Log) adoptCursorFile(c *Cursor, st cursorState) bool {
	f, err := l.fs.OpenFile(l.path(c.name+cursorSuffix), os.O_RDWR, 0)
	if err != nil {
		l.log.Warn("open cursor file", "sink", c.name, "err", err)
		return false
	}
	if err := f.Sync(); err != nil {
		_ = f.Close() // the sync error is what matters
		l.log.Warn("sync cursor file", "sink", c.name, "err", err)
		return false
	}
	c.setFile(f, st)
	return true
}

// recoverCursors sets up the configured cursors from their files and drops
// the files of cursors no longer configured, logging and counting the
// backlog they leave.
func (l *Log) recoverCursors(positions map[string]cursorState, damaged []string) error {
	oldest := startOf(l.segs[0])
	wanted := map[string]bool{}
	for _, name := range l.o.Cursors {
		wanted[name] = true
		c := &Cursor{l: l, name: name}
		for src, n := range sourceNames {
			c.readFrom[src] = l.m.read.WithLabelValues(name, n)
		}
		st, ok := positions[name]
		p := st.pos
		switch {
		case ok:
			np, _ := normalize(l.segs, l.pubEnd, l.pubSeq, p)
			switch {
			case np.Less(p):
				l.m.recovery.WithLabelValues("cursor_clamped").Inc()
				l.log.Warn("cursor points past the durable end of the buffer; moved to the end", "sink", name)
			case p.Segment < l.segs[0].id:
				l.log.Warn("cursor's segment is gone; moved to the oldest retained record", "sink", name, "segment", p.Segment)
			}
			p = np
		case slices.Contains(damaged, name):
			p = oldest
			l.m.recovery.WithLabelValues("cursor_reset").Inc()
		default:
			p = oldest
			l.log.Info("new cursor starts at the oldest retained record", "sink", name)
		}
		c.committed, c.next, c.readPos = p, p, p
		l.cursors[name] = c
		if ok && st.version == cursorFileVersion && st.pos == p && l.adoptCursorFile(c, st) {
			continue
		}
		// A new or moved cursor, or a version-1 file (read once, replaced
		// now): written now, so that commits write slots in place (and a
		// file exists to overwrite should the volume be full).
		if err := c.create(p); err != nil {
			l.log.Warn("write cursor file", "sink", name, "err", err)
		}
	}
	removed := false
	for name, st := range positions {
		if wanted[name] {
			continue
		}
		recs, bytes := lag(l.segs, l.pubEnd, l.pubSeq, st.pos)
		if err := l.fs.Remove(l.path(name + cursorSuffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.log.Warn("remove cursor file", "sink", name, "err", err)
		}
		removed = true
		l.m.abandoned.Add(float64(recs))
		l.m.recovery.WithLabelValues("cursor_removed").Inc()
		l.m.dropped.DeletePartialMatch(map[string]string{"sink": name})
		l.log.Warn("sink no longer configured: its cursor is dropped and its backlog no longer holds data", "sink", name, "records", recs, "bytes", bytes)
	}
	for _, name := range damaged {
		if wanted[name] {
			continue
		}
		if err := l.fs.Remove(l.path(name + cursorSuffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.log.Warn("remove cursor file", "sink", name, "err", err)
		}
		removed = true
		l.m.recovery.WithLabelValues("cursor_removed").Inc()
		l.log.Warn("sink no longer configured: its damaged cursor is dropped", "sink", name)
	}
	if removed {
		if err := l.fs.SyncDir(l.o.Dir); err != nil {
			l.log.Warn("sync buffer dir", "err", err)
		}
	}
	return nil
}
