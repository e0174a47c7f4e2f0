package buffer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"slices"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
)

// readChunk is how much a resynchronising scan reads at a time.
const readChunk = 64 << 10

// Record is one record read by a Cursor.
type Record struct {
	// Pos is the position just after the record: Commit(Pos) acknowledges
	// it and everything before it.
	Pos Pos
	// Data is the payload as appended. It stays valid after later Next
	// calls; the records of one Next share one allocation.
	Data []byte
}

// Cursor reads the log for one consumer (a sink) and persists how far the
// consumer has processed it. Next must not be called concurrently
// with itself; Commit and Lag may be called concurrently with Next and with
// each other.
type Cursor struct {
	l    *Log
	name string

	// readMu serialises Next and guards the read state below.
	readMu sync.Mutex
	f      file   // open segment file, nil if none
	fseg   uint64 // segment f belongs to
	next   Pos    // where the next read starts
	// avgFrame is the mean frame size of the last read, to size the next.
	avgFrame int64
	// skips counts the regions skipped as unreadable (Replay stops at
	// the first).
	skips int
	// readFrom counts the records read, by source (nil for a Replay's
	// detached cursor).
	readFrom [len(sourceNames)]prometheus.Counter

	// commitMu serialises writes and fsyncs of the cursor file and guards
	// the file state below.
	commitMu sync.Mutex
	// cf is the version-2 cursor file, open for writing its slots in
	// place; nil until one exists (then Commit creates it).
	cf file
	// gen is the generation of the last slot written, slotBuf its bytes.
	gen     uint64
	slotBuf [cursorSlotSize]byte
	// slot is the slot the next commits write: never the one holding the
	// newest fsynced generation, so that a torn write falls back to a
	// position at least as new as the last fsync's.
	slot int
	// dirty: a slot was written since the last fsync. rewrite: that fsync
	// failed, so the slot is written again before the next one (the page
	// cache may have dropped the write).
	dirty, rewrite bool

	// poolMu guards the recycling of batch memory, which the first
	// Release turns on: the batches Next has lent out since then (oldest
	// first, at most maxLent) and those released for reuse (at most
	// maxFree).
	poolMu  sync.Mutex
	recycle bool
	lent    []batchMem
	free    []batchMem

	// Guarded by l.mu:
	committed Pos // last committed position (written; fsynced by the next Sync)
	readPos   Pos // mirror of next, for drop accounting
}

// Bounds of the batch memory a Cursor keeps for recycling. A batch lent
// out is tracked only so that Release can find it: the consumer holds it
// anyway. One that is never released is forgotten (left to the garbage
// collector) once maxLent newer batches have been lent.
const (
	maxLent = 32
	maxFree = 4
)

// batchMem is the memory of one batch returned by Next: its records and
// what their Data alias, each at full capacity: the buffer of a read from
// disk, or the hot window's memory (one reference per entry of hot).
type batchMem struct {
	recs []Record
	buf  []byte
	hot  []*hotBuf
}

// Name returns the cursor's name.
func (c *Cursor) Name() string { return c.name }

// Next returns the next records after the previous Next (or, first, after
// the committed position): at most maxRecords and, except that at least
// one record is always returned, at most maxBytes of data. It may return
// fewer records than are available: each read is sized from the mean
// record size seen so far. It blocks until
// a record is available, ctx is done (returning ctx.Err()) or the Log is
// closed (ErrClosed). Records in corrupt regions are skipped, counted and
// never returned.
//
// Next reads from disk with memory bounded by maxBytes (plus the largest
// record); a large backlog is never loaded whole.
func (c *Cursor) Next(ctx context.Context, maxRecords, maxBytes int) ([]Record, error) {
	maxRecords = max(maxRecords, 1)
	maxBytes = max(maxBytes, 1)
	c.readMu.Lock()
	defer c.readMu.Unlock()
	l := c.l
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, ErrClosed
		}
		p, i := normalize(l.segs, l.pubEnd, l.pubSeq, c.next)
		limit := l.segs[i].size
		if i == len(l.segs)-1 {
			limit = l.pubEnd
		}
		c.next, c.readPos = p, p
		var wait chan struct{}
		if p.Offset >= limit {
			wait = l.dataCh
			l.dataWaited = true
		}
		var spans [hotSpans]hotSpan
		ns := 0
		if p.Offset < limit {
			ns = l.hotFindLocked(p, limit, maxRecords, maxBytes, &spans)
		}
		l.mu.Unlock()
		if ns > 0 {
			return c.readHot(spans[:ns]), nil
		}
		if p.Offset < limit {
			recs, err := c.read(limit, maxRecords, maxBytes)
			if err != nil || len(recs) > 0 {
				return recs, err
			}
			continue // a corrupt region was skipped
		}
		if c.f != nil && c.fseg != p.Segment {
			// Done with that segment: an open descriptor would keep its
			// blocks allocated once GC deletes it, for as long as we wait.
			c.closeFile()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-l.closedCh:
			return nil, ErrClosed
		case <-wait:
		}
	}
}

