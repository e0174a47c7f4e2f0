package buffer

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// testOpen opens a Log in dir with a private registry.
func testOpen(t testing.TB, o Options) *Log {
	t.Helper()
	o = withTestHot(o)
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	l, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

// rec returns a numbered payload of n bytes (at least 8).
func rec(i uint64, n int) []byte {
	b := make([]byte, max(n, 8))
	binary.LittleEndian.PutUint64(b, i)
	for j := 8; j < len(b); j++ {
		b[j] = byte('a' + (int(i)+j)%26)
	}
	return b
}

func recNum(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

// appendN appends records numbered from..from+n-1 in batches of batch.
func appendN(t testing.TB, l *Log, from uint64, n, batch, size int) {
	t.Helper()
	for i := 0; i < n; i += batch {
		var recs [][]byte
		for j := i; j < min(n, i+batch); j++ {
			recs = append(recs, rec(from+uint64(j), size))
		}
		if err := l.Append(context.Background(), recs); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
}

// drain reads everything currently in the log through c, until Next would
// block, and returns the records.
func drain(t testing.TB, c *Cursor) []Record {
	t.Helper()
	var all []Record
	// A done ctx makes Next return what is readable, or ctx.Err() at once.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for {
		recs, err := c.Next(ctx, 1000, 1<<20)
		if errors.Is(err, context.Canceled) {
			return all
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		all = append(all, recs...)
	}
}

// nums returns the record numbers of recs.
func nums(recs []Record) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = recNum(r.Data)
	}
	return out
}

// checkSeq fails unless got is from, from+1, ... with n elements.
func checkSeq(t testing.TB, got []uint64, from uint64, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("got %d records, want %d", len(got), n)
	}
	for i, g := range got {
		if g != from+uint64(i) {
			t.Fatalf("record %d is %d, want %d", i, g, from+uint64(i))
		}
	}
}

// segFiles returns the segment files in dir, sorted.
func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segmentSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// diskBytes is what the bound counts: segment and quarantined files in
// whole blocks, and the blocks the file system really allocated.
func diskBytes(t testing.TB, dir string) (charged, allocated int64) {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if filepath.Ext(e.Name()) != segmentSuffix && filepath.Ext(e.Name()) != corruptSuffix {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // deleted meanwhile
		}
		charged += diskSize(info.Size())
		allocated += allocatedBytes(info)
	}
	return charged, allocated
}

// waitFor polls cond with a generous deadline (no timed assertions).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }
