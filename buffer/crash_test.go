package buffer

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The crash test re-runs the test binary as a child that appends in a loop
// and prints each acknowledged record number; the parent SIGKILLs it at a
// random moment, reopens the buffer and checks that every acknowledged
// record is there, in order, exactly once.
const (
	crashChildEnv = "SKIFF_BUFFER_CRASH_CHILD"
	crashIterEnv  = "SKIFF_BUFFER_CRASH_ITER"
	crashFsyncEnv = "SKIFF_BUFFER_CRASH_FSYNC"
)

func crashOptions(dir, fsync string) Options {
	return Options{
		Dir: dir, MaxBytes: 4 << 20, SegmentBytes: 64 << 10, Fsync: fsync,
		FsyncInterval: 5 * time.Millisecond,
		Cursors:       []string{"verify", "child"},
	}
}

// crashRecord is (iteration, number) padded to a varying length.
func crashRecord(iter, n uint64, r *rand.Rand) []byte {
	b := make([]byte, 16+r.IntN(300))
	binary.LittleEndian.PutUint64(b[0:8], iter)
	binary.LittleEndian.PutUint64(b[8:16], n)
	return b
}

// crashChild runs in the child process: it appends until killed, while a
// second goroutine consumes and commits the "child" cursor so that GC,
// rolls and cursor files are all in motion at the moment of the kill.
func crashChild(dir string) {
	iter, _ := strconv.ParseUint(os.Getenv(crashIterEnv), 10, 64)
	l, err := Open(crashOptions(dir, os.Getenv(crashFsyncEnv)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(3)
	}
	ctx := context.Background()
	go func() { _ = l.Run(ctx) }()
	go func() {
		c, _ := l.Cursor("child")
		for {
			recs, err := c.Next(ctx, 100, 64<<10)
			if err != nil {
				return
			}
			_ = c.Commit(recs[len(recs)-1].Pos)
		}
	}()
	r := rand.New(rand.NewPCG(iter, 1))
	out := bufio.NewWriter(os.Stdout)
	var n uint64
	for {
		batch := make([][]byte, 1+r.IntN(40))
		for i := range batch {
			batch[i] = crashRecord(iter, n+uint64(i), r)
		}
		if err := l.Append(ctx, batch); err != nil {
			fmt.Fprintln(os.Stderr, "append:", err)
			os.Exit(3)
		}
		n += uint64(len(batch))
		fmt.Fprintf(out, "%d\n", n) // records 0..n-1 are acknowledged
		_ = out.Flush()
	}
}

func TestCrashSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	iterations := 100
	if os.Getenv("SKIFF_LONG") != "" {
		iterations = 400
	}
	dir := t.TempDir()
	policies := []string{FsyncBatch, FsyncInterval, FsyncNever}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	for iter := 1; iter <= iterations; iter++ {
		fsync := policies[iter%len(policies)]
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, crashIterEnv+"="+strconv.Itoa(iter), crashFsyncEnv+"="+fsync)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acks := make(chan uint64)
		go func() {
			defer close(acks)
			s := bufio.NewScanner(stdout)
			var last uint64
			first := true
			for s.Scan() {
				v, err := strconv.ParseUint(s.Text(), 10, 64)
				if err != nil {
					continue // a line cut by the kill
				}
				last = v
				if first {
					acks <- v // the child is up and appending
					first = false
				}
			}
			acks <- last
		}()
		<-acks
		time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		acked := <-acks
		for range acks {
		}
		_ = cmd.Wait()
		if strings.Contains(stderr.String(), "open:") || strings.Contains(stderr.String(), "append:") {
			t.Fatalf("iteration %d: child failed: %s", iter, stderr.String())
		}
		verifyCrash(t, dir, uint64(iter), acked, fsync)
	}
}

// verifyCrash reopens the buffer and checks the records of iteration iter:
// numbers 0..k-1 in order, each exactly once, with k >= acked.
func verifyCrash(t *testing.T, dir string, iter, acked uint64, fsync string) {
	t.Helper()
	l := testOpen(t, crashOptions(dir, fsync))
	defer func() {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	if v := testutil.ToFloat64(l.m.recovery.WithLabelValues("cursor_clamped")); v != 0 {
		t.Fatalf("iteration %d: a cursor was past the durable end after a process crash", iter)
	}
	c, _ := l.Cursor("verify")
	var next uint64
	var last Pos
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for {
		recs, err := c.Next(ctx, 1000, 1<<20)
		if err != nil {
			break
		}
		for _, r := range recs {
			gi := binary.LittleEndian.Uint64(r.Data[0:8])
			gn := binary.LittleEndian.Uint64(r.Data[8:16])
			if gi != iter || gn != next {
				t.Fatalf("iteration %d (fsync=%s): read record (%d, %d), want (%d, %d)", iter, fsync, gi, gn, iter, next)
			}
			next++
			last = r.Pos
		}
	}
	if next < acked {
		t.Fatalf("iteration %d (fsync=%s): %d records survived, %d were acknowledged", iter, fsync, next, acked)
	}
	if next > 0 {
		if err := c.Commit(last); err != nil {
			t.Fatal(err)
		}
	}
	child, _ := l.Cursor("child")
	if r, _ := child.Lag(); r < 0 || r > l.Stats().Records {
		t.Fatalf("iteration %d: child cursor lag %d with %d records retained", iter, r, l.Stats().Records)
	}
	t.Logf("iteration %d (fsync=%s): %d acknowledged, %d recovered", iter, fsync, acked, next)
}
