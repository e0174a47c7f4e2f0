package sinks

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/skiff-dev/skiff/internal/record"
)

func dlRecords(from, n, size int) []record.Record {
	out := make([]record.Record, n)
	for i := range out {
		if err := out[i].Decode(testRecord(from+i, size)); err != nil {
			panic(err)
		}
	}
	return out
}

// readDeadLetters returns every line in dir's dead-letter files, parsed.
func readDeadLetters(t *testing.T, dir string) []map[string]any {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, n := range names {
		f, err := os.Open(n)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("%s: %v: %s", n, err, sc.Bytes())
			}
			out = append(out, m)
		}
		f.Close()
	}
	return out
}

func TestDeadLetterWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "deadletter")
	reg := prometheus.NewRegistry()
	d := NewDeadLetter(DeadLetterOptions{Dir: dir, Encoder: record.NewEncoder("pod1", record.Kubernetes{}, nil), Registerer: reg})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("NewDeadLetter touched the disk: %v", err)
	}
	if err := d.Write("es", `400 "mapper_parsing_exception"`, dlRecords(0, 3, 0)); err != nil {
		t.Fatal(err)
	}
	lines := readDeadLetters(t, dir)
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3", len(lines))
	}
	dl := lines[0]["dead_letter"].(map[string]any)
	if dl["sink"] != "es" || dl["reason"] != `400 "mapper_parsing_exception"` || dl["time"] == "" {
		t.Errorf("dead_letter = %v", dl)
	}
	if lines[1]["id"] != "pod1-0000000000000abc-1" || !strings.HasPrefix(lines[1]["message"].(string), "line 1") {
		t.Errorf("record = %v", lines[1])
	}
	if v := testutil.ToFloat64(d.records.WithLabelValues("es")); v != 3 {
		t.Errorf("dead_letter_records_total = %v", v)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("temp file left: %s", e.Name())
		}
	}
}

// TestDeadLetterBound: the directory stays within MaxBytes by deleting the
// oldest files, whose records are counted, including files from an
// earlier run; a single oversized write is dropped and counted.
func TestDeadLetterBound(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDeadLetter(DeadLetterOptions{Dir: dir, MaxBytes: 20 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := d.Write("h", "400", dlRecords(i*10, 10, 200)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // distinct timestamps make "oldest" observable
	}
	total := func() (n int64) {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			info, _ := e.Info()
			n += info.Size()
		}
		return n
	}
	if total() > 20<<10 {
		t.Errorf("%d bytes on disk, bound 20KiB", total())
	}
	lines := readDeadLetters(t, dir)
	kept := len(lines)
	if kept == 0 || kept == 100 {
		t.Fatalf("%d records kept", kept)
	}
	// The newest survive.
	if got := lines[len(lines)-1]["offset"].(float64); got != 99 {
		t.Errorf("newest kept offset %v, want 99", got)
	}
	if v := testutil.ToFloat64(d.dropped); int(v) != 100-kept {
		t.Errorf("dropped = %v, want %d", v, 100-kept)
	}

	// A new run accounts for the files already there.
	os.WriteFile(filepath.Join(dir, ".tmp-123"), []byte("torn"), 0o600)
	d2, err := OpenDeadLetter(DeadLetterOptions{Dir: dir, MaxBytes: 20 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".tmp-123")); !os.IsNotExist(err) {
		t.Error("leftover temp file not removed")
	}
	if err := d2.Write("h", "400", dlRecords(100, 10, 200)); err != nil {
		t.Fatal(err)
	}
	if total() > 20<<10 {
		t.Errorf("%d bytes on disk after reopen, bound 20KiB", total())
	}
	if testutil.ToFloat64(d2.dropped) == 0 {
		t.Error("reopened writer dropped nothing to make room")
	}
	// Too big for the bound on its own.
	if err := d2.Write("h", "413", dlRecords(0, 200, 200)); err != nil {
		t.Fatal(err)
	}
	if total() > 20<<10 {
		t.Errorf("%d bytes on disk after oversized write", total())
	}
}

func TestDeadLetterConcurrent(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDeadLetter(DeadLetterOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 20 {
				if err := d.Write(fmt.Sprintf("s%d", w), "400", dlRecords(w*1000+i*5, 5, 0)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	seen := map[float64]bool{}
	for _, l := range readDeadLetters(t, dir) {
		seen[l["offset"].(float64)] = true
	}
	if len(seen) != 8*20*5 {
		t.Errorf("%d distinct records, want %d", len(seen), 8*20*5)
	}
}

func TestDeadLetterOddSinkName(t *testing.T) {
	dir := t.TempDir()
	d := NewDeadLetter(DeadLetterOptions{Dir: dir})
	if err := d.Write("../../etc/x-1", "400", dlRecords(0, 2, 0)); err != nil {
		t.Fatal(err)
	}
	lines := readDeadLetters(t, dir)
	if len(lines) != 2 || lines[0]["dead_letter"].(map[string]any)["sink"] != "../../etc/x-1" {
		t.Errorf("lines %v", lines)
	}
	d2, err := OpenDeadLetter(DeadLetterOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(d2.files) != 1 || d2.files[0].records != 2 {
		t.Errorf("reopened: %+v", d2.files)
	}
}