// readHot returns the records of spans, which hotFindLocked found from
// c.next in the hot window and took references to.
func (c *Cursor) readHot(spans []hotSpan) []Record {
	n, size := 0, int64(0)
	for _, sp := range spans {
		n += sp.n
		size += sp.lastSize
	}
	m := c.takeHot()
	recs := m.recs[:0]
	if cap(recs) < n {
		recs = make([]Record, 0, n)
	}
	recs = hotRecords(recs, spans)
	bufs := m.hot[:0]
	for _, sp := range spans {
		bufs = append(bufs, sp.h.buf)
	}
	c.avgFrame = size / int64(n)
	c.setNext(recs[len(recs)-1].Pos)
	if !c.lend(batchMem{recs: recs, hot: bufs}) {
		c.l.mu.Lock()
		c.l.hotKeepLocked(bufs)
		c.l.mu.Unlock()
	}
	c.count(sourceMemory, n)
	return recs
}

// count counts n records read from source.
func (c *Cursor) count(source, n int) {
	if ctr := c.readFrom[source]; ctr != nil {
		ctr.Add(float64(n))
	}
}

// read reads records from c.next up to limit in its segment.
func (c *Cursor) read(limit int64, maxRecords, maxBytes int) ([]Record, error) {
	p := c.next
	if err := c.openSegment(p.Segment); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if c.l.listed(p.Segment) {
			// Removed behind our back: its records are gone.
			c.skip(p, limit, err)
		}
		return nil, nil // else dropped meanwhile; normalize moves on
	}
	avail := limit - p.Offset
	// At least a frame header, so that a record larger than maxBytes is
	// recognised as such. When maxRecords is the tighter limit, read about
	// that many frames of the average size seen so far rather than
	// maxBytes: a sink asking for 1,000 records of 250 bytes must not
	// make every call allocate and read 1 MiB.
	want := int64(max(maxBytes, frameHeaderSize))
	if c.avgFrame > 0 {
		want = min(want, int64(maxRecords)*c.avgFrame*9/8+frameHeaderSize)
	}
	buf, free := c.takeBuf(int(min(avail, want)))
	if n, err := c.f.ReadAt(buf, p.Offset); err != nil {
		if !errors.Is(err, io.EOF) {
			c.putBack(free)
			return nil, fmt.Errorf("read segment %d: %w", p.Segment, err)
		}
		// The file is shorter than it was: treat the rest as corrupt.
		buf, avail, limit = buf[:n], int64(n), p.Offset+int64(n)
		if n == 0 {
			c.putBack(free)
			c.skip(p, c.l.segmentEnd(p.Segment, limit), err)
			return nil, nil
		}
	}
	var recs []Record
	if free.recs != nil {
		// A released batch's records: usually room enough, else append
		// grows them once and the larger slice is recycled in turn.
		recs = free.recs[:0]
	} else if n := countFrames(buf, maxRecords); n > 0 {
		recs = make([]Record, 0, n) // one allocation per batch, not per record
	}
	recs, pos, err := decodeFrames(recs, buf, p, limit, maxRecords)
	if len(recs) == 0 {
		c.putBack(free)
		if errors.Is(err, errShortFrame) && len(buf) < int(avail) {
			// The first frame is larger than maxBytes: read it whole.
			n, lerr := frameLen(buf, avail-frameHeaderSize)
			if lerr == nil {
				buf = make([]byte, frameHeaderSize+n)
				if _, err := c.f.ReadAt(buf, p.Offset); err != nil {
					return nil, fmt.Errorf("read segment %d: %w", p.Segment, err)
				}
				if payload, size, err := decodeFrame(buf, n); err == nil {
					p.Offset += size
					p.Seq++
					c.avgFrame = size
					c.setNext(p)
					c.count(sourceDisk, 1)
					return []Record{{Pos: p, Data: payload}}, nil
				}
			}
		}
		// Not a frame: skip to the next valid one.
		to, err := c.resync(p.Offset, limit)
		if err != nil {
			return nil, err
		}
		c.skip(p, to, errBadFrame)
		return nil, nil
	}
	c.avgFrame = pos / int64(len(recs))
	c.setNext(recs[len(recs)-1].Pos)
	c.lend(batchMem{recs: recs, buf: buf})
	c.count(sourceDisk, len(recs))
	return recs, nil
}

