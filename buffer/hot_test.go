package buffer

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"syscall"
	"testing"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// readLimited reads through c until Next would block, with limits drawn from
// rng, releasing every batch after copying it; it returns the copies.
func readLimited(t *testing.T, c *Cursor, rng *rand.Rand) []Record {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Next returns what is readable, or ctx.Err() at once
	var out []Record
	for {
		recs, err := c.Next(ctx, 1+rng.IntN(300), 1+rng.IntN(96<<10))
		if errors.Is(err, context.Canceled) {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		for _, r := range recs {
			out = append(out, Record{Pos: r.Pos, Data: bytes.Clone(r.Data)})
		}
		c.Release(recs)
	}
}

func readFrom(l *Log, sink string) (memory, disk float64) {
	return testutil.ToFloat64(l.m.read.WithLabelValues(sink, "memory")),
		testutil.ToFloat64(l.m.read.WithLabelValues(sink, "disk"))
}

// sameRecords fails unless got holds the payloads want, in order, with
// the positions ref (when not nil) has.
func sameRecords(t *testing.T, what string, got []Record, want [][]byte, ref []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d records, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i].Data, want[i]) {
			t.Fatalf("%s: record %d differs", what, i)
		}
		if ref != nil && got[i].Pos != ref[i].Pos {
			t.Fatalf("%s: record %d at %+v, the other cursor had it at %+v", what, i, got[i].Pos, ref[i].Pos)
		}
		if got[i].Pos.Seq != uint64(i)+1 {
			t.Fatalf("%s: record %d has sequence position %d", what, i, got[i].Pos.Seq)
		}
	}
}

