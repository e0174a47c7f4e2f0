package buffer

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// checkBound fails if the segment files take more than the bound, counted
// the way the buffer charges them and as blocks really allocated.
func checkBound(t *testing.T, l *Log) {
	t.Helper()
	charged, allocated := diskBytes(t, l.o.Dir)
	if charged > l.o.MaxBytes || allocated > l.o.MaxBytes {
		t.Fatalf("on disk %d bytes (%d allocated), bound %d", charged, allocated, l.o.MaxBytes)
	}
	if s := l.Stats(); s.Bytes > l.o.MaxBytes || s.UsageRatio > 1 {
		t.Fatalf("stats %+v over the bound", s)
	}
}

func fullOptions(t *testing.T, whenFull string) Options {
	return Options{Dir: t.TempDir(), MaxBytes: 256 << 10, SegmentBytes: 32 << 10, WhenFull: whenFull,
		Cursors: []string{"slow", "fast"}}
}

// drainCommit reads everything readable through c and commits it.
func drainCommit(t *testing.T, c *Cursor) []uint64 {
	t.Helper()
	recs := drain(t, c)
	if len(recs) > 0 {
		if err := c.Commit(recs[len(recs)-1].Pos); err != nil {
			t.Fatal(err)
		}
	}
	return nums(recs)
}

