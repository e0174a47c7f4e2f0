package buffer

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// Cursor file layout (see FORMAT.md). Version 2: a header block of
// cursorHeaderSize bytes, written once when the file is created, then two
// position slots, each in a sector of its own, that commits overwrite in
// place. Version 1 (read, and written only when the volume is too full to
// create a version-2 file): 36 bytes, magic, version, flags, segment,
// offset, seq and a CRC. Every version starts with magic and version at
// 0:6, and its first block (the first cursorHeaderSize bytes, or the whole
// file if it is shorter) ends with a CRC-32C of the rest of that block, so
// that a binary of an older version recognises a newer file as such.
const (
	cursorFileVersion = 2
	cursorV1Size      = 36
	cursorHeaderSize  = 4096
	cursorSlotStride  = 512
	cursorSlotSize    = 36
	cursorSlots       = 2
	cursorFileSize    = cursorHeaderSize + cursorSlots*cursorSlotStride
	cursorSuffix      = ".cursor"
	tmpSuffix         = ".tmp"
)

var cursorMagic = [4]byte{'S', 'K', 'F', 'C'}

var errBadCursor = errors.New("bad cursor file")

// cursorState is what a cursor file holds: the position of its newest
// valid slot, that slot's generation and index, and the file's version.
// A version-1 file has generation 0 and slot 0.
type cursorState struct {
	pos     Pos
	gen     uint64
	slot    int
	version uint16
}

// slotOffset is where slot i starts in a version-2 file.
func slotOffset(i int) int64 { return cursorHeaderSize + int64(i)*cursorSlotStride }

// encodeCursorFile returns a whole version-2 cursor file holding p in slot
// 0 at generation 1, slot 1 empty.
func encodeCursorFile(p Pos) []byte {
	b := make([]byte, cursorFileSize)
	copy(b[0:4], cursorMagic[:])
	binary.LittleEndian.PutUint16(b[4:6], cursorFileVersion)
	n := cursorHeaderSize - 4
	binary.LittleEndian.PutUint32(b[n:cursorHeaderSize], crc32.Checksum(b[:n], castagnoli))
	encodeSlot(b[slotOffset(0):slotOffset(0)+cursorSlotSize], 1, p)
	return b
}

// encodeSlot writes a slot (generation, segment, offset, seq, CRC-32C of
// the 32 bytes before it) into b, which holds cursorSlotSize bytes.
func encodeSlot(b []byte, gen uint64, p Pos) {
	binary.LittleEndian.PutUint64(b[0:8], gen)
	binary.LittleEndian.PutUint64(b[8:16], p.Segment)
	binary.LittleEndian.PutUint64(b[16:24], uint64(p.Offset))
	binary.LittleEndian.PutUint64(b[24:32], p.Seq)
	binary.LittleEndian.PutUint32(b[32:36], crc32.Checksum(b[0:32], castagnoli))
}

// decodeSlot parses a slot; ok is false for an empty, torn or otherwise
// invalid one.
func decodeSlot(b []byte) (gen uint64, p Pos, ok bool) {
	if crc32.Checksum(b[0:32], castagnoli) != binary.LittleEndian.Uint32(b[32:36]) {
		return 0, Pos{}, false
	}
	gen = binary.LittleEndian.Uint64(b[0:8])
	p = Pos{
		Segment: binary.LittleEndian.Uint64(b[8:16]),
		Offset:  int64(binary.LittleEndian.Uint64(b[16:24])),
		Seq:     binary.LittleEndian.Uint64(b[24:32]),
	}
	if gen == 0 || p.Offset < segmentHeaderSize {
		return 0, Pos{}, false
	}
	return gen, p, true
}

// encodeCursorV1 returns a version-1 cursor file for p.
func encodeCursorV1(p Pos) []byte {
	b := make([]byte, cursorV1Size)
	copy(b[0:4], cursorMagic[:])
	binary.LittleEndian.PutUint16(b[4:6], 1)
	binary.LittleEndian.PutUint64(b[8:16], p.Segment)
	binary.LittleEndian.PutUint64(b[16:24], uint64(p.Offset))
	binary.LittleEndian.PutUint64(b[24:32], p.Seq)
	binary.LittleEndian.PutUint32(b[32:36], crc32.Checksum(b[0:32], castagnoli))
	return b
}

// decodeCursor parses a cursor file of version 1 or 2. A file whose first
// block is valid but whose version is newer returns *VersionError; a
// version-2 file whose slots are both invalid, and anything else that is
// not a valid file, returns errBadCursor.
func decodeCursor(b []byte) (cursorState, error) {
	if len(b) < 10 || [4]byte(b[0:4]) != cursorMagic {
		return cursorState{}, errBadCursor
	}
	block := b[:min(len(b), cursorHeaderSize)]
	n := len(block) - 4
	if crc32.Checksum(block[:n], castagnoli) != binary.LittleEndian.Uint32(block[n:]) {
		return cursorState{}, errBadCursor
	}
	v := binary.LittleEndian.Uint16(b[4:6])
	switch {
	case v > cursorFileVersion:
		return cursorState{}, &VersionError{Version: v, Supported: cursorFileVersion}
	case v == 1 && len(b) == cursorV1Size:
		p := Pos{
			Segment: binary.LittleEndian.Uint64(b[8:16]),
			Offset:  int64(binary.LittleEndian.Uint64(b[16:24])),
			Seq:     binary.LittleEndian.Uint64(b[24:32]),
		}
		if p.Offset < segmentHeaderSize {
			return cursorState{}, errBadCursor
		}
		return cursorState{pos: p, version: 1}, nil
	case v == cursorFileVersion && len(b) == cursorFileSize:
		st := cursorState{version: cursorFileVersion}
		for i := range cursorSlots {
			at := slotOffset(i)
			if gen, p, ok := decodeSlot(b[at : at+cursorSlotSize]); ok && gen > st.gen {
				st.pos, st.gen, st.slot = p, gen, i
			}
		}
		if st.gen == 0 {
			return cursorState{}, errBadCursor // both slots torn or empty
		}
		return st, nil
	}
	return cursorState{}, errBadCursor
}
