package buffer

import "encoding/binary"

// The frame encoder written record by record, with a copy: what Append
// did before Batch. Tests hold Batch.fillHeaders and the decoders to it.

// appendFrame appends payload framed to dst and returns the extended slice.
// It does not allocate when dst has room.
func appendFrame(dst, payload []byte) []byte {
	return appendFrameCRC(dst, payload, frameCRC(uint32(len(payload)), payload))
}

// appendFrames appends each of recs framed to dst: the same bytes as
// appendFrame in a loop, with the checksums computed three at a time.
func appendFrames(dst []byte, recs [][]byte) []byte {
	for ; len(recs) >= 3; recs = recs[3:] {
		ca, cb, cc := frameCRC3(recs[0], recs[1], recs[2])
		dst = appendFrameCRC(dst, recs[0], ca)
		dst = appendFrameCRC(dst, recs[1], cb)
		dst = appendFrameCRC(dst, recs[2], cc)
	}
	for _, r := range recs {
		dst = appendFrame(dst, r)
	}
	return dst
}

// appendFrameCRC appends payload framed with its checksum crc.
func appendFrameCRC(dst, payload []byte, crc uint32) []byte {
	var h [frameHeaderSize]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(h[4:8], crc)
	dst = append(dst, h[:]...)
	return append(dst, payload...)
}
