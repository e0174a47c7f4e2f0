package buffer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// batchOf lays payloads out in a Batch.
func batchOf(payloads [][]byte) *Batch {
	var b Batch
	for _, p := range payloads {
		b.Add(p)
	}
	return &b
}

// mixedRecs returns n numbered records of varied sizes (8..707 bytes), so
// that the three-at-a-time checksums see unequal lengths.
func mixedRecs(from uint64, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = rec(from+uint64(i), 8+(int(from)+i)*37%700)
	}
	return out
}

func TestBatchLayout(t *testing.T) {
	var b Batch
	b.Add([]byte("ab"))
	d := b.Begin()
	if len(d) != b.Size()+frameHeaderSize {
		t.Fatalf("Begin reserved %d bytes, want %d", len(d)-b.Size(), frameHeaderSize)
	}
	b.End(append(d, "cde"...))
	b.Add(nil)
	if b.Len() != 3 || b.Size() != 3*frameHeaderSize+5 {
		t.Fatalf("Len %d, Size %d", b.Len(), b.Size())
	}
	for i, want := range []string{"ab", "cde", ""} {
		if got := string(b.Record(i)); got != want {
			t.Fatalf("Record(%d) = %q, want %q", i, got, want)
		}
	}
	b.Reset()
	if b.Len() != 0 || b.Size() != 0 {
		t.Fatalf("after Reset: Len %d, Size %d", b.Len(), b.Size())
	}
	defer func() {
		if recover() == nil {
			t.Fatal("End without Begin did not panic")
		}
	}()
	b.End([]byte("x"))
}

