package buffer

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// Cursor file layout, version 1 (see FORMAT.md): magic, version, flags,
// segment, offset, seq, then a CRC-32C of everything before it. Every
// version ends with that CRC and keeps magic and version at 0:6.
const (
	cursorFileSize    = 36
	cursorFileVersion = 1
	cursorSuffix      = ".cursor"
	tmpSuffix         = ".tmp"
)

var cursorMagic = [4]byte{'S', 'K', 'F', 'C'}

var errBadCursor = errors.New("bad cursor file")

// encodeCursor returns the cursor file contents for p.
func encodeCursor(p Pos) []byte {
	b := make([]byte, cursorFileSize)
	copy(b[0:4], cursorMagic[:])
	binary.LittleEndian.PutUint16(b[4:6], cursorFileVersion)
	binary.LittleEndian.PutUint64(b[8:16], p.Segment)
	binary.LittleEndian.PutUint64(b[16:24], uint64(p.Offset))
	binary.LittleEndian.PutUint64(b[24:32], p.Seq)
	binary.LittleEndian.PutUint32(b[32:36], crc32.Checksum(b[0:32], castagnoli))
	return b
}

// decodeCursor parses a cursor file. A valid file of a newer version
// returns *VersionError; anything else that is not a valid version-1 file
// returns errBadCursor.
func decodeCursor(b []byte) (Pos, error) {
	if len(b) < 10 || [4]byte(b[0:4]) != cursorMagic {
		return Pos{}, errBadCursor
	}
	n := len(b) - 4
	if crc32.Checksum(b[:n], castagnoli) != binary.LittleEndian.Uint32(b[n:]) {
		return Pos{}, errBadCursor
	}
	if v := binary.LittleEndian.Uint16(b[4:6]); v != cursorFileVersion {
		if v > cursorFileVersion {
			return Pos{}, &VersionError{Version: v, Supported: cursorFileVersion}
		}
		return Pos{}, errBadCursor
	}
	if len(b) != cursorFileSize {
		return Pos{}, errBadCursor
	}
	p := Pos{
		Segment: binary.LittleEndian.Uint64(b[8:16]),
		Offset:  int64(binary.LittleEndian.Uint64(b[16:24])),
		Seq:     binary.LittleEndian.Uint64(b[24:32]),
	}
	if p.Offset < segmentHeaderSize {
		return Pos{}, errBadCursor
	}
	return p, nil
}
