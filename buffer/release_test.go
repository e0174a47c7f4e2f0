package buffer

import (
	"bytes"
	"context"
	"testing"
)

// TestReleaseReuses: once a batch is released, the next read reuses its
// memory; a batch that has not been released is never overwritten, and a
// batch released twice is reused only once.
func TestReleaseReuses(t *testing.T) {
	l := testOpen(t, Options{Dir: t.TempDir(), MaxBytes: 1 << 30, Fsync: FsyncNever, Cursors: []string{"r"}})
	defer l.Close()
	appendN(t, l, 0, 100*64, 64, benchRec)
	c, _ := l.Cursor("r")
	ctx := context.Background()
	next := func() []Record {
		t.Helper()
		recs, err := c.Next(ctx, 64, 1<<20)
		if err != nil || len(recs) != 64 {
			t.Fatalf("Next: %d records, %v", len(recs), err)
		}
		return recs
	}
	snapshot := func(recs []Record) [][]byte {
		out := make([][]byte, len(recs))
		for i, r := range recs {
			out[i] = bytes.Clone(r.Data)
		}
		return out
	}
	same := func(recs []Record, want [][]byte) bool {
		for i, r := range recs {
			if !bytes.Equal(r.Data, want[i]) {
				return false
			}
		}
		return true
	}

	// Before any Release, nothing is tracked or reused.
	a := next()
	c.Release(a) // turns recycling on; a was not tracked
	b := next()
	if &b[0] == &a[0] || &b[0].Data[0] == &a[0].Data[0] {
		t.Fatal("a batch lent before recycling was turned on was reused")
	}
	held, heldData := next(), []Record(nil)
	heldData = append(heldData, held...)
	want := snapshot(held)

	c.Release(b)
	c.Release(b) // a second Release of the same batch is ignored
	r1 := next()
	if &r1[0] != &b[0] || &r1[0].Data[0] != &b[0].Data[0] {
		t.Fatal("the released batch's memory was not reused")
	}
	r2 := next()
	if &r2[0] == &r1[0] || &r2[0].Data[0] == &r1[0].Data[0] {
		t.Fatal("a batch released twice was handed out twice")
	}
	for range 20 {
		c.Release(next())
	}
	if !same(heldData, want) || !same(held, want) {
		t.Fatal("a batch that was never released was overwritten")
	}
	// Records read through recycled memory are still the right ones.
	checkSeq(t, nums(r1), 3*64, 64)
	checkSeq(t, nums(r2), 4*64, 64)
	checkSeq(t, nums(next()), 25*64, 64)
}

// TestReleaseIgnoresForeign: Release of an empty batch or of records that
// Next did not return changes nothing.
func TestReleaseIgnoresForeign(t *testing.T) {
	l := testOpen(t, Options{Dir: t.TempDir(), MaxBytes: 1 << 30, Fsync: FsyncNever, Cursors: []string{"r"}})
	defer l.Close()
	appendN(t, l, 0, 10, 10, benchRec)
	c, _ := l.Cursor("r")
	foreign := []Record{{Data: make([]byte, 1<<20)}}
	c.Release(nil)
	c.Release(foreign)
	c.Release(foreign[:0])
	recs, err := c.Next(context.Background(), 10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if &recs[0] == &foreign[0] {
		t.Fatal("foreign records reused")
	}
	checkSeq(t, nums(recs), 0, 10)
}

// TestReleaseConcurrent: one goroutine reads while another checks and
// releases the batches, as a delivery loop would; every record arrives
// intact and in order (and -race sees no unsynchronised reuse).
func TestReleaseConcurrent(t *testing.T) {
	l := testOpen(t, Options{Dir: t.TempDir(), MaxBytes: 1 << 30, Fsync: FsyncNever, Cursors: []string{"r"}})
	defer l.Close()
	const total = 20000
	appendN(t, l, 0, total, 500, benchRec)
	c, _ := l.Cursor("r")
	batches := make(chan []Record, 8)
	errc := make(chan error, 1)
	go func() {
		defer close(batches)
		for n := 0; n < total; {
			recs, err := c.Next(context.Background(), 1+n%700, 64<<10)
			if err != nil {
				errc <- err
				return
			}
			n += len(recs)
			batches <- recs
		}
	}()
	var next uint64
	for recs := range batches {
		for _, r := range recs {
			if got := recNum(r.Data); got != next || !bytes.Equal(r.Data, rec(next, benchRec)) {
				t.Fatalf("record %d: got number %d or wrong bytes", next, got)
			}
			next++
		}
		c.Release(recs)
	}
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
	if next != total {
		t.Fatalf("read %d records, want %d", next, total)
	}
}