// decodeFrames appends to recs the records of the whole, valid frames at
// the start of buf, which was read at p and ends by limit, at most most of
// them, and returns how many bytes of buf they take. The scan stops at the
// first frame that is short (errShortFrame) or not valid (errBadFrame),
// returning that error, so the records are always a prefix of buf's.
//
// It walks three frames at a time and checks their checksums together
// (frameCRC3) while they are still in cache, in one pass over buf: a
// separate pass for the lengths and one for the checksums cost about
// twice as much per MiB.
func decodeFrames(recs []Record, buf []byte, p Pos, limit int64, most int) ([]Record, int64, error) {
	end := int64(len(buf))
	var pos int64
	for len(recs) < most && pos < end {
		// Up to three whole frames from pos: their header offsets and
		// payload lengths; err is what stopped the walk before three.
		var offs, lens [3]int64
		k := 0
		at := pos
		var err error
		for k < 3 && len(recs)+k < most && at < end {
			n, ferr := frameLen(buf[at:], limit-p.Offset-(at-pos)-frameHeaderSize)
			if ferr == nil && end-at < frameHeaderSize+n {
				ferr = errShortFrame
			}
			if ferr != nil {
				err = ferr
				break
			}
			offs[k], lens[k] = at, n
			at += frameHeaderSize + n
			k++
		}
		var crcs [3]uint32
		if k == 3 {
			crcs[0], crcs[1], crcs[2] = frameCRC3(payloadAt(buf, offs[0], lens[0]), payloadAt(buf, offs[1], lens[1]), payloadAt(buf, offs[2], lens[2]))
		} else {
			for j := range k {
				crcs[j] = frameCRC(uint32(lens[j]), payloadAt(buf, offs[j], lens[j]))
			}
		}
		for j := range k {
			if crcs[j] != binary.LittleEndian.Uint32(buf[offs[j]+4:offs[j]+8]) {
				return recs, pos, errBadFrame
			}
			size := frameHeaderSize + lens[j]
			pos += size
			p.Offset += size
			p.Seq++
			recs = append(recs, Record{Pos: p, Data: payloadAt(buf, offs[j], lens[j])})
		}
		if err != nil {
			return recs, pos, err
		}
	}
	return recs, pos, nil
}

// payloadAt is the payload of the frame whose header is at off, with
// capacity cut at its end so that appending to it cannot overwrite the
// next frame.
func payloadAt(buf []byte, off, n int64) []byte {
	s := off + frameHeaderSize
	return buf[s : s+n : s+n]
}