func TestFullBlock(t *testing.T) {
	l := testOpen(t, fullOptions(t, WhenFullBlock))
	defer l.Close()
	slow, _ := l.Cursor("slow")
	fast, _ := l.Cursor("fast")
	const total = 5000 // ~1 MiB framed, four times the bound
	done := make(chan error)
	go func() {
		var err error
		for i := 0; i < total && err == nil; i += 50 {
			var recs [][]byte
			for j := i; j < i+50; j++ {
				recs = append(recs, rec(uint64(j), 200))
			}
			err = l.Append(context.Background(), recs)
		}
		done <- err
	}()
	// The fast sink gets everything the bound allows while the slow one
	// reads nothing, then the writer blocks.
	var got []uint64
	waitFor(t, "the writer to block on the bound", func() bool {
		got = append(got, drainCommit(t, fast)...)
		return l.Stats().Blocked || len(got) == total
	})
	if len(got) == total {
		t.Fatal("the writer never blocked")
	}
	checkBound(t, l)
	var slowGot []uint64
	for len(slowGot) < total || len(got) < total {
		checkBound(t, l)
		slowGot = append(slowGot, drainCommit(t, slow)...)
		got = append(got, drainCommit(t, fast)...)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	checkSeq(t, got, 0, total)
	checkSeq(t, slowGot, 0, total)
	for _, s := range []string{"slow", "fast"} {
		if v := testutil.ToFloat64(l.m.dropped.WithLabelValues(s, reasonBufferFull)); v != 0 {
			t.Fatalf("%s: %v dropped under block", s, v)
		}
	}
}

func TestFullDropOldest(t *testing.T) {
	l := testOpen(t, fullOptions(t, WhenFullDropOldest))
	defer l.Close()
	slow, _ := l.Cursor("slow")
	fast, _ := l.Cursor("fast")
	const total = 5000
	var fastGot []uint64
	for i := 0; i < total; i += 50 {
		appendN(t, l, uint64(i), 50, 50, 200)
		checkBound(t, l)
		fastGot = append(fastGot, drainCommit(t, fast)...)
	}
	checkSeq(t, fastGot, 0, total)
	slowGot := drainCommit(t, slow)
	skipped := total - len(slowGot)
	if skipped == 0 {
		t.Fatal("nothing dropped")
	}
	checkSeq(t, slowGot, uint64(skipped), len(slowGot))
	if v := testutil.ToFloat64(l.m.dropped.WithLabelValues("slow", reasonBufferFull)); v != float64(skipped) {
		t.Fatalf("slow: %v counted dropped, %d skipped", v, skipped)
	}
	if v := testutil.ToFloat64(l.m.dropped.WithLabelValues("fast", reasonBufferFull)); v != 0 {
		t.Fatalf("fast: %v dropped", v)
	}
}

// TestFullDropOldestMidRead: records a cursor has already read (in flight)
// when its segment is dropped are not counted as dropped.
func TestFullDropOldestMidRead(t *testing.T) {
	l := testOpen(t, fullOptions(t, WhenFullDropOldest))
	defer l.Close()
	slow, _ := l.Cursor("slow")
	fast, _ := l.Cursor("fast")
	appendN(t, l, 0, 100, 100, 200)
	inflight, err := slow.Next(context.Background(), 10, 1<<20)
	if err != nil || len(inflight) != 10 {
		t.Fatalf("Next: %d, %v", len(inflight), err)
	}
	const total = 3000
	for i := 100; i < total; i += 50 {
		appendN(t, l, uint64(i), 50, 50, 200)
		drainCommit(t, fast)
	}
	// Committing an in-flight position behind the drop is a no-op.
	if err := slow.Commit(inflight[9].Pos); err != nil {
		t.Fatal(err)
	}
	rest := drainCommit(t, slow)
	skipped := total - 10 - len(rest)
	checkSeq(t, rest, uint64(total-len(rest)), len(rest))
	if v := testutil.ToFloat64(l.m.dropped.WithLabelValues("slow", reasonBufferFull)); v != float64(skipped) {
		t.Fatalf("slow: %v counted dropped, %d skipped", v, skipped)
	}
}

func TestFullDropNewest(t *testing.T) {
	l := testOpen(t, fullOptions(t, WhenFullDropNewest))
	defer l.Close()
	slow, _ := l.Cursor("slow")
	fast, _ := l.Cursor("fast")
	const total = 5000
	var fastGot []uint64
	for i := 0; i < total; i += 50 {
		appendN(t, l, uint64(i), 50, 50, 200)
		checkBound(t, l)
		fastGot = append(fastGot, drainCommit(t, fast)...)
	}
	kept := len(fastGot)
	if kept == total {
		t.Fatal("nothing dropped")
	}
	checkSeq(t, fastGot, 0, kept)
	checkSeq(t, drainCommit(t, slow), 0, kept)
	for _, s := range []string{"slow", "fast"} {
		if v := testutil.ToFloat64(l.m.dropped.WithLabelValues(s, reasonBufferFull)); v != float64(total-kept) {
			t.Fatalf("%s: %v counted dropped, %d refused", s, v, total-kept)
		}
	}
	// Space again: appends land.
	appendN(t, l, total, 1, 1, 200)
	checkSeq(t, drainCommit(t, fast), total, 1)
}

// TestSlowSinkDoesNotSlowOthers: until the buffer is full, a sink that
// reads nothing does not hold back one that reads everything, and its
// backlog keeps segments on disk until it commits.
func TestSlowSinkDoesNotSlowOthers(t *testing.T) {
	o := Options{Dir: t.TempDir(), MaxBytes: 16 << 20, SegmentBytes: 32 << 10, Cursors: []string{"slow", "fast"}}
	l := testOpen(t, o)
	defer l.Close()
	slow, _ := l.Cursor("slow")
	fast, _ := l.Cursor("fast")
	const total = 20000
	var fastGot []uint64
	for i := 0; i < total; i += 100 {
		appendN(t, l, uint64(i), 100, 100, 200)
		fastGot = append(fastGot, drainCommit(t, fast)...)
	}
	checkSeq(t, fastGot, 0, total)
	if r, _ := fast.Lag(); r != 0 {
		t.Fatalf("fast lag %d", r)
	}
	if r, b := slow.Lag(); r != total || b != total*frameSize(200) {
		t.Fatalf("slow lag %d records %d bytes", r, b)
	}
	before := len(segFiles(t, o.Dir))
	// The slow one catches up in small steps; segments go as it passes.
	var slowGot []uint64
	for len(slowGot) < total {
		recs, err := slow.Next(context.Background(), 500, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if err := slow.Commit(recs[len(recs)-1].Pos); err != nil {
			t.Fatal(err)
		}
		slowGot = append(slowGot, nums(recs)...)
	}
	checkSeq(t, slowGot, 0, total)
	if after := len(segFiles(t, o.Dir)); after != 1 || before < 10 {
		t.Fatalf("segments %d -> %d", before, after)
	}
}

// TestCursorRemovedAndAdded: a sink removed from the configuration stops
// holding data back, its backlog logged and counted; a sink added starts
// at the oldest retained record.
func TestCursorRemovedAndAdded(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir, SegmentBytes: 4 << 10, Cursors: []string{"old", "kept"}}
	l := testOpen(t, o)
	appendN(t, l, 0, 200, 50, 100)
	old, _ := l.Cursor("old")
	kept, _ := l.Cursor("kept")
	recs := drain(t, old)
	if err := old.Commit(recs[49].Pos); err != nil {
		t.Fatal(err)
	}
	krecs := drain(t, kept)
	if err := kept.Commit(krecs[119].Pos); err != nil {
		t.Fatal(err)
	}
	segsBefore := len(segFiles(t, dir))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	o.Cursors = []string{"kept"}
	l = testOpen(t, o)
	if _, err := l.Cursor("old"); err == nil {
		t.Fatal("removed cursor still there")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "old"+cursorSuffix)); len(m) != 0 {
		t.Fatal("removed cursor's file still there")
	}
	if v := testutil.ToFloat64(l.m.abandoned); v != 150 {
		t.Fatalf("abandoned records %v, want 150", v)
	}
	if n := len(segFiles(t, dir)); n >= segsBefore {
		t.Fatalf("segments held only by the removed cursor not freed: %d -> %d", segsBefore, n)
	}
	oldest := l.segs[0].firstSeq
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// A new sink starts at the oldest retained record.
	o.Cursors = []string{"kept", "new"}
	l = testOpen(t, o)
	defer l.Close()
	nc, _ := l.Cursor("new")
	checkSeq(t, nums(drain(t, nc)), oldest, 200-int(oldest))
	kc, _ := l.Cursor("kept")
	checkSeq(t, nums(drain(t, kc)), 120, 80)
	// Lag gauges exist only for configured sinks.
	if n := testutil.CollectAndCount(stateCollector{l}, "skiff_buffer_cursor_lag_records"); n != 2 {
		t.Fatalf("%d lag series, want 2", n)
	}
}
