package buffer

import "sort"

// The hot window: the batches appended last, kept in memory as the
// appender laid them out, so that a cursor that keeps up gets its records
// from them, without a read, a copy or a CRC check (the bytes never left
// this process). The disk copy stays the source of truth: a cursor whose
// position is not in the window (it fell behind, the process restarted,
// the segment was deleted) reads the segment as before. A chunk of the
// window is exactly what the write that published it put on disk at its
// position, and published bytes are never changed in place, so both paths
// hand out the same records.
//
// Ownership: AppendBatch (Append, AppendAll) takes the memory of the
// batch it writes into the window and gives the caller other memory for
// the next batch: recycled memory of a batch that no chunk and no
// consumer refers to any more, else new. Nothing the caller writes after
// the call can reach a chunk. A batch a consumer received from the window
// keeps its memory referenced until the consumer releases it; a consumer
// that never releases (or whose batch the cursor forgot) keeps it for
// good: that memory is never reused.
//
// Bound: chunks go as soon as every cursor has read past them, and the
// oldest go first whenever the window holds more than Options.HotBytes; a
// batch larger than half of it is not kept at all. Everything about the
// window is guarded by Log.mu.

// DefaultHotBytes is the default of Options.HotBytes.
const DefaultHotBytes = 4 << 20

// maxHotFree bounds the batch memory kept for reuse by appends.
const maxHotFree = 4

// hotSpans bounds the chunks one Next serves from.
const hotSpans = 8

// hotBuf is the memory of one appended batch.
type hotBuf struct {
	data []byte
	ends []int // frame ends in data, as in Batch
	// refs counts the window's chunks in it and the batches lent from
	// it; the memory is reused only when it is 0.
	refs int
	// kept: lent to a consumer that may hold it for ever; never reused.
	kept bool
}

// hotChunk is one write's frames: buf.ends[first:first+n], starting at
// buf.data[start], at off in segment seg, the first with sequence number
// seq.
type hotChunk struct {
	buf      *hotBuf
	seg      uint64
	off      int64
	seq      uint64
	start    int
	first, n int
}

// endOff is the offset after the chunk's last frame in its segment.
func (h *hotChunk) endOff() int64 {
	return h.off + int64(h.buf.ends[h.first+h.n-1]-h.start)
}

// frameStart is where frame k of the chunk starts in buf.data.
func (h *hotChunk) frameStart(k int) int {
	if k == 0 {
		return h.start
	}
	return h.buf.ends[h.first+k-1]
}

// hotWindow is the Log's window (see above). Guarded by Log.mu.
type hotWindow struct {
	max    int64
	chunks []hotChunk // in log order
	bytes  int64
	free   []*hotBuf // memory for the next batches, refs 0
	// cur is the memory of the append in progress, whose writes add
	// chunks; nil when nothing of it is to be kept.
	cur *hotBuf
}

// hotMem is batch memory handed back to an appender.
type hotMem struct {
	data []byte
	ends []int
}

