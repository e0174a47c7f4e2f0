package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/skiff-dev/skiff/buffer"
)

// TestCursorSourceRecycles: entries released by the delivery loop go
// back to the cursor, so that the next read reuses both the entries and
// the memory their Data lives in, and the records read through recycled
// memory are still the right ones.
func TestCursorSourceRecycles(t *testing.T) {
	// Reads from disk: from the hot window, Data lives in the appended
	// batch's memory, which the buffer recycles itself.
	l, err := buffer.Open(buffer.Options{Dir: t.TempDir(), MaxBytes: 1 << 30, HotBytes: -1, Fsync: buffer.FsyncNever, Cursors: []string{"s"}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var recs [][]byte
	for i := range 300 {
		recs = append(recs, fmt.Appendf(nil, "record %03d", i))
	}
	if err := l.Append(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	cur, err := l.Cursor("s")
	if err != nil {
		t.Fatal(err)
	}
	s := &cursorSource{c: cur}
	ctx := context.Background()
	i := 0
	var prev *byte
	for n := range 3 {
		es, err := s.Next(ctx, 100, 1<<20)
		if err != nil || len(es) != 100 {
			t.Fatalf("Next: %d entries, %v", len(es), err)
		}
		for _, e := range es {
			if want := fmt.Sprintf("record %03d", i); string(e.Data) != want {
				t.Fatalf("entry %d is %q, want %q", i, e.Data, want)
			}
			i++
		}
		// The first Release turns recycling on in the cursor, so the
		// first batch is not reused, the second is.
		if n == 2 && &es[0].Data[0] != prev {
			t.Fatal("the next read did not reuse the released batch's memory")
		}
		prev = &es[0].Data[0]
		s.Release(es)
		if len(s.lent) != 0 {
			t.Fatalf("%d batches still lent after Release", len(s.lent))
		}
	}
}
