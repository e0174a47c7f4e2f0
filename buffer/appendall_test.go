package buffer

import (
	"context"
	"errors"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// numbered returns a batch of records from..from+n-1 of size bytes each.
func numbered(from uint64, n, size int) *Batch {
	var b Batch
	for i := range n {
		b.Add(rec(from+uint64(i), size))
	}
	return &b
}

// fillTo appends 200-byte records until the buffer is within room bytes
// of its bound, and returns how many it appended.
func fillTo(t *testing.T, l *Log, room int64) int {
	t.Helper()
	n := 0
	for l.o.MaxBytes-l.Stats().Bytes > room {
		appendN(t, l, uint64(n), 10, 10, 200)
		n += 10
	}
	return n
}

// TestAppendAllWholeOrNothing: with the buffer nearly full under block, a
// batch that only partly fits is not written at all while AppendAll waits,
// a cancel leaves nothing of it, and once room is made it goes in whole.
// AppendBatch, in the same spot, writes the part that fits: the case
// AppendAll exists for.
func TestAppendAllWholeOrNothing(t *testing.T) {
	for name, whole := range map[string]bool{"AppendAll": true, "AppendBatch": false} {
		t.Run(name, func(t *testing.T) {
			l := testOpen(t, fullOptions(t, WhenFullBlock))
			defer l.Close()
			slow, _ := l.Cursor("slow")
			fast, _ := l.Cursor("fast")
			filled := fillTo(t, l, 20<<10)
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() {
				b := numbered(1_000_000, 200, 200) // ~40 KiB: half of it fits
				if whole {
					errc <- l.AppendAll(ctx, b)
				} else {
					errc <- l.AppendBatch(ctx, b)
				}
			}()
			waitFor(t, "the append to block on the bound", func() bool { return l.Stats().Blocked })
			cancel()
			err := <-errc
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("append returned %v, want a cancellation", err)
			}
			got := nums(drain(t, fast))
			extra := len(got) - filled
			if whole {
				if !errors.Is(err, ErrFull) {
					t.Errorf("AppendAll's error %v does not say the buffer is full", err)
				}
				if extra != 0 {
					t.Fatalf("%d records of the cancelled batch were appended", extra)
				}
			} else {
				if extra == 0 {
					t.Fatal("AppendBatch appended nothing: the test does not reach a partial write")
				}
				return
			}
			// Room made (both sinks commit): the batch goes in whole.
			for _, c := range []*Cursor{slow, fast} {
				if recs := drain(t, c); len(recs) > 0 {
					if err := c.Commit(recs[len(recs)-1].Pos); err != nil {
						t.Fatal(err)
					}
				} else if err := c.Commit(l.End()); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.AppendAll(context.Background(), numbered(1_000_000, 200, 200)); err != nil {
				t.Fatal(err)
			}
			recs := drain(t, fast)
			checkSeq(t, nums(recs), 1_000_000, 200)
			for _, r := range recs {
				if r.Pos.Segment != recs[0].Pos.Segment {
					t.Fatalf("the batch spans segments %d and %d", recs[0].Pos.Segment, r.Pos.Segment)
				}
			}
			checkBound(t, l)
		})
	}
}

// TestAppendAllOneSegment: a batch that does not fit in what is left of
// the active segment rolls to a new one instead of being split, and a
// batch larger than a segment gets one of its own.
func TestAppendAllOneSegment(t *testing.T) {
	l := testOpen(t, Options{Dir: t.TempDir(), MaxBytes: 4 << 20, SegmentBytes: 32 << 10, Cursors: []string{"s"}})
	defer l.Close()
	c, _ := l.Cursor("s")
	appendN(t, l, 0, 100, 100, 200) // ~20 KiB of the 32 KiB segment
	for i, n := range []int{100, 400} {
		from := uint64(1000 * (i + 1))
		if err := l.AppendAll(context.Background(), numbered(from, n, 200)); err != nil {
			t.Fatal(err)
		}
	}
	recs := drain(t, c)
	checkSeq(t, nums(recs[:100]), 0, 100)
	checkSeq(t, nums(recs[100:200]), 1000, 100)
	checkSeq(t, nums(recs[200:]), 2000, 400)
	if recs[100].Pos.Segment == recs[99].Pos.Segment {
		t.Error("the first batch was not moved to a new segment")
	}
	for _, part := range [][]Record{recs[100:200], recs[200:]} {
		for _, r := range part {
			if r.Pos.Segment != part[0].Pos.Segment {
				t.Fatalf("a batch spans segments %d and %d", part[0].Pos.Segment, r.Pos.Segment)
			}
		}
	}
}

// TestAppendAllDropNewest: under drop_newest AppendAll refuses a batch
// that does not fit at once, counts nothing as dropped (the caller refuses
// it to its client), and appends nothing of it.
func TestAppendAllDropNewest(t *testing.T) {
	l := testOpen(t, fullOptions(t, WhenFullDropNewest))
	defer l.Close()
	fast, _ := l.Cursor("fast")
	filled := fillTo(t, l, 20<<10)
	err := l.AppendAll(context.Background(), numbered(1_000_000, 200, 200))
	if !errors.Is(err, ErrFull) {
		t.Fatalf("got %v, want ErrFull", err)
	}
	if got := len(drain(t, fast)); got != filled {
		t.Fatalf("%d records readable, want the %d before the batch", got, filled)
	}
	if n := testutil.ToFloat64(l.m.dropped.WithLabelValues("fast", reasonBufferFull)); n != 0 {
		t.Fatalf("%v records counted as dropped", n)
	}
	// A batch that fits still goes in.
	if err := l.AppendAll(context.Background(), numbered(2_000_000, 10, 200)); err != nil {
		t.Fatal(err)
	}
}

// TestAppendAllDropOldest: under drop_oldest AppendAll makes room by
// dropping the oldest segment and appends the batch whole.
func TestAppendAllDropOldest(t *testing.T) {
	l := testOpen(t, fullOptions(t, WhenFullDropOldest))
	defer l.Close()
	fast, _ := l.Cursor("fast")
	fillTo(t, l, 20<<10)
	if err := l.AppendAll(context.Background(), numbered(1_000_000, 200, 200)); err != nil {
		t.Fatal(err)
	}
	recs := drain(t, fast)
	checkSeq(t, nums(recs[len(recs)-200:]), 1_000_000, 200)
	checkBound(t, l)
}

// TestAppendAllFailedWrite: while writes fail, AppendAll retries; a cancel
// returns the write error with the cancellation, and nothing of the batch
// is readable, even though the failing write reached the file in part.
func TestAppendAllFailedWrite(t *testing.T) {
	fs := &faultFS{}
	l := testOpenFS(t, Options{Dir: t.TempDir(), Cursors: []string{"s"}}, fs)
	defer l.Close()
	c, _ := l.Cursor("s")
	appendN(t, l, 0, 10, 10, 200)
	fs.set(func(f *faultFS) { f.writeErr = syscall.EIO })
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- l.AppendAll(ctx, numbered(100, 50, 200)) }()
	waitFor(t, "a failed write", func() bool { return l.Err() != nil })
	cancel()
	err := <-errc
	if !errors.Is(err, context.Canceled) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("got %v, want the write error and the cancellation", err)
	}
	fs.set(func(f *faultFS) { f.writeErr = nil })
	appendN(t, l, 1000, 5, 5, 200)
	got := nums(drain(t, c))
	checkSeq(t, got[:10], 0, 10)
	checkSeq(t, got[10:], 1000, 5)
}

func TestAppendAllTooLarge(t *testing.T) {
	l := testOpen(t, Options{Dir: t.TempDir(), MaxBytes: 1 << 20})
	defer l.Close()
	// Each record fits; together they exceed the largest record (a quarter
	// of the bound and 64 KiB).
	if err := l.AppendAll(context.Background(), numbered(0, 400, 1000)); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("got %v", err)
	}
	if err := l.AppendAll(context.Background(), &Batch{}); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
}