// Release gives the memory of a batch returned by Next back to the
// cursor, so that a later Next reuses it instead of allocating (and
// zeroing) new memory. Afterwards neither recs nor the Data of any record
// in it may be used. recs must be a slice Next returned (or a re-slice of
// it starting at its first record); anything else, an empty batch, and a
// second Release of the same batch are ignored.
//
// Release is optional: a consumer that never calls it keeps the memory of
// every batch for as long as it likes (Data stays valid). The first call
// turns recycling on for this cursor; from then on Next tracks the last
// maxLent batches it returned, so that a batch released later can be
// reused. A batch that has not been released is never reused. Safe for
// concurrent use with Next and Commit.
func (c *Cursor) Release(recs []Record) {
	if cap(recs) == 0 {
		return
	}
	first := &recs[:1][0]
	c.poolMu.Lock()
	c.recycle = true
	var m batchMem
	for i := range c.lent {
		if &c.lent[i].recs[0] == first {
			m = c.lent[i]
			c.lent = slices.Delete(c.lent, i, i+1)
			break
		}
	}
	c.poolMu.Unlock()
	if m.recs == nil {
		return
	}
	if len(m.hot) > 0 {
		c.l.mu.Lock()
		c.l.hotReleaseLocked(m.hot)
		c.l.mu.Unlock()
		clear(m.hot)
	}
	c.poolMu.Lock()
	if len(c.free) < maxFree {
		c.free = append(c.free, m)
	}
	c.poolMu.Unlock()
}

// takeBuf returns a buffer of n bytes for a read: the smallest released
// one that is large enough, with the rest of its batch's memory, or a new
// one. Its contents are not zeroed: a read overwrites them, and records
// alias only the bytes read.
func (c *Cursor) takeBuf(n int) ([]byte, batchMem) {
	c.poolMu.Lock()
	defer c.poolMu.Unlock()
	if !c.recycle {
		return make([]byte, n), batchMem{}
	}
	best := -1
	for i, m := range c.free {
		if m.buf != nil && cap(m.buf) >= n && (best < 0 || cap(m.buf) < cap(c.free[best].buf)) {
			best = i
		}
	}
	if best < 0 {
		// Rounded up to a power of two so that it fits later reads of
		// about the same size.
		return make([]byte, n, 1<<bits.Len(uint(n-1))), batchMem{}
	}
	m := c.free[best]
	c.free = slices.Delete(c.free, best, best+1)
	return m.buf[:n], m
}

// takeHot returns released memory for the records of a batch served from
// the hot window: a released hot batch's, else none.
func (c *Cursor) takeHot() batchMem {
	c.poolMu.Lock()
	defer c.poolMu.Unlock()
	for i := len(c.free) - 1; i >= 0; i-- {
		if m := c.free[i]; m.buf == nil {
			c.free = slices.Delete(c.free, i, i+1)
			return m
		}
	}
	return batchMem{}
}

// putBack returns memory takeBuf handed out but no batch used.
func (c *Cursor) putBack(m batchMem) {
	if m.buf == nil {
		return
	}
	c.poolMu.Lock()
	defer c.poolMu.Unlock()
	if len(c.free) < maxFree {
		c.free = append(c.free, m)
	}
}

// lend tracks a batch Next returns, when recycling is on, so that Release
// can find it. It reports whether it does: a batch it does not track may
// be kept by the consumer for ever, and so may one it forgets to make
// room for a newer one (whose hot memory is then marked kept).
func (c *Cursor) lend(m batchMem) bool {
	c.poolMu.Lock()
	if !c.recycle {
		c.poolMu.Unlock()
		return false
	}
	var forgotten []*hotBuf
	if len(c.lent) == maxLent {
		forgotten = c.lent[0].hot
		c.lent = slices.Delete(c.lent, 0, 1)
	}
	m.recs, m.buf = m.recs[:cap(m.recs)], m.buf[:cap(m.buf)]
	c.lent = append(c.lent, m)
	c.poolMu.Unlock()
	if len(forgotten) > 0 {
		c.l.mu.Lock()
		c.l.hotKeepLocked(forgotten)
		c.l.mu.Unlock()
	}
	return true
}

// countFrames counts the whole frames at the start of b by their length
// fields alone, up to max: the capacity for the records of one read.
func countFrames(b []byte, most int) int {
	n := 0
	for n < most && len(b) >= frameHeaderSize {
		size := frameHeaderSize + int64(binary.LittleEndian.Uint32(b[0:4]))
		if size > int64(len(b)) {
			break
		}
		b = b[size:]
		n++
	}
	return n
}

// skip moves past a region of p's segment that cannot be read, up to to,
// counting and logging it as corrupt.
func (c *Cursor) skip(p Pos, to int64, cause error) {
	c.l.corruptErr(c, p.Segment, p.Offset, to-p.Offset, cause)
	c.skips++
	p.Offset = to
	c.setNext(p)
}

