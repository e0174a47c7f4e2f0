package buffer

import "encoding/binary"

// Batch holds records already laid out as frames, so that AppendBatch
// writes them without copying: each record is preceded by room for its
// frame header, which AppendBatch fills in place. A producer that encodes
// its records anyway (the tailer) encodes them straight into a Batch:
//
//	d := b.Begin()
//	d = append(d, payload...) // or any append-style encoder
//	b.End(d)
//
// The zero Batch is empty and ready to use; Reset empties it and keeps its
// memory. A Batch is not safe for concurrent use.
type Batch struct {
	// data holds the frames back to back. A frame's header is filled only
	// by AppendBatch; until then it is whatever Begin left there.
	data []byte
	// ends[i] is where frame i ends in data; frame i starts at ends[i-1]
	// (0 for the first).
	ends []int
}

// zeroHeader is what Begin reserves.
var zeroHeader [frameHeaderSize]byte

// Begin reserves room for the next record's frame header at the end of the
// batch and returns the batch's memory extended by it. The caller appends
// exactly one payload to the returned slice and hands the result to End
// before doing anything else with the batch.
func (b *Batch) Begin() []byte {
	return append(b.data, zeroHeader[:]...)
}

// End completes the record begun by Begin: d is the slice Begin returned
// with the payload appended. It panics if d is shorter than Begin's
// result, which means End was called without Begin.
func (b *Batch) End(d []byte) {
	if len(d) < len(b.data)+frameHeaderSize {
		panic("buffer: Batch.End without Begin")
	}
	b.data = d
	b.ends = append(b.ends, len(d))
}

// Add appends a copy of payload as one record.
func (b *Batch) Add(payload []byte) {
	b.End(append(b.Begin(), payload...))
}

// Len returns the number of records in the batch.
func (b *Batch) Len() int { return len(b.ends) }

// Size returns the bytes the records take once framed: what appending the
// batch writes.
func (b *Batch) Size() int { return len(b.data) }

// Record returns the payload of record i, aliasing the batch's memory.
func (b *Batch) Record(i int) []byte {
	return b.data[b.start(i)+frameHeaderSize : b.ends[i] : b.ends[i]]
}

// Reset empties the batch, keeping its memory for reuse.
func (b *Batch) Reset() {
	b.data = b.data[:0]
	b.ends = b.ends[:0]
}

// start is where frame i starts in data.
func (b *Batch) start(i int) int {
	if i == 0 {
		return 0
	}
	return b.ends[i-1]
}

// fillHeaders writes every frame's header (length and CRC-32C) in place,
// the checksums three at a time as appendFrames computes them.
func (b *Batch) fillHeaders() {
	i, start := 0, 0
	for ; i+3 <= len(b.ends); i += 3 {
		a := b.data[start:b.ends[i]]
		c := b.data[b.ends[i]:b.ends[i+1]]
		d := b.data[b.ends[i+1]:b.ends[i+2]]
		ca, cc, cd := frameCRC3(a[frameHeaderSize:], c[frameHeaderSize:], d[frameHeaderSize:])
		putHeader(a, ca)
		putHeader(c, cc)
		putHeader(d, cd)
		start = b.ends[i+2]
	}
	for ; i < len(b.ends); i++ {
		f := b.data[start:b.ends[i]]
		p := f[frameHeaderSize:]
		putHeader(f, frameCRC(uint32(len(p)), p))
		start = b.ends[i]
	}
}

// putHeader writes the header of frame f (header and payload) with
// checksum crc.
func putHeader(f []byte, crc uint32) {
	binary.LittleEndian.PutUint32(f[0:4], uint32(len(f)-frameHeaderSize))
	binary.LittleEndian.PutUint32(f[4:8], crc)
}