// TestHotSameRecordsAsDisk: a cursor that keeps up reads every record from
// the hot window, one that reads only at the end reads them from disk, and
// both hand out the same records at the same positions; so does a new
// cursor after a restart. Batches of varied sizes are appended as the
// tailer appends them (one Batch, filled again after each AppendBatch),
// across many segment boundaries, with every fsync policy.
func TestHotSameRecordsAsDisk(t *testing.T) {
	for _, fsync := range []string{FsyncInterval, FsyncBatch, FsyncNever} {
		t.Run(fsync, func(t *testing.T) {
			dir := t.TempDir()
			o := Options{Dir: dir, MaxBytes: 64 << 20, SegmentBytes: 64 << 10, HotBytes: 256 << 10, Fsync: fsync, Cursors: []string{"hot", "cold"}}
			l := testOpen(t, o)
			hot, _ := l.Cursor("hot")
			cold, _ := l.Cursor("cold")
			rng := rand.New(rand.NewPCG(1, 2))
			var b Batch
			var want [][]byte
			var hotGot []Record
			for len(want) < 4000 {
				b.Reset()
				for range 1 + rng.IntN(60) {
					p := rec(uint64(len(want)), 8+rng.IntN(2000))
					b.Add(p)
					want = append(want, p)
				}
				if err := l.AppendBatch(context.Background(), &b); err != nil {
					t.Fatal(err)
				}
				hotGot = append(hotGot, readLimited(t, hot, rng)...)
			}
			coldGot := readLimited(t, cold, rng)
			sameRecords(t, "hot", hotGot, want, nil)
			sameRecords(t, "cold", coldGot, want, hotGot)
			if mem, disk := readFrom(l, "hot"); mem != float64(len(want)) || disk != 0 {
				t.Fatalf("hot cursor read %v records from memory and %v from disk, want all %d from memory", mem, disk, len(want))
			}
			if _, disk := readFrom(l, "cold"); disk < float64(len(want))/2 {
				t.Fatalf("cold cursor read only %v records from disk", disk)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			o.Cursors = []string{"hot", "cold", "new"}
			l = testOpen(t, o)
			defer l.Close()
			fresh, _ := l.Cursor("new")
			sameRecords(t, "after reopen", readLimited(t, fresh, rng), want, hotGot)
		})
	}
}

// TestHotFallBehind: a cursor that falls behind the hot window goes on
// from disk with no gap and no repeat, and from memory again once it has
// caught up. While it is behind, the window keeps nothing.
func TestHotFallBehind(t *testing.T) {
	l := testOpen(t, Options{Dir: t.TempDir(), HotBytes: 64 << 10, SegmentBytes: 256 << 10, Cursors: []string{"a"}})
	defer l.Close()
	c, _ := l.Cursor("a")
	rng := rand.New(rand.NewPCG(3, 4))
	var got []Record
	var want [][]byte
	add := func(n int) {
		for range n {
			b := &Batch{}
			for range 20 {
				p := rec(uint64(len(want)), 100+rng.IntN(200))
				b.Add(p)
				want = append(want, p)
			}
			if err := l.AppendBatch(context.Background(), b); err != nil {
				t.Fatal(err)
			}
		}
	}
	add(5)
	got = append(got, readLimited(t, c, rng)...)
	if mem, disk := readFrom(l, "a"); mem != 100 || disk != 0 {
		t.Fatalf("caught up: %v from memory, %v from disk", mem, disk)
	}
	add(500) // ~2.5 MiB: far more than the window's 64 KiB
	l.mu.Lock()
	held := l.hot.bytes
	l.mu.Unlock()
	if held != 0 {
		t.Fatalf("the window holds %d bytes for a cursor 2.5 MiB behind", held)
	}
	got = append(got, readLimited(t, c, rng)...)
	mem, disk := readFrom(l, "a")
	if disk == 0 || mem+disk != float64(len(want)) {
		t.Fatalf("behind: %v from memory, %v from disk, of %d", mem, disk, len(want))
	}
	add(5)
	got = append(got, readLimited(t, c, rng)...)
	if m2, d2 := readFrom(l, "a"); m2 != mem+100 || d2 != disk {
		t.Fatalf("caught up again: %v more from memory, %v more from disk", m2-mem, d2-disk)
	}
	sameRecords(t, "cursor", got, want, nil)
}

// TestHotWindowTakesBatchMemory: AppendBatch keeps the batch's memory for
// the window and gives the batch other memory, so that whatever the
// caller writes into it afterwards (the tailer refills it at once) never
// reaches a record a cursor was given; a consumer that never releases its
// batches keeps them intact while appends recycle memory.
func TestHotWindowTakesBatchMemory(t *testing.T) {
	l := testOpen(t, Options{Dir: t.TempDir(), HotBytes: DefaultHotBytes, Fsync: FsyncNever, Cursors: []string{"a"}})
	defer l.Close()
	c, _ := l.Cursor("a")
	var b Batch
	for i := range 100 {
		b.Add(rec(uint64(i), 300))
	}
	before := unsafe.SliceData(b.data)
	if err := l.AppendBatch(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	if b.Len() != 0 || unsafe.SliceData(b.data) == before {
		t.Fatalf("after AppendBatch the batch holds %d records in the same memory", b.Len())
	}
	held, err := c.Next(context.Background(), 1000, 1<<20)
	if err != nil || len(held) != 100 {
		t.Fatalf("Next: %d, %v", len(held), err)
	}
	// Scribble over all the memory the batch has now, then append and
	// read a few thousand more batches without releasing anything.
	scribble := func() {
		d := b.data[:cap(b.data)]
		for i := range d {
			d[i] = 0xee
		}
	}
	scribble()
	for i := 100; i < 20000; i += 100 {
		b.Reset()
		for j := range 100 {
			b.Add(rec(uint64(i+j), 300))
		}
		if err := l.AppendBatch(context.Background(), &b); err != nil {
			t.Fatal(err)
		}
		scribble()
		if _, err := c.Next(context.Background(), 1000, 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range held {
		if !bytes.Equal(r.Data, rec(uint64(i), 300)) {
			t.Fatalf("record %d changed after the batch memory was reused", i)
		}
	}
}

// TestHotReleasedMemoryIsReused: with a consumer that releases its
// batches, the tailer's pattern (fill one Batch, AppendBatch, read from
// the window, release) allocates nothing once warm, and what it reads is
// always the records just appended.
func TestHotReleasedMemoryIsReused(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("allocation counts differ under cover/race")
	}
	l := testOpen(t, Options{Dir: t.TempDir(), MaxBytes: 1 << 30, HotBytes: DefaultHotBytes, Fsync: FsyncNever, Cursors: []string{"a"}})
	defer l.Close()
	c, _ := l.Cursor("a")
	ctx := context.Background()
	var b Batch
	n := uint64(0)
	pad := make([]byte, 192)
	step := func() {
		b.Reset()
		for range 1000 {
			d := binary.LittleEndian.AppendUint64(b.Begin(), n)
			b.End(append(d, pad...))
			n++
		}
		if err := l.AppendBatch(ctx, &b); err != nil {
			t.Fatal(err)
		}
		recs, err := c.Next(ctx, 1000, 1<<20)
		if err != nil || len(recs) != 1000 || recNum(recs[0].Data) != n-1000 || recNum(recs[999].Data) != n-1 {
			t.Fatalf("Next: %d records, %v", len(recs), err)
		}
		c.Release(recs)
	}
	for range 20 {
		step()
	}
	if a := testing.AllocsPerRun(50, step); a > 0 {
		t.Fatalf("%v allocations per batch", a)
	}
	if mem, disk := readFrom(l, "a"); disk != 0 || mem != float64(n) {
		t.Fatalf("%v records from memory, %v from disk", mem, disk)
	}
}

// TestHotFailedAppendKeepsBatch: an AppendBatch that fails after part of
// the batch was appended (here: the buffer is full and its ctx ends)
// leaves the caller its records, to append again; the part appended is
// read once, from memory.
func TestHotFailedAppendKeepsBatch(t *testing.T) {
	l := testOpen(t, Options{Dir: t.TempDir(), MaxBytes: 256 << 10, SegmentBytes: 64 << 10, HotBytes: DefaultHotBytes, Cursors: []string{"a"}})
	defer l.Close()
	c, _ := l.Cursor("a")
	var b Batch
	var want [][]byte
	for i := range 400 {
		p := rec(uint64(i), 1000) // 400 KB: more than the bound
		b.Add(p)
		want = append(want, p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.AppendBatch(ctx, &b) }()
	waitFor(t, "the append to block", func() bool { return l.Stats().Blocked })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("AppendBatch: %v", err)
	}
	if b.Len() != len(want) {
		t.Fatalf("the batch holds %d records after the failed append, want %d", b.Len(), len(want))
	}
	for i := range want {
		if !bytes.Equal(b.Record(i), want[i]) {
			t.Fatalf("record %d of the batch changed", i)
		}
	}
	got := readLimited(t, c, rand.New(rand.NewPCG(5, 6)))
	if len(got) == 0 || len(got) == len(want) {
		t.Fatalf("read %d records of a partly appended batch", len(got))
	}
	sameRecords(t, "appended part", got, want[:len(got)], nil)
	if mem, _ := readFrom(l, "a"); mem != float64(len(got)) {
		t.Fatalf("%v of %d from memory", mem, len(got))
	}
}

// TestHotSameUnderFaults runs one script of appends, reads, commits and
// faults (fsyncs that fail under batch and interval, so that records are
// written again; a full buffer dropping the oldest segment under a
// lagging cursor) with the hot window on and off: every cursor hands out
// exactly the same records at the same positions, and the same drops are
// counted. Nothing dropped or written again is served stale from memory.
func TestHotSameUnderFaults(t *testing.T) {
	for _, fsync := range []string{FsyncBatch, FsyncInterval} {
		t.Run(fsync, func(t *testing.T) {
			type outcome struct {
				fast, slow []Record
				dropped    float64
				memory     float64
			}
			run := func(hotBytes int64) outcome {
				fs := &faultFS{}
				l := testOpenFS(t, Options{Dir: t.TempDir(), MaxBytes: 512 << 10, SegmentBytes: 64 << 10, HotBytes: hotBytes,
					Fsync: fsync, WhenFull: WhenFullDropOldest, Cursors: []string{"fast", "slow"}}, fs)
				defer l.Close()
				fast, _ := l.Cursor("fast")
				slow, _ := l.Cursor("slow")
				// The same script both times; reads draw their limits
				// from another source, since how many reads catching
				// up takes may differ.
				rng, lim := rand.New(rand.NewPCG(7, 8)), rand.New(rand.NewPCG(9, 10))
				var out outcome
				var b Batch
				n := 0
				for step := range 300 {
					b.Reset()
					for range 1 + rng.IntN(30) {
						b.Add(rec(uint64(n), 50+rng.IntN(400)))
						n++
					}
					if step%17 == 5 {
						fs.set(func(f *faultFS) { f.syncErr, f.syncFails = syscall.EIO, 1 })
					}
					if err := l.AppendBatch(context.Background(), &b); err != nil {
						t.Fatal(err)
					}
					if step%23 == 11 {
						fs.set(func(f *faultFS) { f.syncErr, f.syncFails = syscall.EIO, 1 })
						_ = l.Sync() // fails; the next one writes the records again
						if err := l.Sync(); err != nil {
							t.Fatal(err)
						}
					}
					fs.set(func(f *faultFS) { f.syncFails = 0 })
					got := readLimited(t, fast, lim)
					out.fast = append(out.fast, got...)
					if len(got) > 0 {
						if err := fast.Commit(got[len(got)-1].Pos); err != nil {
							t.Fatal(err)
						}
					}
					if step%150 == 149 { // slow lags by more than the bound, then catches up
						got := readLimited(t, slow, lim)
						out.slow = append(out.slow, got...)
						if len(got) > 0 {
							if err := slow.Commit(got[len(got)-1].Pos); err != nil {
								t.Fatal(err)
							}
						}
					}
				}
				out.slow = append(out.slow, readLimited(t, slow, lim)...)
				out.dropped = testutil.ToFloat64(l.m.dropped.WithLabelValues("slow", reasonBufferFull))
				m1, _ := readFrom(l, "fast")
				m2, _ := readFrom(l, "slow")
				out.memory = m1 + m2
				return out
			}
			on, off := run(DefaultHotBytes), run(-1)
			if on.memory == 0 || off.memory != 0 {
				t.Fatalf("records read from memory: %v with the window, %v without", on.memory, off.memory)
			}
			if on.dropped == 0 {
				t.Fatal("the script dropped nothing: it does not test drop_oldest")
			}
			if on.dropped != off.dropped {
				t.Fatalf("dropped %v with the window, %v without", on.dropped, off.dropped)
			}
			for _, c := range []struct {
				name    string
				on, off []Record
			}{{"fast", on.fast, off.fast}, {"slow", on.slow, off.slow}} {
				if len(c.on) != len(c.off) {
					t.Fatalf("%s: %d records with the window, %d without", c.name, len(c.on), len(c.off))
				}
				for i := range c.on {
					if c.on[i].Pos != c.off[i].Pos || !bytes.Equal(c.on[i].Data, c.off[i].Data) {
						t.Fatalf("%s: record %d differs: %+v/%d vs %+v/%d", c.name, i,
							c.on[i].Pos, recNum(c.on[i].Data), c.off[i].Pos, recNum(c.off[i].Data))
					}
				}
			}
		})
	}
}