// TestAppendBatchMatchesAppend: AppendBatch writes the very bytes Append
// writes (the format is unchanged), including batches split across segment
// rolls, and cursors read them back.
func TestAppendBatchMatchesAppend(t *testing.T) {
	const n = 3000 // ~1 MiB framed: about 32 segments of 32 KiB
	viaAppend, viaBatch := t.TempDir(), t.TempDir()
	for _, dir := range []string{viaAppend, viaBatch} {
		l := testOpen(t, Options{Dir: dir, SegmentBytes: 32 << 10, Cursors: []string{"a"}})
		for i := 0; i < n; i += 500 {
			recs := mixedRecs(uint64(i), 500)
			var err error
			if dir == viaAppend {
				err = l.Append(context.Background(), recs)
			} else {
				err = l.AppendBatch(context.Background(), batchOf(recs))
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		c, _ := l.Cursor("a")
		got := drain(t, c)
		checkSeq(t, nums(got), 0, n)
		want := mixedRecs(0, n)
		for i := range got {
			if !bytes.Equal(got[i].Data, want[i]) {
				t.Fatalf("record %d differs", i)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	a, b := segFiles(t, viaAppend), segFiles(t, viaBatch)
	if len(a) != len(b) || len(a) < 10 {
		t.Fatalf("%d and %d segments, want the same number and many", len(a), len(b))
	}
	for i := range a {
		x, _ := os.ReadFile(a[i])
		y, _ := os.ReadFile(b[i])
		if !bytes.Equal(x, y) {
			t.Fatalf("segment %d differs between Append and AppendBatch", i)
		}
	}
}

// TestAppendBatchFillsHeadersInPlace: the headers are written into the
// batch's own memory, and every call writes them again, whatever they
// held (so a reused or tampered batch still lands intact).
func TestAppendBatchFillsHeadersInPlace(t *testing.T) {
	// Without the hot window the batch keeps its memory (with it, the
	// window takes the memory: TestHotWindowTakesBatchMemory).
	l := testOpen(t, Options{Dir: t.TempDir(), HotBytes: -1, Cursors: []string{"a"}})
	defer l.Close()
	recs := mixedRecs(0, 100)
	b := batchOf(recs)
	if err := l.AppendBatch(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.data, appendFrames(nil, recs)) {
		t.Fatal("the batch does not hold the frames after AppendBatch")
	}
	for i := range b.ends {
		copy(b.data[b.start(i):], []byte{0xff, 0xff, 0xff, 0xff, 0xde, 0xad, 0xbe, 0xef})
	}
	if err := l.AppendBatch(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	c, _ := l.Cursor("a")
	got := nums(drain(t, c))
	checkSeq(t, got[:100], 0, 100)
	checkSeq(t, got[100:], 0, 100)
}

// TestAppendBatchWritesBatchMemory: the write hands the kernel the batch's
// memory itself, in order, with no copy, also when a segment roll splits
// the batch in two writes.
func TestAppendBatchWritesBatchMemory(t *testing.T) {
	fs := &faultFS{}
	l := testOpenFS(t, Options{Dir: t.TempDir(), SegmentBytes: 32 << 10}, fs)
	defer l.Close()
	appendN(t, l, 0, 100, 100, 200) // 20 KiB of the 32 KiB segment
	b := batchOf(mixedRecs(100, 100))
	fs.set(func(f *faultFS) { f.track = true })
	if err := l.AppendBatch(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if len(fs.wrote) != 2 {
		t.Fatalf("%d writes, want 2 (one per segment)", len(fs.wrote))
	}
	off := 0
	for i, w := range fs.wrote {
		if &w[0] != &b.data[off] {
			t.Fatalf("write %d is not the batch's memory at offset %d", i, off)
		}
		off += len(w)
	}
	if off != b.Size() {
		t.Fatalf("wrote %d bytes, batch has %d", off, b.Size())
	}
}

func TestAppendBatchTooLarge(t *testing.T) {
	l := testOpen(t, Options{Dir: t.TempDir(), MaxBytes: 1 << 20})
	defer l.Close()
	b := batchOf([][]byte{make([]byte, 10), make([]byte, 1<<20)})
	if err := l.AppendBatch(context.Background(), b); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("got %v", err)
	}
	if s := l.Stats(); s.Records != 0 {
		t.Fatalf("%d records written, want none", s.Records)
	}
}

// TestAppendBatchDropNewest: under drop_newest what does not fit is
// refused and counted, and what fits is a prefix of what was offered.
func TestAppendBatchDropNewest(t *testing.T) {
	l := testOpen(t, fullOptions(t, WhenFullDropNewest))
	defer l.Close()
	fast, _ := l.Cursor("fast")
	slow, _ := l.Cursor("slow")
	const total = 5000
	var got []uint64
	var b Batch
	for i := 0; i < total; i += 50 {
		b.Reset()
		for j := i; j < i+50; j++ {
			b.Add(rec(uint64(j), 200))
		}
		if err := l.AppendBatch(context.Background(), &b); err != nil {
			t.Fatal(err)
		}
		checkBound(t, l)
		got = append(got, drainCommit(t, fast)...)
	}
	kept := len(got)
	if kept == total || kept == 0 {
		t.Fatalf("kept %d of %d", kept, total)
	}
	checkSeq(t, got, 0, kept)
	checkSeq(t, drainCommit(t, slow), 0, kept)
	if v := testutil.ToFloat64(l.m.dropped.WithLabelValues("fast", reasonBufferFull)); v != float64(total-kept) {
		t.Fatalf("%v counted dropped, %d refused", v, total-kept)
	}
}

// TestAppendBatchWriteFailure: a write that fails half-way is cut back
// and retried from the batch as it is; each record lands exactly once.
func TestAppendBatchWriteFailure(t *testing.T) {
	dir := t.TempDir()
	fs := &faultFS{}
	o := Options{Dir: dir, Cursors: []string{"a"}}
	l := testOpenFS(t, o, fs)
	appendN(t, l, 0, 10, 10, 100)
	fs.set(func(f *faultFS) { f.writeErr = syscall.ENOSPC })
	done := make(chan error)
	go func() { done <- l.AppendBatch(context.Background(), batchOf(mixedRecs(10, 50))) }()
	waitFor(t, "a retry", func() bool { fs.mu.Lock(); defer fs.mu.Unlock(); return fs.writes >= 3 })
	fs.set(func(f *faultFS) { f.writeErr = nil })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = testOpen(t, o)
	defer l.Close()
	c, _ := l.Cursor("a")
	checkSeq(t, nums(drain(t, c)), 0, 60)
}
