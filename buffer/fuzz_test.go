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

// FuzzDecodeCursor: decodeCursor never panics; it accepts a version-1
// file only if it is 36 bytes with a matching CRC, and a version-2 file
// only if it has the full size, a valid header block and a valid slot,
// returning the valid slot with the highest generation; what it accepts
// round-trips through the encoders.
//
// With whole set, the input is b as it is; without, a version-2 file is
// assembled from b (its first bytes, the header block's CRC made valid)
// and the two slots' sectors s0 and s1, so that the fuzzer spends its
// time on slots rather than on 4 KiB of header.
func FuzzDecodeCursor(f *testing.F) {
	p := Pos{Segment: 3, Offset: 100, Seq: 7}
	var s0, s1 [cursorSlotSize]byte
	encodeSlot(s0[:], 1, p)
	encodeSlot(s1[:], 2, Pos{Segment: 4, Offset: 200, Seq: 9})
	hdr := encodeCursorFile(p)[:8]
	f.Add(encodeCursorV1(p), []byte{}, []byte{}, true)
	f.Add(encodeCursorV1(Pos{Segment: 1, Offset: segmentHeaderSize}), []byte{}, []byte{}, true)
	f.Add(encodeCursorFile(p), []byte{}, []byte{}, true)
	f.Add(hdr, s0[:], s1[:], false)
	f.Add(hdr, s0[:], s0[:], false)
	f.Add(hdr, s1[:16], s0[:], false)
	f.Add([]byte("SKFC"), []byte{}, []byte{}, true)
	f.Add([]byte{}, []byte{}, []byte{}, true)
	newer := append(encodeCursorV1(Pos{Segment: 1, Offset: 99}), 0, 0, 0, 0)
	binary.LittleEndian.PutUint16(newer[4:6], 9)
	binary.LittleEndian.PutUint32(newer[len(newer)-4:], crc32.Checksum(newer[:len(newer)-4], castagnoli))
	f.Add(newer, []byte{}, []byte{}, true)
	f.Fuzz(func(t *testing.T, b, s0, s1 []byte, whole bool) {
		if !whole {
			file := make([]byte, cursorFileSize)
			copy(file[:cursorHeaderSize-4], b)
			h := cursorHeaderSize - 4
			binary.LittleEndian.PutUint32(file[h:], crc32.Checksum(file[:h], castagnoli))
			copy(file[slotOffset(0):slotOffset(1)], s0)
			copy(file[slotOffset(1):], s1)
			b = file
		}
		st, err := decodeCursor(b)
		if err != nil {
			return
		}
		if st.pos.Offset < segmentHeaderSize {
			t.Fatalf("accepted offset %d inside the segment header", st.pos.Offset)
		}
		switch st.version {
		case 1:
			if len(b) != cursorV1Size || crc32.Checksum(b[:32], castagnoli) != binary.LittleEndian.Uint32(b[32:]) {
				t.Fatal("accepted a cursor file that is not a valid version 1 file")
			}
			if !bytes.Equal(encodeCursorV1(st.pos), b) {
				t.Fatal("version 1 cursor file does not round-trip")
			}
		case 2:
			h := cursorHeaderSize - 4
			if len(b) != cursorFileSize || crc32.Checksum(b[:h], castagnoli) != binary.LittleEndian.Uint32(b[h:cursorHeaderSize]) {
				t.Fatal("accepted a cursor file that is not a valid version 2 file")
			}
			var slot [cursorSlotSize]byte
			encodeSlot(slot[:], st.gen, st.pos)
			at := slotOffset(st.slot)
			if !bytes.Equal(slot[:], b[at:at+cursorSlotSize]) {
				t.Fatal("the slot returned does not round-trip")
			}
			other := slotOffset(1 - st.slot)
			if gen, _, ok := decodeSlot(b[other : other+cursorSlotSize]); ok && gen > st.gen {
				t.Fatalf("returned generation %d, but the other slot holds %d", st.gen, gen)
			}
		default:
			t.Fatalf("accepted version %d", st.version)
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
