package buffer

import "sort"

// This file holds the segment lifecycle and capacity rules as pure
// functions over the in-memory state, so that they can be tested without
// disk or goroutines.

// blockSize is the allocation unit the bound counts in: a file of n bytes
// is charged diskSize(n), which is what du and a volume's sizeLimit see on
// common file systems.
const blockSize = 4096

// diskSize rounds n up to whole blocks.
func diskSize(n int64) int64 { return (n + blockSize - 1) &^ (blockSize - 1) }

// segInfo describes one segment. The last segment of a Log is the active
// one, which Append writes; all others are sealed and never change.
type segInfo struct {
	id       uint64
	firstSeq uint64 // sequence number of its first record
	size     int64  // bytes in the file (for the active one: bytes written)
}

// Pos is a position in the log just after a record: the next record, if
// any, starts there. Positions are ordered by (Segment, Offset); Seq is the
// record count up to the position, used for lag. The zero Pos is before
// every record.
type Pos struct {
	Segment uint64 // segment ID
	Offset  int64  // byte offset in that segment
	Seq     uint64 // sequence number of the next record
}

// Less reports whether p is before q.
func (p Pos) Less(q Pos) bool {
	if p.Segment != q.Segment {
		return p.Segment < q.Segment
	}
	return p.Offset < q.Offset
}

// startOf is the position before the first record of s.
func startOf(s segInfo) Pos { return Pos{Segment: s.id, Offset: segmentHeaderSize, Seq: s.firstSeq} }

// segIndex returns the index of the first segment whose ID is at least id
// (len(segs) if none).
func segIndex(segs []segInfo, id uint64) int {
	return sort.Search(len(segs), func(i int) bool { return segs[i].id >= id })
}

// normalize maps p onto the segments that exist: a position in a deleted
// or missing segment moves to the start of the next one that exists, a
// position at the end of a sealed segment moves to the start of the next
// segment, and a position past the end of the log moves to its end. It
// returns the index of the segment p lands in. segs must not be empty;
// end is the readable end of the active segment.
func normalize(segs []segInfo, end int64, endSeq uint64, p Pos) (Pos, int) {
	last := len(segs) - 1
	i := segIndex(segs, p.Segment)
	if i > last {
		return Pos{Segment: segs[last].id, Offset: end, Seq: endSeq}, last
	}
	if segs[i].id != p.Segment || p.Offset < segmentHeaderSize {
		p = startOf(segs[i])
	}
	for i < last && p.Offset >= segs[i].size {
		i++
		p = startOf(segs[i])
	}
	if i == last && p.Offset > end {
		p = Pos{Segment: segs[last].id, Offset: end, Seq: endSeq}
	}
	return p, i
}

// collectible returns how many leading segments no cursor needs: those
// that every cursor position is at or past the end of. The active segment
// is never collectible. With no cursors every sealed segment is.
func collectible(segs []segInfo, cursors []Pos) int {
	if len(segs) < 2 {
		return 0
	}
	k := len(segs) - 1
	for _, p := range cursors {
		i := segIndex(segs, p.Segment)
		if i < len(segs) && segs[i].id == p.Segment && p.Offset >= segs[i].size && i < len(segs)-1 {
			i++ // at the end of a sealed segment: needs only the next one
		}
		k = min(k, i)
	}
	return k
}

// lag is how far p is behind the end of the log.
func lag(segs []segInfo, end int64, endSeq uint64, p Pos) (records, bytes int64) {
	p, i := normalize(segs, end, endSeq, p)
	last := len(segs) - 1
	for j := i; j <= last; j++ {
		size := segs[j].size
		if j == last {
			size = end
		}
		bytes += size - segmentHeaderSize
	}
	bytes -= p.Offset - segmentHeaderSize
	if endSeq > p.Seq {
		records = int64(endSeq - p.Seq)
	}
	return records, bytes
}

// plan decides how many of the frames ending at ends (the first starting
// at start, in a Batch's data) the next write takes: those that fit in
// the active segment (size bytes now, sealed at segBytes) and in free bytes
// of the bound. roll means the active segment must be sealed first because
// the next record does not fit in it; n is 0 without roll when nothing fits
// in the bound now.
func plan(ends []int, start int, size, segBytes, free int64) (n int, bytes int64, roll bool) {
	used := diskSize(size)
	if len(ends) > 0 {
		// The usual case: all of it fits, known without a pass over the
		// records.
		all := int64(ends[len(ends)-1] - start)
		if size+all <= segBytes && diskSize(size+all)-used <= free {
			return len(ends), all, false
		}
	}
	for n < len(ends) {
		f := int64(ends[n] - start)
		if size+bytes+f > segBytes && !(n == 0 && size == segmentHeaderSize) {
			// A record larger than a segment gets an empty segment of its own.
			break
		}
		if diskSize(size+bytes+f)-used > free {
			return n, bytes, false
		}
		bytes += f
		start = ends[n]
		n++
	}
	if n == 0 && len(ends) > 0 {
		return 0, 0, true
	}
	return n, bytes, false
}

// planWhole is plan for a batch appended whole (AppendAll): all of it
// goes into the active segment, or none. It reports the need to roll when
// the batch does not fit in what is left of a segment that has records
// (an empty one takes a batch larger than a segment, like a large record).
func planWhole(ends []int, size, segBytes, free int64) (n int, bytes int64, roll bool) {
	all := int64(ends[len(ends)-1])
	if size+all > segBytes && size > segmentHeaderSize {
		return 0, 0, true
	}
	if diskSize(size+all)-diskSize(size) > free {
		return 0, 0, false
	}
	return len(ends), all, false
}

// rollFits reports whether a new segment fits in free bytes.
func rollFits(free int64) bool { return diskSize(segmentHeaderSize) <= free }

// dropSkips returns, for a cursor whose progress (the later of what it
// committed and what it has read) is p, how many records it skips when the
// oldest segment is dropped: those between p and the next segment.
func dropSkips(segs []segInfo, p Pos) int64 {
	if len(segs) < 2 || p.Segment > segs[0].id {
		return 0
	}
	if p.Segment < segs[0].id {
		p = startOf(segs[0])
	}
	if segs[1].firstSeq > p.Seq {
		return int64(segs[1].firstSeq - p.Seq)
	}
	return 0
}
