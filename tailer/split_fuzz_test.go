package tailer

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/record"
)

// FuzzSplit checks the line splitter against the file it read: whatever
// the content, line length limit and write chunking, the records tile the
// file exactly. Each record's message is the file's bytes at its offset;
// the next record starts right after it (a piece of a long line) or after
// a "\n" or "\r\n" terminator (where a complete line's "\r" is not part of
// the message); and nothing is left uncovered.
func FuzzSplit(f *testing.F) {
	f.Add([]byte("a\nbb\r\nccc\n"), uint8(4), uint8(3))
	f.Add([]byte("aaaaaaaaa\r\nx"), uint8(10), uint8(1))
	f.Add([]byte("\n\n\r\n\r\r\n"), uint8(1), uint8(2))
	f.Add(bytes.Repeat([]byte("xyz\r"), 50), uint8(7), uint8(5))
	f.Fuzz(func(t *testing.T, data []byte, maxLine, chunk uint8) {
		if len(data) > 4096 {
			return
		}
		max := int(maxLine%32) + 1
		step := int(chunk%16) + 1
		dir := t.TempDir()
		path := filepath.Join(dir, "f.log")
		w, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		chunked := splitRecords(t, data, max, step)
		whole := splitRecords(t, data, max, len(data)+1)
		if len(chunked) != len(whole) {
			t.Fatalf("%d records when written in chunks of %d, %d when written at once", len(chunked), step, len(whole))
		}
		for i := range whole {
			c, w := chunked[i], whole[i]
			if c.Offset != w.Offset || c.Flags != w.Flags || !bytes.Equal(c.Message, w.Message) {
				t.Fatalf("record %d depends on write timing: %q@%d/%d vs %q@%d/%d", i, c.Message, c.Offset, c.Flags, w.Message, w.Offset, w.Flags)
			}
		}
		var pos int64
		for i, rec := range whole {
			if rec.Offset != pos {
				t.Fatalf("record %d at offset %d, want %d", i, rec.Offset, pos)
			}
			if len(rec.Message) > max {
				t.Fatalf("record %d is %d bytes, limit %d", i, len(rec.Message), max)
			}
			end := pos + int64(len(rec.Message))
			if !bytes.Equal(data[pos:end], rec.Message) {
				t.Fatalf("record %d = %q, file has %q", i, rec.Message, data[pos:end])
			}
			switch {
			case i+1 < len(whole) && whole[i+1].Offset == end:
				// A piece of a long line: exactly max bytes, marked partial.
				if !rec.Partial() || len(rec.Message) != max {
					t.Fatalf("record %d %q is followed without a terminator", i, rec.Message)
				}
				pos = end
			case bytes.HasPrefix(data[end:], []byte("\r\n")):
				pos = end + 2
			case bytes.HasPrefix(data[end:], []byte("\n")):
				pos = end + 1
			case rec.Partial() && (end == int64(len(data)) || end+1 == int64(len(data)) && data[end] == '\r'):
				// The unterminated last line, shipped at "shutdown"; a final
				// "\r" may be half a terminator and is not in the message.
				pos = int64(len(data))
			default:
				t.Fatalf("record %d %q is not followed by a terminator", i, rec.Message)
			}
		}
		if pos != int64(len(data)) {
			t.Fatalf("records cover %d of %d bytes", pos, len(data))
		}
	})
}

// splitRecords writes data to a file in chunks of step bytes, reading
// after each, then ships the unterminated rest as at shutdown.
func splitRecords(t *testing.T, data []byte, max, step int) []record.Record {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.log")
	w, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	app := &memAppender{}
	tl, err := New(Options{Paths: []string{path}, DataDir: dir, MaxLineBytes: max}, app)
	if err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := r.Stat()
	fl := newFollower(keyOf(st), path, 0, r, time.Now())
	defer fl.closeFile()
	ctx := context.Background()
	for i := 0; i < len(data); i += step {
		if _, err := w.Write(data[i:min(i+step, len(data))]); err != nil {
			t.Fatal(err)
		}
		for {
			eof, err := tl.readFile(ctx, fl, -1)
			if err != nil {
				t.Fatal(err)
			}
			if eof {
				break
			}
		}
	}
	if err := tl.emitRest(ctx, fl, int64(len(data)), true); err != nil {
		t.Fatal(err)
	}
	if err := tl.flush(ctx); err != nil {
		t.Fatal(err)
	}
	return app.snapshot()
}
