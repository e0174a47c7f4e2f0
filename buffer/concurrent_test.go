package buffer

import (
	"context"
	"sync"
	"testing"
)

// TestConcurrentUse runs every method at once, for the race detector: two
// appenders (serialised by Append), a Run loop, two cursors each read by
// one goroutine and committed by another, and observers calling Sync,
// Stats, Lag and Err. Each cursor must see every record of each appender
// in that appender's order, exactly once.
func TestConcurrentUse(t *testing.T) {
	l := testOpen(t, Options{Dir: t.TempDir(), MaxBytes: 1 << 20, SegmentBytes: 64 << 10,
		FsyncInterval: 1e6, Cursors: []string{"a", "b"}})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = l.Run(ctx) })
	const perWriter = 3000
	var writers sync.WaitGroup
	for w := range 2 {
		writers.Go(func() {
			for i := 0; i < perWriter; i += 30 {
				var recs [][]byte
				for j := i; j < i+30; j++ {
					recs = append(recs, rec(uint64(w)<<32|uint64(j), 150))
				}
				if err := l.Append(ctx, recs); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for ctx.Err() == nil {
			_ = l.Sync()
			_ = l.Stats()
			_ = l.Err()
		}
	})
	for _, name := range []string{"a", "b"} {
		c, _ := l.Cursor(name)
		commits := make(chan Pos, 16)
		wg.Go(func() {
			for p := range commits {
				if err := c.Commit(p); err != nil {
					t.Error(err)
				}
				_, _ = c.Lag()
			}
		})
		wg.Go(func() {
			defer close(commits)
			next := [2]uint64{}
			for next[0] < perWriter || next[1] < perWriter {
				recs, err := c.Next(ctx, 100, 8<<10)
				if err != nil {
					t.Error(err)
					return
				}
				for _, r := range recs {
					n := recNum(r.Data)
					w, i := n>>32, n&(1<<32-1)
					if i != next[w] {
						t.Errorf("cursor %s: writer %d record %d, want %d", name, w, i, next[w])
						return
					}
					next[w]++
				}
				commits <- recs[len(recs)-1].Pos
			}
		})
	}
	writers.Wait()
	a, _ := l.Cursor("a")
	b, _ := l.Cursor("b")
	waitFor(t, "both cursors to commit everything", func() bool {
		ra, _ := a.Lag()
		rb, _ := b.Lag()
		return t.Failed() || ra == 0 && rb == 0
	})
	cancel()
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