func (c *Cursor) setNext(p Pos) {
	c.next = p
	c.l.mu.Lock()
	c.readPos = p
	c.l.hotTrimLocked() // chunks every cursor has read go at once
	c.l.mu.Unlock()
}

// resync returns the offset of the first valid frame after from, or limit.
// A candidate must have a length that fits before limit and a matching
// CRC, so a false match needs a 32-bit checksum collision.
func (c *Cursor) resync(from, limit int64) (int64, error) {
	win := make([]byte, readChunk)
	var frame []byte
	for start := from + 1; start+frameHeaderSize <= limit; {
		w := win[:min(int64(len(win)), limit-start)]
		if _, err := c.f.ReadAt(w, start); err != nil {
			return 0, fmt.Errorf("resync segment %d: %w", c.fseg, err)
		}
		for i := 0; i+frameHeaderSize <= len(w); i++ {
			off := start + int64(i)
			n, err := frameLen(w[i:], limit-off-frameHeaderSize)
			if err != nil {
				continue
			}
			cand := w[i:]
			if int64(len(cand)) < frameHeaderSize+n {
				if int64(cap(frame)) < frameHeaderSize+n {
					frame = make([]byte, frameHeaderSize+n)
				}
				cand = frame[:frameHeaderSize+n]
				if _, err := c.f.ReadAt(cand, off); err != nil {
					return 0, fmt.Errorf("resync segment %d: %w", c.fseg, err)
				}
			}
			if _, _, err := decodeFrame(cand, n); err == nil {
				return off, nil
			}
		}
		start += int64(len(w)) - frameHeaderSize + 1
	}
	return limit, nil
}

// openSegment makes c.f the file of segment id.
func (c *Cursor) openSegment(id uint64) error {
	if c.f != nil && c.fseg == id {
		return nil
	}
	c.closeFile()
	f, err := c.l.fs.OpenFile(c.l.path(segmentName(id)), os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("open segment %d: %w", id, err)
	}
	c.f, c.fseg = f, id
	return nil
}

func (c *Cursor) closeFile() {
	if c.f != nil {
		_ = c.f.Close() // read-only: nothing to lose
		c.f = nil
	}
}

// Commit records that the consumer has processed everything up to p (a
// Record.Pos from this cursor) and may let whole segments be deleted.
// When it returns nil the position survives a process crash (it is in the
// page cache: one slot of the cursor file written in place), and a power
// loss once the next Sync has fsynced it; until then a power loss makes
// the cursor fall back to the position of the last Sync (duplicates, at
// most one fsync interval of them). After a restart Next resumes after
// the position. A position at or before the committed one is ignored.
// Safe for concurrent use with Next.
func (c *Cursor) Commit(p Pos) error {
	l := c.l
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	last := l.segs[len(l.segs)-1]
	if p.Segment > last.id || (p.Segment == last.id && p.Offset > l.pubEnd) {
		l.mu.Unlock()
		return fmt.Errorf("commit cursor %s: position %d:%d is past the end of the log", c.name, p.Segment, p.Offset)
	}
	l.mu.Unlock()
	if err := c.advance(p); err != nil {
		return err
	}
	_, err := l.gc()
	return err
}

// advance moves the committed position forward to p and writes it to the
// cursor file (not fsynced: Sync does that).
//
// GC goes by this position, not by the fsynced one. That is safe: after a
// power loss the cursor falls back to an older position, and if that is
// in a segment deleted meanwhile, recovery moves it to the start of the
// oldest segment left, which is at or before p. The records it skips
// were all delivered; none that were not is lost.
func (c *Cursor) advance(p Pos) error {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	l := c.l
	l.mu.Lock()
	cur := c.committed
	l.mu.Unlock()
	if !cur.Less(p) {
		return nil
	}
	if err := c.write(p); err != nil {
		return fmt.Errorf("commit cursor %s: %w", c.name, err)
	}
	l.mu.Lock()
	c.committed = p
	l.mu.Unlock()
	return nil
}

