package buffer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestAppendReadCommitReopen(t *testing.T) {
	for name, fsync := range map[string]string{"interval": FsyncInterval, "batch": FsyncBatch, "never": FsyncNever} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			o := Options{Dir: dir, MaxBytes: 8 << 20, SegmentBytes: 64 << 10, Fsync: fsync, Cursors: []string{"a"}}
			l := testOpen(t, o)
			appendN(t, l, 0, 3000, 37, 100)
			c, err := l.Cursor("a")
			if err != nil {
				t.Fatal(err)
			}
			got := drain(t, c)
			checkSeq(t, nums(got), 0, 3000)
			if n := len(segFiles(t, dir)); n < 4 {
				t.Fatalf("%d segments, want several (rolls)", n)
			}
			// Commit half way, reopen: the cursor resumes after it.
			if err := c.Commit(got[1499].Pos); err != nil {
				t.Fatal(err)
			}
			if r, _ := c.Lag(); r != 1500 {
				t.Fatalf("lag %d records, want 1500", r)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = testOpen(t, o)
			defer l.Close()
			c, _ = l.Cursor("a")
			if r, _ := c.Lag(); r != 1500 {
				t.Fatalf("lag after reopen %d records, want 1500", r)
			}
			appendN(t, l, 3000, 10, 10, 100)
			checkSeq(t, nums(drain(t, c)), 1500, 1510)
		})
	}
}

func TestGCDeletesConsumedSegments(t *testing.T) {
	dir := t.TempDir()
	l := testOpen(t, Options{Dir: dir, MaxBytes: 8 << 20, SegmentBytes: 16 << 10, Cursors: []string{"a", "b"}})
	defer l.Close()
	appendN(t, l, 0, 2000, 50, 100)
	a, _ := l.Cursor("a")
	b, _ := l.Cursor("b")
	ra := drain(t, a)
	before := len(segFiles(t, dir))
	if err := a.Commit(ra[len(ra)-1].Pos); err != nil {
		t.Fatal(err)
	}
	if n := len(segFiles(t, dir)); n != before {
		t.Fatalf("segments %d -> %d with cursor b still at the start", before, n)
	}
	rb := drain(t, b)
	if err := b.Commit(rb[len(rb)-1].Pos); err != nil {
		t.Fatal(err)
	}
	if n := len(segFiles(t, dir)); n != 1 {
		t.Fatalf("%d segments after every cursor committed the end, want 1", n)
	}
	if s := l.Stats(); s.Records != 2000 || s.Segments != 1 {
		// Records counts from the first retained segment's first record.
		if s.Segments != 1 {
			t.Fatalf("stats %+v", s)
		}
	}
}

func TestNextBlocksUntilAppend(t *testing.T) {
	l := testOpen(t, Options{Dir: t.TempDir(), Cursors: []string{"a"}})
	defer l.Close()
	c, _ := l.Cursor("a")
	got := make(chan []Record)
	go func() {
		recs, err := c.Next(context.Background(), 10, 1<<20)
		if err != nil {
			t.Error(err)
		}
		got <- recs
	}()
	appendN(t, l, 7, 1, 1, 50)
	if recs := <-got; len(recs) != 1 || recNum(recs[0].Data) != 7 {
		t.Fatalf("got %v", recs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := c.Next(ctx, 10, 100); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next on empty log: %v", err)
	}
}

func TestNextLimitsAndOversizedRecord(t *testing.T) {
	l := testOpen(t, Options{Dir: t.TempDir(), Cursors: []string{"a"}})
	defer l.Close()
	c, _ := l.Cursor("a")
	appendN(t, l, 0, 10, 10, 100)
	appendN(t, l, 10, 1, 1, 5000)
	appendN(t, l, 11, 5, 5, 100)
	ctx := context.Background()
	recs, err := c.Next(ctx, 3, 1<<20)
	if err != nil || len(recs) != 3 {
		t.Fatalf("maxRecords 3: %d records, %v", len(recs), err)
	}
	recs, _ = c.Next(ctx, 100, 250) // two 108-byte frames fit
	checkSeq(t, nums(recs), 3, 2)
	// Next sizes its read from the records seen so far, so it may return
	// fewer than maxRecords; what it returns is always in order.
	var got []Record
	for len(got) < 6 {
		recs, _ = c.Next(ctx, 6-len(got), 1<<20)
		got = append(got, recs...)
	}
	checkSeq(t, nums(got), 5, 6) // up to and including the big one
	recs, _ = c.Next(ctx, 100, 10)
	checkSeq(t, nums(recs), 11, 1) // smaller than one record: still one
	// Data stays valid after later calls.
	keep := recs[0].Data
	_, _ = c.Next(ctx, 1, 1<<20)
	if recNum(keep) != 11 {
		t.Fatal("Data changed after a later Next")
	}
	// A record larger than maxBytes, alone.
	l2 := testOpen(t, Options{Dir: t.TempDir(), Cursors: []string{"a"}})
	defer l2.Close()
	appendN(t, l2, 0, 1, 1, 9000)
	c2, _ := l2.Cursor("a")
	recs, err = c2.Next(ctx, 10, 100)
	if err != nil || len(recs) != 1 || len(recs[0].Data) != 9000 {
		t.Fatalf("oversized: %d records, %v", len(recs), err)
	}
}

func TestRecordTooLarge(t *testing.T) {
	l := testOpen(t, Options{Dir: t.TempDir(), MaxBytes: 1 << 20})
	defer l.Close()
	err := l.Append(context.Background(), [][]byte{make([]byte, 10), make([]byte, 1<<20)})
	if !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("got %v", err)
	}
	if s := l.Stats(); s.Records != 0 {
		t.Fatalf("%d records written, want none", s.Records)
	}
	// A record larger than a segment but within the bound gets its own.
	big := make([]byte, 200<<10)
	if err := l.Append(context.Background(), [][]byte{{1}, big, {2}}); err != nil {
		t.Fatal(err)
	}
}