// hotAdopt makes b's memory the current append's, for its writes to
// keep, and returns it with the memory b is to get instead if anything
// is kept. It returns nil when the window is off or b is too large for
// it. writeMu must be held.
func (l *Log) hotAdopt(b *Batch) (*hotBuf, hotMem) {
	w := &l.hot
	if w.max <= 0 || int64(len(b.data)) > w.max/2 {
		return nil, hotMem{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.hotUsefulLocked() {
		// No cursor would get to these records before they leave the
		// window: they would only take memory. What the window holds
		// goes too, for the same reason.
		for _, h := range w.chunks {
			l.hotUnrefLocked(h.buf)
		}
		clear(w.chunks)
		w.chunks, w.bytes = w.chunks[:0], 0
		clear(w.free)
		w.free = w.free[:0]
		return nil, hotMem{}
	}
	var hb *hotBuf
	if k := len(w.free); k > 0 {
		hb, w.free = w.free[k-1], w.free[:k-1]
	} else {
		hb = &hotBuf{}
	}
	spare := hotMem{hb.data, hb.ends}
	hb.data, hb.ends, hb.refs, hb.kept = b.data, b.ends, 0, false
	w.cur = hb
	return hb, spare
}

// hotUsefulLocked reports whether a cursor is within the window's bound of
// the end of the log, and so would read a batch appended now from memory.
// A cursor further behind reads from disk anyway (a bulk backlog: the
// tailer reads files much faster than a sink ships them), and the window
// would only hold memory for it. l.mu must be held.
func (l *Log) hotUsefulLocked() bool {
	for _, c := range l.cursors {
		if _, behind := lag(l.segs, l.pubEnd, l.pubSeq, c.readPos); behind <= l.hot.max {
			return true
		}
	}
	return false
}

// hotDone ends the append hotAdopt began. If the append kept any of b's
// memory in the window, b gets other memory: spare, or new memory of the
// same size; after a failure it gets a copy of its records, so that the
// caller may append them again. writeMu must be held.
func (l *Log) hotDone(hb *hotBuf, spare hotMem, b *Batch, err error) {
	if hb == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w := &l.hot
	w.cur = nil
	if hb.refs == 0 && !hb.kept {
		// Nothing kept: b keeps its memory, and the spare goes back.
		hb.data, hb.ends = spare.data, spare.ends
		if len(w.free) < maxHotFree {
			w.free = append(w.free, hb)
		}
		return
	}
	if spare.data == nil {
		spare = hotMem{make([]byte, 0, cap(hb.data)), make([]int, 0, cap(hb.ends))}
	}
	b.data, b.ends = spare.data[:0], spare.ends[:0]
	if err != nil {
		b.data = append(b.data, hb.data...)
		b.ends = append(b.ends, hb.ends...)
	}
}

// hotAddLocked adds the frames of the write just made to the window:
// buf.ends[first:first+n] of the current append's memory, from start, at
// off in segment seg, the first with sequence number seq. l.mu must be
// held, and the write must be published in the same critical section.
func (l *Log) hotAddLocked(seg uint64, off int64, seq uint64, start, first, n int) {
	w := &l.hot
	if w.cur == nil || n == 0 {
		return
	}
	w.cur.refs++
	w.chunks = append(w.chunks, hotChunk{buf: w.cur, seg: seg, off: off, seq: seq, start: start, first: first, n: n})
	w.bytes += int64(w.cur.ends[first+n-1] - start)
	l.hotTrimLocked()
}

// hotTrimLocked drops the chunks no cursor needs from the front of the
// window: those of deleted segments, those every cursor has read past,
// and the oldest while the window is over its bound. l.mu must be held.
func (l *Log) hotTrimLocked() {
	w := &l.hot
	k := 0
	for k < len(w.chunks) {
		h := &w.chunks[k]
		if h.seg >= l.segs[0].id && w.bytes <= w.max && !l.allReadPastLocked(Pos{Segment: h.seg, Offset: h.endOff()}) {
			break
		}
		w.bytes -= h.endOff() - h.off
		l.hotUnrefLocked(h.buf)
		k++
	}
	if k > 0 {
		n := copy(w.chunks, w.chunks[k:])
		clear(w.chunks[n:])
		w.chunks = w.chunks[:n]
	}
}

// allReadPastLocked reports whether every cursor's next read starts at or
// after p. l.mu must be held.
func (l *Log) allReadPastLocked(p Pos) bool {
	for _, c := range l.cursors {
		if c.readPos.Less(p) {
			return false
		}
	}
	return true
}

// hotUnrefLocked drops one reference to hb, recycling its memory when it
// was the last. l.mu must be held.
func (l *Log) hotUnrefLocked(hb *hotBuf) {
	hb.refs--
	if hb.refs > 0 || hb.kept || hb == l.hot.cur {
		return
	}
	if w := &l.hot; len(w.free) < maxHotFree && cap(hb.data) <= int(w.max) {
		hb.data, hb.ends = hb.data[:0], hb.ends[:0]
		w.free = append(w.free, hb)
	}
}

// hotSpan is a run of frames of one chunk served by one Next: frames
// [from, from+n) of h.
type hotSpan struct {
	h        hotChunk
	from, n  int
	lastSize int64 // bytes of the span's frames
}

// hotFindLocked finds the frames from p (a position Next normalised, in
// a segment whose readable end is limit) in the window: at most
// maxRecords frames of at most maxBytes in all (at least one), across
// chunks as long as they follow each other. It takes a reference to the
// memory of each span's chunk and returns the spans (0 when p is not in
// the window). l.mu must be held.
func (l *Log) hotFindLocked(p Pos, limit int64, maxRecords, maxBytes int, spans *[hotSpans]hotSpan) int {
	w := &l.hot
	i := len(w.chunks) - 1
	for i >= 0 && (w.chunks[i].seg != p.Segment || w.chunks[i].off > p.Offset) {
		if w.chunks[i].seg < p.Segment {
			return 0
		}
		i--
	}
	if i < 0 || w.chunks[i].endOff() <= p.Offset {
		return 0
	}
	h := &w.chunks[i]
	// The frame starting at p: frame 0 starts at off, frame k > 0 where
	// frame k-1 ends.
	rel := int(p.Offset-h.off) + h.start
	k := 0
	if rel != h.start {
		ends := h.buf.ends[h.first : h.first+h.n]
		j := sort.SearchInts(ends, rel)
		if j >= len(ends) || ends[j] != rel {
			return 0 // not a frame boundary: let the disk path judge it
		}
		k = j + 1
	}
	if h.seq+uint64(k) != p.Seq {
		return 0
	}
	records, bytes, ns := 0, int64(0), 0
	for ns < hotSpans && records < maxRecords {
		sp := hotSpan{h: *h, from: k}
		for k < h.n && records < maxRecords {
			size := int64(h.buf.ends[h.first+k] - h.frameStart(k))
			end := h.off + int64(h.buf.ends[h.first+k]-h.start)
			if end > limit || (records > 0 && bytes+size > int64(maxBytes)) {
				break
			}
			records++
			bytes += size
			sp.lastSize += size
			sp.n++
			k++
		}
		if sp.n == 0 {
			break
		}
		h.buf.refs++
		spans[ns] = sp
		ns++
		if k < h.n || i+1 >= len(w.chunks) {
			break
		}
		next := &w.chunks[i+1]
		if next.seg != h.seg || next.off != h.endOff() {
			break
		}
		i, h, k = i+1, next, 0
	}
	return ns
}

// hotRecords appends the records of spans to recs.
func hotRecords(recs []Record, spans []hotSpan) []Record {
	for _, sp := range spans {
		h := &sp.h
		for k := sp.from; k < sp.from+sp.n; k++ {
			s, e := h.frameStart(k), h.buf.ends[h.first+k]
			recs = append(recs, Record{
				Pos:  Pos{Segment: h.seg, Offset: h.off + int64(e-h.start), Seq: h.seq + uint64(k) + 1},
				Data: h.buf.data[s+frameHeaderSize : e : e],
			})
		}
	}
	return recs
}

// hotKeepLocked marks memory lent to a consumer that may keep it for ever.
// l.mu must be held.
func (l *Log) hotKeepLocked(bufs []*hotBuf) {
	for _, hb := range bufs {
		hb.kept = true
	}
}

// hotReleaseLocked drops the references a released batch held. l.mu must
// be held.
func (l *Log) hotReleaseLocked(bufs []*hotBuf) {
	for _, hb := range bufs {
		l.hotUnrefLocked(hb)
	}
}