// write writes p to the next slot of the cursor file, or creates the file
// if there is none. Callers hold commitMu.
func (c *Cursor) write(p Pos) error {
	if c.cf == nil {
		return c.create(p)
	}
	var b [cursorSlotSize]byte
	encodeSlot(b[:], c.gen+1, p)
	if _, err := c.cf.WriteAt(b[:], slotOffset(c.slot)); err != nil {
		// The slot may be torn; the other one holds the last fsynced
		// position, and the next write retries this slot.
		return err
	}
	c.gen, c.slotBuf = c.gen+1, b
	c.dirty = true
	return nil
}

// create writes a new cursor file holding p, durably (writeCursorFile),
// and opens it for in-place commits. Callers hold commitMu (or own c
// alone, at Open).
func (c *Cursor) create(p Pos) error {
	l := c.l
	v2, err := l.writeCursorFile(c.name, p)
	if err != nil || !v2 {
		return err // a full volume made it a version-1 file: created again next time
	}
	f, err := l.fs.OpenFile(l.path(c.name+cursorSuffix), os.O_RDWR, 0)
	if err != nil {
		// The position is durable; the next commit creates the file again.
		l.log.Warn("open cursor file", "sink", c.name, "err", err)
		return nil
	}
	c.setFile(f, cursorState{pos: p, gen: 1, slot: 0, version: cursorFileVersion})
	return nil
}

// setFile adopts f, a version-2 cursor file whose newest slot (durable)
// is st's. Callers hold commitMu (or own c alone, at Open).
func (c *Cursor) setFile(f file, st cursorState) {
	c.closeCursorFile()
	c.cf, c.gen, c.slot = f, st.gen, 1-st.slot
	encodeSlot(c.slotBuf[:], st.gen, st.pos)
	c.dirty, c.rewrite = false, false
}

// sync fsyncs the cursor file if a commit wrote it since the last fsync.
// A failed fsync is not retried as such: the slot is written again first,
// since the kernel may have dropped the dirty page.
func (c *Cursor) sync() error {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	if !c.dirty || c.cf == nil {
		return nil
	}
	if c.rewrite {
		if _, err := c.cf.WriteAt(c.slotBuf[:], slotOffset(c.slot)); err != nil {
			return fmt.Errorf("sync cursor %s: %w", c.name, err)
		}
	}
	if err := c.cf.Sync(); err != nil {
		c.rewrite = true
		return fmt.Errorf("sync cursor %s: %w", c.name, err)
	}
	// The slot just fsynced holds the newest durable position: later
	// commits write the other one.
	c.dirty, c.rewrite = false, false
	c.slot = 1 - c.slot
	return nil
}

// closeCursorFile closes the cursor file. Callers hold commitMu.
func (c *Cursor) closeCursorFile() {
	if c.cf != nil {
		_ = c.cf.Close() // Log.Close fsyncs it first; a write error showed at the write
		c.cf = nil
	}
}

