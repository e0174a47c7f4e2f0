package buffer

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestRunSyncsEveryInterval: under interval, appended data is fsynced by
// Run within an interval, and Run returns nil when its ctx is done.
func TestRunSyncsEveryInterval(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		l := testOpen(t, Options{Dir: dir, FsyncInterval: time.Second})
		defer l.Close()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- l.Run(ctx) }()
		unsynced := func() bool {
			l.mu.Lock()
			defer l.mu.Unlock()
			return l.synced < l.written
		}
		appendN(t, l, 0, 10, 10, 100)
		if !unsynced() {
			t.Fatal("interval append was fsynced at once")
		}
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if unsynced() {
			t.Fatal("not fsynced after an interval")
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
	})
}

// TestRunReturnsOnClose: Run ends when the Log is closed.
func TestRunReturnsOnClose(t *testing.T) {
	for _, fsync := range []string{FsyncInterval, FsyncBatch} {
		l := testOpen(t, Options{Dir: t.TempDir(), Fsync: fsync})
		done := make(chan error)
		go func() { done <- l.Run(context.Background()) }()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
	}
}

// TestSyncPolicies: Sync makes everything appended durable, except under
// never where it does nothing; batch appends are durable on return.
func TestSyncPolicies(t *testing.T) {
	cases := map[string]struct {
		fsync              string
		afterAppend, after bool // durable after Append, after Sync
	}{
		"batch":    {FsyncBatch, true, true},
		"interval": {FsyncInterval, false, true},
		"never":    {FsyncNever, false, false},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			l := testOpen(t, Options{Dir: t.TempDir(), Fsync: c.fsync})
			defer l.Close()
			durable := func() bool {
				l.mu.Lock()
				defer l.mu.Unlock()
				return l.synced == l.written
			}
			appendN(t, l, 0, 5, 5, 100)
			if durable() != c.afterAppend {
				t.Fatalf("durable after Append: %v", durable())
			}
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			if durable() != c.after {
				t.Fatalf("durable after Sync: %v", durable())
			}
		})
	}
}

// TestMetrics: the buffer's metrics are registered on the given registry
// with their documented names, and a nil Registerer works.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	l := testOpen(t, Options{Dir: t.TempDir(), MaxBytes: 1 << 20, SegmentBytes: 64 << 10, Fsync: FsyncBatch,
		WhenFull: WhenFullDropNewest, Cursors: []string{"s"}, Registerer: reg})
	appendN(t, l, 0, 10000, 100, 200) // more than the bound: some dropped
	for _, name := range []string{
		"skiff_buffer_bytes", "skiff_buffer_max_bytes", "skiff_buffer_records", "skiff_buffer_segments",
		"skiff_buffer_usage_ratio", "skiff_buffer_disk_error", "skiff_buffer_append_blocked",
		"skiff_buffer_cursor_lag_records", "skiff_buffer_cursor_lag_bytes",
		"skiff_buffer_fsync_duration_seconds", "skiff_buffer_dropped_records_total",
		"skiff_buffer_appended_records_total", "skiff_buffer_appended_bytes_total",
		"skiff_buffer_read_records_total",
	} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n == 0 {
			t.Errorf("%s: %d series, %v", name, n, err)
		}
	}
	if err := testutil.GatherAndCompare(reg, stringsReader(`
# HELP skiff_buffer_segments Segment files in the buffer.
# TYPE skiff_buffer_segments gauge
skiff_buffer_segments 16
`), "skiff_buffer_segments"); err != nil {
		t.Error(err)
	}
	if v := testutil.ToFloat64(l.m.dropped.WithLabelValues("s", reasonBufferFull)); v == 0 {
		t.Error("no drops counted")
	}
	// Close unregisters, so the directory can be opened again on the
	// same registry.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = testOpen(t, Options{Dir: l.o.Dir, MaxBytes: 1 << 20, Cursors: []string{"s"}, Registerer: reg})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// nil Registerer.
	l2, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l2, 0, 1, 1, 10)
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestNoAllocPerRecord: appends allocate nothing once warm, and a read
// allocates twice per batch (payload buffer, record slice), not per record,
// or nothing when the consumer releases its batches.
func TestNoAllocPerRecord(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("allocation counts differ under cover/race")
	}
	l := testOpen(t, Options{Dir: t.TempDir(), MaxBytes: 1 << 30, Fsync: FsyncNever, Cursors: []string{"r"}})
	defer l.Close()
	recs := benchBatch(1024)
	ctx := context.Background()
	// Warm up the write buffer and fill the hot window, so that every
	// append finds recycled batch memory.
	appendN(t, l, 0, 64*1024, 1024, benchRec)
	if a := testing.AllocsPerRun(50, func() {
		if err := l.Append(ctx, recs); err != nil {
			t.Fatal(err)
		}
	}); a > 0 {
		t.Fatalf("Append of 1024 records: %v allocations", a)
	}
	// As the tailer does: the batch is filled again after every append,
	// into the memory AppendBatch left it.
	var bt Batch
	if a := testing.AllocsPerRun(50, func() {
		bt.Reset()
		for _, r := range recs {
			bt.Add(r)
		}
		if err := l.AppendBatch(ctx, &bt); err != nil {
			t.Fatal(err)
		}
	}); a > 0 {
		t.Fatalf("AppendBatch of 1024 records: %v allocations", a)
	}
	c, _ := l.Cursor("r")
	if a := testing.AllocsPerRun(50, func() {
		got, err := c.Next(ctx, 1024, 1<<20)
		if err != nil || len(got) != 1024 {
			t.Fatalf("Next: %d, %v", len(got), err)
		}
	}); a > 2 {
		t.Fatalf("Next of 1024 records: %v allocations", a)
	}
	// With Release, batches reuse released memory: no allocation at all.
	appendN(t, l, 0, 51*1024, 1024, benchRec)
	got, err := c.Next(ctx, 1024, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	c.Release(got) // turns recycling on
	if a := testing.AllocsPerRun(50, func() {
		got, err := c.Next(ctx, 1024, 1<<20)
		if err != nil || len(got) != 1024 {
			t.Fatalf("Next: %d, %v", len(got), err)
		}
		c.Release(got)
	}); a > 0 {
		t.Fatalf("Next+Release of 1024 records: %v allocations", a)
	}
	_ = errors.New
}
