package buffer

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// writeLog appends records of the given sizes, numbered from 0, each its
// own batch, and returns the offset after each frame in the active segment.
func writeLog(t *testing.T, o Options, sizes []int) (ends []int64) {
	t.Helper()
	l := testOpen(t, o)
	for i, n := range sizes {
		appendN(t, l, uint64(i), 1, 1, n)
		l.mu.Lock()
		ends = append(ends, l.pubEnd)
		l.mu.Unlock()
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return ends
}

func readAll(t *testing.T, o Options) ([]uint64, *Log) {
	t.Helper()
	l := testOpen(t, o)
	c, err := l.Cursor(o.Cursors[0])
	if err != nil {
		t.Fatal(err)
	}
	return nums(drain(t, c)), l
}

// TestTornTailEveryOffset cuts the last segment at every byte offset of
// its last frames (and of its header): the records recovered are always a
// prefix of what was written, exactly the frames that are whole, and
// appends work afterwards.
func TestTornTailEveryOffset(t *testing.T) {
	src := t.TempDir()
	sizes := []int{40, 9, 300, 8, 77, 120, 33}
	base := Options{Dir: src, Fsync: FsyncNever, Cursors: []string{"a"}}
	ends := writeLog(t, base, sizes)
	seg := segFiles(t, src)
	if len(seg) != 1 {
		t.Fatalf("%d segments", len(seg))
	}
	data, err := os.ReadFile(seg[0])
	if err != nil {
		t.Fatal(err)
	}
	// Every offset in the header, then every offset of the last frames.
	var cuts []int
	for cut := 0; cut <= segmentHeaderSize; cut++ {
		cuts = append(cuts, cut)
	}
	for cut := int(ends[len(ends)-4]) + 1; cut < len(data); cut++ {
		cuts = append(cuts, cut)
	}
	for _, cut := range cuts {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(seg[0])), data[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		o := base
		o.Dir = dir
		got, l := readAll(t, o)
		whole := 0
		for whole < len(ends) && ends[whole] <= int64(cut) {
			whole++
		}
		if len(got) != whole {
			t.Fatalf("cut at %d: %d records recovered, want %d", cut, len(got), whole)
		}
		for i, g := range got {
			if g != uint64(i) {
				t.Fatalf("cut at %d: record %d is %d", cut, i, g)
			}
		}
		appendN(t, l, 1000, 2, 2, 50)
		c, _ := l.Cursor("a")
		if after := nums(drain(t, c)); len(after) != 2 || after[0] != 1000 || after[1] != 1001 {
			t.Fatalf("cut at %d: appended after recovery, read %v", cut, after)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// frameFields names byte ranges of a frame to flip bits in.
var frameFields = map[string]func(size int) (from, to int){
	"length":  func(int) (int, int) { return 0, 4 },
	"crc":     func(int) (int, int) { return 4, 8 },
	"payload": func(n int) (int, int) { return 8, n },
}

// TestBitFlipTail flips each bit of each field of the last frame: the
// frame is cut off as a torn tail, the others survive.
func TestBitFlipTail(t *testing.T) {
	src := t.TempDir()
	base := Options{Dir: src, Cursors: []string{"a"}}
	ends := writeLog(t, base, []int{50, 60, 70})
	seg := segFiles(t, src)[0]
	data, _ := os.ReadFile(seg)
	start, end := ends[1], ends[2]
	for name, field := range frameFields {
		t.Run(name, func(t *testing.T) {
			from, to := field(int(end - start))
			for i := from; i < to; i++ {
				bits := []int{0, 1, 2, 3, 4, 5, 6, 7}
				if name == "payload" {
					bits = []int{i % 8} // one bit per payload byte
				}
				for _, bit := range bits {
					dir := t.TempDir()
					b := append([]byte(nil), data...)
					b[start+int64(i)] ^= 1 << bit
					if err := os.WriteFile(filepath.Join(dir, filepath.Base(seg)), b, 0o644); err != nil {
						t.Fatal(err)
					}
					o := base
					o.Dir = dir
					got, l := readAll(t, o)
					if len(got) != 2 || got[0] != 0 || got[1] != 1 {
						t.Fatalf("byte %d bit %d: read %v", i, bit, got)
					}
					if err := l.Close(); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

// TestBitFlipSealed flips bits in a frame in the middle of a sealed
// segment: readers skip exactly that record by resynchronising on the next
// frame, count it once, and every other record is delivered.
func TestBitFlipSealed(t *testing.T) {
	src := t.TempDir()
	base := Options{Dir: src, SegmentBytes: 4 << 10, Cursors: []string{"a", "b"}}
	sizes := make([]int, 60)
	for i := range sizes {
		sizes[i] = 100 + i
	}
	writeLog(t, base, sizes)
	segs := segFiles(t, src)
	if len(segs) < 3 {
		t.Fatalf("%d segments", len(segs))
	}
	first, _ := os.ReadFile(segs[0])
	// Find the third frame of the first (sealed) segment.
	off := int64(segmentHeaderSize)
	for range 2 {
		_, n, err := decodeFrame(first[off:], 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		off += n
	}
	_, size, _ := decodeFrame(first[off:], 1<<20)
	victim := recNum(first[off+frameHeaderSize:])
	for name, field := range frameFields {
		t.Run(name, func(t *testing.T) {
			from, to := field(int(size))
			for _, i := range []int{from, (from + to) / 2, to - 1} {
				dir := t.TempDir()
				for _, s := range segs {
					b, _ := os.ReadFile(s)
					if s == segs[0] {
						b[off+int64(i)] ^= 0x10
					}
					if err := os.WriteFile(filepath.Join(dir, filepath.Base(s)), b, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				o := base
				o.Dir = dir
				l := testOpen(t, o)
				for _, name := range o.Cursors {
					c, _ := l.Cursor(name)
					got := nums(drain(t, c))
					if len(got) != len(sizes)-1 {
						t.Fatalf("byte %d: cursor %s read %d records, want %d", i, name, len(got), len(sizes)-1)
					}
					want := uint64(0)
					for _, g := range got {
						if want == victim {
							want++
						}
						if g != want {
							t.Fatalf("byte %d: read %d, want %d", i, g, want)
						}
						want++
					}
					if v := testutil.ToFloat64(l.m.dropped.WithLabelValues(name, reasonCorrupt)); v != 1 {
						t.Fatalf("dropped{corrupt} for %s = %v, want 1", name, v)
					}
				}
				if v := testutil.ToFloat64(l.m.corrupt); v != 1 {
					t.Fatalf("corrupt regions %v, want 1 (counted once for two cursors)", v)
				}
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestDamagedSegmentHeader: a sealed segment whose header is damaged is
// quarantined, the others are read, and Open still succeeds.
func TestDamagedSegmentHeader(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir, SegmentBytes: 4 << 10, Cursors: []string{"a"}}
	sizes := make([]int, 100)
	for i := range sizes {
		sizes[i] = 100
	}
	writeLog(t, o, sizes)
	segs := segFiles(t, dir)
	b, _ := os.ReadFile(segs[1])
	b[9] ^= 1 // in firstSeq: the header CRC fails
	if err := os.WriteFile(segs[1], b, 0o644); err != nil {
		t.Fatal(err)
	}
	got, l := readAll(t, o)
	defer l.Close()
	if _, err := os.Stat(segs[1] + corruptSuffix); err != nil {
		t.Fatalf("not quarantined: %v", err)
	}
	lost := (len(b) - segmentHeaderSize) / int(frameSize(100))
	if len(got) != len(sizes)-lost {
		t.Fatalf("read %d records, want %d", len(got), len(sizes)-lost)
	}
	if v := testutil.ToFloat64(l.m.recovery.WithLabelValues("quarantined_segment")); v != 1 {
		t.Fatalf("quarantined_segment = %v", v)
	}
}

// TestNewerVersion: a segment or cursor file of a newer format version
// makes Open fail with *VersionError and leaves the files untouched.
func TestNewerVersion(t *testing.T) {
	bump := func(b []byte, crcAt int, v uint16) {
		binary.LittleEndian.PutUint16(b[4:6], v)
		binary.LittleEndian.PutUint32(b[crcAt:], crc32.Checksum(b[:crcAt], castagnoli))
	}
	cases := map[string]func(dir string) string{
		"segment": func(dir string) string {
			p := segFiles(t, dir)[0]
			b, _ := os.ReadFile(p)
			bump(b, 20, 3)
			_ = os.WriteFile(p, b, 0o644)
			return p
		},
		"cursor": func(dir string) string {
			p := filepath.Join(dir, "a"+cursorSuffix)
			b, _ := os.ReadFile(p)
			b = append(b, 0, 0, 0, 0) // a newer, longer layout
			bump(b, cursorHeaderSize-4, 3)
			_ = os.WriteFile(p, b, 0o644)
			return p
		},
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			o := Options{Dir: dir, Cursors: []string{"a"}}
			writeLog(t, o, []int{10, 20})
			p := damage(dir)
			before, _ := os.ReadFile(p)
			_, err := Open(o)
			var ve *VersionError
			if !errors.As(err, &ve) || ve.Version != 3 {
				t.Fatalf("Open: %v, want *VersionError", err)
			}
			after, _ := os.ReadFile(p)
			if string(before) != string(after) {
				t.Fatal("file changed")
			}
		})
	}
}

// TestDamagedCursorFile: a cursor file that fails its CRC makes the sink
// restart at the oldest retained record (duplicates, never loss).
func TestDamagedCursorFile(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir, Cursors: []string{"a"}}
	l := testOpen(t, o)
	appendN(t, l, 0, 10, 10, 20)
	c, _ := l.Cursor("a")
	recs := drain(t, c)
	if err := c.Commit(recs[4].Pos); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "a"+cursorSuffix)
	b, _ := os.ReadFile(p)
	b[20] ^= 0xff
	_ = os.WriteFile(p, b, 0o644)
	got, l := readAll(t, o)
	defer l.Close()
	checkSeq(t, got, 0, 10)
	if v := testutil.ToFloat64(l.m.recovery.WithLabelValues("cursor_reset")); v != 1 {
		t.Fatalf("cursor_reset = %v", v)
	}
}

// TestCursorPastDurableEnd: a cursor committed past what survived (power
// loss under interval) is moved to the end: new records are delivered.
func TestCursorPastDurableEnd(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir, Cursors: []string{"a"}}
	l := testOpen(t, o)
	appendN(t, l, 0, 10, 10, 20)
	c, _ := l.Cursor("a")
	recs := drain(t, c)
	if err := c.Commit(recs[9].Pos); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	seg := segFiles(t, dir)[0]
	if err := os.Truncate(seg, recs[5].Pos.Offset); err != nil {
		t.Fatal(err)
	}
	l = testOpen(t, o)
	defer l.Close()
	appendN(t, l, 100, 1, 1, 20)
	c, _ = l.Cursor("a")
	if got := nums(drain(t, c)); len(got) != 1 || got[0] != 100 {
		t.Fatalf("read %v, want [100]", got)
	}
	if v := testutil.ToFloat64(l.m.recovery.WithLabelValues("cursor_clamped")); v != 1 {
		t.Fatalf("cursor_clamped = %v", v)
	}
}

var _ = context.Background

// TestSegmentChangedBehindOurBack: a sealed segment truncated or deleted
// by someone else while the buffer is open: its lost records are skipped
// and counted, the readers move on, nothing spins or stalls.
func TestSegmentChangedBehindOurBack(t *testing.T) {
	for name, damage := range map[string]func(path string) error{
		"truncated": func(p string) error { return os.Truncate(p, 1000) },
		"deleted":   os.Remove,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			// The hot window would serve the records from memory, as
			// they were appended: this is about the disk path.
			l := testOpen(t, Options{Dir: dir, SegmentBytes: 4 << 10, HotBytes: -1, Cursors: []string{"a"}})
			defer l.Close()
			appendN(t, l, 0, 200, 10, 100)
			segs := segFiles(t, dir)
			if err := damage(segs[1]); err != nil {
				t.Fatal(err)
			}
			c, _ := l.Cursor("a")
			got := nums(drain(t, c))
			if len(got) >= 200 || got[len(got)-1] != 199 {
				t.Fatalf("read %d records ending %d", len(got), got[len(got)-1])
			}
			for i := 1; i < len(got); i++ {
				if got[i] <= got[i-1] {
					t.Fatalf("out of order at %d: %d after %d", i, got[i], got[i-1])
				}
			}
			if v := testutil.ToFloat64(l.m.dropped.WithLabelValues("a", reasonCorrupt)); v == 0 {
				t.Fatal("loss not counted")
			}
		})
	}
}

// TestTinyMaxBytes: maxBytes smaller than a frame header still returns
// one whole record per call.
func TestTinyMaxBytes(t *testing.T) {
	l := testOpen(t, Options{Dir: t.TempDir(), Cursors: []string{"a"}})
	defer l.Close()
	appendN(t, l, 0, 3, 3, 100)
	c, _ := l.Cursor("a")
	for i := range 3 {
		recs, err := c.Next(context.Background(), 10, 1)
		if err != nil || len(recs) != 1 || recNum(recs[0].Data) != uint64(i) {
			t.Fatalf("Next %d: %v, %v", i, nums(recs), err)
		}
	}
}

// TestNewSegmentTornDuringCreation: a crash while creating the next
// segment leaves an empty or header-less file; it is removed and the
// previous segment becomes the tail again, with nothing lost.
func TestNewSegmentTornDuringCreation(t *testing.T) {
	for name, content := range map[string][]byte{
		"empty":          nil,
		"partial header": encodeSegmentHeader(7)[:10],
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			o := Options{Dir: dir, SegmentBytes: 4 << 10, Cursors: []string{"a"}}
			writeLog(t, o, sameSizes(42, 100))
			segs := segFiles(t, dir)
			last, _ := parseSegmentName(filepath.Base(segs[len(segs)-1]))
			if err := os.WriteFile(filepath.Join(dir, segmentName(last+1)), content, 0o644); err != nil {
				t.Fatal(err)
			}
			got, l := readAll(t, o)
			defer l.Close()
			checkSeq(t, got, 0, 42)
			appendN(t, l, 42, 1, 1, 100)
			c, _ := l.Cursor("a")
			checkSeq(t, nums(drain(t, c)), 42, 1)
		})
	}
}

// TestQuarantineDeletedFirstWhenFull: a quarantined file is charged to the
// bound and is the first thing deleted when space runs out.
func TestQuarantineDeletedFirstWhenFull(t *testing.T) {
	dir := t.TempDir()
	q := filepath.Join(dir, segmentName(1)+corruptSuffix)
	if err := os.WriteFile(q, make([]byte, 100<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	l := testOpen(t, Options{Dir: dir, MaxBytes: 256 << 10, SegmentBytes: 32 << 10, WhenFull: WhenFullDropNewest, Cursors: []string{"a"}})
	defer l.Close()
	if s := l.Stats(); s.Bytes < 100<<10 {
		t.Fatalf("quarantined file not charged: %+v", s)
	}
	appendN(t, l, 0, 1000, 50, 200) // ~208 KiB: more than the room left beside it
	if _, err := os.Stat(q); !os.IsNotExist(err) {
		t.Fatalf("quarantined file still there: %v", err)
	}
	c, _ := l.Cursor("a")
	checkSeq(t, nums(drain(t, c)), 0, 1000) // nothing dropped: the room was found
	checkBound(t, l)
}

// sameSizes returns n sizes of size bytes.
func sameSizes(n, size int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = size
	}
	return s
}
