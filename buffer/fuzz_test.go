package buffer

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// FuzzDecodeFrame: decodeFrame never panics, never returns a payload whose
// CRC does not match, never reads past maxLen, and round-trips what
// appendFrame writes.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(appendFrame(nil, []byte("hello")), int64(1<<20))
	f.Add(appendFrame(nil, nil), int64(0))
	f.Add(appendFrame(appendFrame(nil, []byte("a")), []byte("bc")), int64(10))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, int64(1<<30))
	f.Add([]byte{5, 0, 0, 0, 1, 2, 3, 4, 'x'}, int64(100))
	f.Add(make([]byte, 64), int64(64))
	f.Fuzz(func(t *testing.T, b []byte, maxLen int64) {
		payload, size, err := decodeFrame(b, maxLen)
		if err != nil {
			if payload != nil || size != 0 {
				t.Fatal("payload or size with an error")
			}
			return
		}
		n := binary.LittleEndian.Uint32(b[0:4])
		if int64(n) > maxLen || size != frameHeaderSize+int64(n) || int64(len(payload)) != int64(n) {
			t.Fatalf("size %d, payload %d, length field %d, max %d", size, len(payload), n, maxLen)
		}
		crc := crc32.Update(0, castagnoli, b[0:4])
		crc = crc32.Update(crc, castagnoli, payload)
		if crc != binary.LittleEndian.Uint32(b[4:8]) {
			t.Fatal("accepted a frame whose CRC does not match")
		}
		if !bytes.Equal(appendFrame(nil, payload), b[:size]) {
			t.Fatal("frame does not round-trip")
		}
	})
}

// FuzzDecodeCursor: decodeCursor never panics, accepts only files whose
// CRC matches, and round-trips what encodeCursor writes.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(Pos{Segment: 3, Offset: 100, Seq: 7}))
	f.Add(encodeCursor(Pos{Segment: 1, Offset: segmentHeaderSize}))
	f.Add([]byte("SKFC"))
	f.Add([]byte{})
	newer := append(encodeCursor(Pos{Segment: 1, Offset: 99}), 0, 0, 0, 0)
	binary.LittleEndian.PutUint16(newer[4:6], 9)
	binary.LittleEndian.PutUint32(newer[len(newer)-4:], crc32.Checksum(newer[:len(newer)-4], castagnoli))
	f.Add(newer)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeCursor(b)
		if err != nil {
			return
		}
		if len(b) != cursorFileSize || crc32.Checksum(b[:32], castagnoli) != binary.LittleEndian.Uint32(b[32:]) {
			t.Fatal("accepted a cursor file that is not a valid version 1 file")
		}
		if p.Offset < segmentHeaderSize {
			t.Fatalf("accepted offset %d inside the segment header", p.Offset)
		}
		if !bytes.Equal(encodeCursor(p), b) {
			t.Fatal("cursor file does not round-trip")
		}
	})
}

// FuzzDecodeSegmentHeader: never panics; accepts only valid headers.
func FuzzDecodeSegmentHeader(f *testing.F) {
	f.Add(encodeSegmentHeader(0))
	f.Add(encodeSegmentHeader(1 << 40))
	f.Add(make([]byte, segmentHeaderSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		seq, err := decodeSegmentHeader(b)
		if err != nil {
			return
		}
		if !bytes.Equal(encodeSegmentHeader(seq), b[:segmentHeaderSize]) {
			t.Fatal("accepted a header that does not round-trip")
		}
	})
}

// TestFrameCRC: the inline length CRC equals crc32 over the bytes.
func TestFrameCRC(t *testing.T) {
	for _, n := range []uint32{0, 1, 200, 1 << 20, 0xdeadbeef} {
		var l [4]byte
		binary.LittleEndian.PutUint32(l[:], n)
		payload := []byte("some payload")
		want := crc32.Checksum(append(l[:], payload...), castagnoli)
		if got := frameCRC(n, payload); got != want {
			t.Fatalf("n=%d: %08x, want %08x", n, got, want)
		}
	}
}