// TestQuarterLineFits: a line of a quarter of the bound (the largest
// SKIFF_MAX_LINE_BYTES accepts), with its record's metadata, is taken
// whole and read back whole, also when the buffer must first delete
// delivered segments to make room for it.
func TestQuarterLineFits(t *testing.T) {
	const maxBytes = 1 << 20
	ctx := context.Background()
	l := testOpen(t, Options{Dir: t.TempDir(), MaxBytes: maxBytes, SegmentBytes: 64 << 10, Cursors: []string{"a"}})
	defer l.Close()
	c, _ := l.Cursor("a")
	rec := make([]byte, maxBytes/4+8<<10) // the line and a long path
	for i := range rec {
		rec[i] = byte(i)
	}
	for round := 0; round < 6; round++ { // more than the bound in total
		if err := l.Append(ctx, [][]byte{{byte(round)}, rec, {byte(round)}}); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for got := 0; got < 3; {
			recs, err := c.Next(ctx, 10, 1024)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if got == 1 && !bytes.Equal(r.Data, rec) {
					t.Fatalf("round %d: the large record came back as %d bytes", round, len(r.Data))
				}
				got++
				if err := c.Commit(r.Pos); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func TestClosedAndUnknown(t *testing.T) {
	l := testOpen(t, Options{Dir: t.TempDir(), Cursors: []string{"a"}})
	if _, err := l.Cursor("nope"); !errors.Is(err, ErrUnknownCursor) {
		t.Fatalf("Cursor(nope): %v", err)
	}
	c, _ := l.Cursor("a")
	done := make(chan error)
	go func() {
		_, err := c.Next(context.Background(), 1, 1)
		done <- err
	}()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked Next after Close: %v", err)
	}
	if err := l.Append(context.Background(), [][]byte{{1}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if err := l.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
}

func TestOptionsValidation(t *testing.T) {
	cases := map[string]Options{
		"no dir":        {},
		"bad fsync":     {Dir: "x", Fsync: "sometimes"},
		"bad when_full": {Dir: "x", WhenFull: "explode"},
		"big segment":   {Dir: "x", MaxBytes: 1 << 20, SegmentBytes: 600 << 10},
		"bad name":      {Dir: "x", Cursors: []string{"a/b"}},
		"dup name":      {Dir: "x", Cursors: []string{"a", "a"}},
	}
	for name, o := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Open(o); err == nil {
				t.Fatal("Open accepted invalid options")
			}
		})
	}
	o, err := Options{Dir: "x", MaxBytes: 80 << 20}.withDefaults()
	if err != nil || o.SegmentBytes != 10<<20 || o.Fsync != FsyncInterval || o.WhenFull != WhenFullBlock {
		t.Fatalf("defaults: %+v %v", o, err)
	}
}

func TestTempFilesRemovedAtOpen(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.cursor.tmp"), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	l := testOpen(t, Options{Dir: dir, Cursors: []string{"a"}})
	defer l.Close()
	if _, err := os.Stat(filepath.Join(dir, "a.cursor.tmp")); !os.IsNotExist(err) {
		t.Fatalf("temp file still there: %v", err)
	}
}

// TestSecondOpenRefused: two processes (or two Opens) never write one
// buffer; the lock goes with Close.
func TestSecondOpenRefused(t *testing.T) {
	dir := t.TempDir()
	l := testOpen(t, Options{Dir: dir})
	if _, err := Open(Options{Dir: dir}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = testOpen(t, Options{Dir: dir})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
