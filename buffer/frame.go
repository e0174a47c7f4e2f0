package buffer

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// frameHeaderSize is the length of a frame's header: u32 payload length,
// then u32 CRC-32C over those length bytes and the payload.
const frameHeaderSize = 8

// castagnoli is built once: crc32.MakeTable allocates and the table is
// read-only afterwards.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// errShortFrame means b ends before the frame does: at the tail of a
	// segment it is a torn write, elsewhere a caller must read more.
	errShortFrame = errors.New("short frame")
	// errBadFrame means the bytes are not a frame: the length is
	// implausible or the checksum does not match.
	errBadFrame = errors.New("bad frame")
)

// frameSize is the number of bytes a payload of n bytes takes on disk.
func frameSize(n int) int64 { return frameHeaderSize + int64(n) }

// frameCRC is the CRC-32C of the little-endian length n followed by
// payload. The four length bytes go through the table inline: a call to
// crc32.Update for them costs as much as the CRC of a short record.
func frameCRC(n uint32, payload []byte) uint32 {
	crc := ^uint32(0)
	for i := 0; i < 4; i++ {
		crc = castagnoli[byte(crc)^byte(n>>(8*i))] ^ (crc >> 8)
	}
	return crc32.Update(^crc, castagnoli, payload)
}

// frameLen reads the payload length from a frame header. It reports
// errShortFrame when b is shorter than a header and errBadFrame when the
// length exceeds maxLen.
func frameLen(b []byte, maxLen int64) (int64, error) {
	if len(b) < frameHeaderSize {
		return 0, errShortFrame
	}
	n := int64(binary.LittleEndian.Uint32(b[0:4]))
	if n > maxLen {
		return 0, errBadFrame
	}
	return n, nil
}

// decodeFrame decodes the frame at the start of b. It returns the payload
// (aliasing b) and the frame's total size. maxLen bounds the payload length
// and is checked before anything else is read, so a corrupt length never
// makes a caller allocate or read past what it expects.
//
// A frame is accepted only when its CRC matches; any other input yields
// errShortFrame (b could be a prefix of a valid frame) or errBadFrame.
func decodeFrame(b []byte, maxLen int64) (payload []byte, size int64, err error) {
	n, err := frameLen(b, maxLen)
	if err != nil {
		return nil, 0, err
	}
	size = frameHeaderSize + n
	if int64(len(b)) < size {
		return nil, 0, errShortFrame
	}
	if frameCRC(uint32(n), b[frameHeaderSize:size]) != binary.LittleEndian.Uint32(b[4:8]) {
		return nil, 0, errBadFrame
	}
	return b[frameHeaderSize:size:size], size, nil
}