// syncCursors fsyncs the cursor files commits wrote since the last call.
func (l *Log) syncCursors() error {
	var errs []error
	for _, c := range l.cursorList() {
		if err := c.sync(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Lag returns how many records and bytes lie between the committed
// position and the end of the log. Safe for concurrent use.
func (c *Cursor) Lag() (records, bytes int64) {
	l := c.l
	l.mu.Lock()
	defer l.mu.Unlock()
	return lag(l.segs, l.pubEnd, l.pubSeq, c.committed)
}

// Committed returns the last committed position.
func (c *Cursor) Committed() Pos {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	return c.committed
}

// writeCursorFile atomically replaces the named cursor file with a
// version-2 file holding p: temp file, fsync, rename, directory fsync. It
// reports whether it did. When the volume is full that needs new blocks
// the disk may not have, and a cursor that cannot move would keep GC from
// freeing space, so it falls back to overwriting an existing version-1
// file in place: 36 bytes within one sector, which disks write
// atomically; if one were torn anyway its CRC fails and the sink restarts
// at the oldest record (duplicates, never loss).
func (l *Log) writeCursorFile(name string, p Pos) (v2 bool, err error) {
	final := l.path(name + cursorSuffix)
	tmp := final + tmpSuffix
	err = l.replaceFile(tmp, final, encodeCursorFile(p))
	if err == nil || !isNoSpace(err) {
		return err == nil, err
	}
	_ = l.fs.Remove(tmp) // best effort: frees what the attempt took
	f, oerr := l.fs.OpenFile(final, os.O_WRONLY, 0)
	if oerr != nil {
		return false, err
	}
	if st, serr := f.Stat(); serr != nil || st.Size() != cursorV1Size {
		_ = f.Close() // nothing written
		return false, err
	}
	if _, werr := f.WriteAt(encodeCursorV1(p), 0); werr != nil {
		_ = f.Close() // the write error is what matters
		return false, werr
	}
	if serr := f.Sync(); serr != nil {
		_ = f.Close() // the sync error is what matters
		return false, serr
	}
	return false, f.Close()
}

// replaceFile writes b to tmp, fsyncs it, renames it to final and fsyncs
// the directory.
func (l *Log) replaceFile(tmp, final string, b []byte) error {
	f, err := l.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		_ = f.Close() // the write error is what matters
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close() // the sync error is what matters
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := l.fs.Rename(tmp, final); err != nil {
		return err
	}
	return l.fs.SyncDir(l.o.Dir)
}

// isNoSpace reports whether err means the volume or quota is full.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// listed reports whether segment id is in the log.
func (l *Log) listed(id uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := segIndex(l.segs, id)
	return i < len(l.segs) && l.segs[i].id == id
}

// segmentEnd returns the readable end of segment id, or def if it is gone.
func (l *Log) segmentEnd(id uint64, def int64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := segIndex(l.segs, id)
	switch {
	case i >= len(l.segs) || l.segs[i].id != id:
		return def
	case i == len(l.segs)-1:
		return l.pubEnd
	default:
		return l.segs[i].size
	}
}

// corruptErr counts and logs (once per region) a corrupt region skipped
// by c.
func (l *Log) corruptErr(c *Cursor, seg uint64, off, skipped int64, cause error) {
	if c.name != "" { // a Replay's detached cursor drops nothing for any sink
		l.m.dropped.WithLabelValues(c.name, reasonCorrupt).Inc()
	}
	key := Pos{Segment: seg, Offset: off}
	l.mu.Lock()
	first := !l.reported[key]
	l.reported[key] = true
	l.mu.Unlock()
	if first {
		l.m.corrupt.Inc()
		l.m.corruptBytes.Add(float64(skipped))
		l.log.Error("corrupt region in buffer skipped", "err",
			&CorruptionError{Segment: seg, Offset: off, Skipped: skipped, Err: cause})
	}
}

// gc deletes the segments that every cursor has committed past
// and returns how many it deleted.
func (l *Log) gc() (int, error) {
	l.gcMu.Lock()
	defer l.gcMu.Unlock()
	l.mu.Lock()
	ps := make([]Pos, 0, len(l.cursors))
	for _, c := range l.cursors {
		ps = append(ps, c.committed)
	}
	k := collectible(l.segs, ps)
	victims := append([]segInfo(nil), l.segs[:k]...)
	l.segs = l.segs[k:]
	l.hotTrimLocked()
	for key := range l.reported {
		if len(l.segs) > 0 && key.Segment < l.segs[0].id {
			delete(l.reported, key)
		}
	}
	l.mu.Unlock()
	if len(victims) == 0 {
		return 0, nil
	}
	var errs []error
	freed := 0
	gone := map[uint64]bool{}
	for _, v := range victims {
		err := l.fs.Remove(l.path(segmentName(v.id)))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			// Still on disk: it stays charged to the bound.
			errs = append(errs, fmt.Errorf("delete segment %d: %w", v.id, err))
			continue
		}
		freed++
		gone[v.id] = true
		l.mu.Lock()
		l.used -= diskSize(v.size)
		l.mu.Unlock()
	}
	l.syncMu.Lock()
	l.forgetUnsynced(func(id uint64) bool { return gone[id] })
	l.syncMu.Unlock()
	if err := l.fs.SyncDir(l.o.Dir); err != nil {
		errs = append(errs, fmt.Errorf("sync buffer dir: %w", err))
	}
	l.mu.Lock()
	l.freedLocked()
	l.mu.Unlock()
	return freed, errors.Join(errs...)
}
