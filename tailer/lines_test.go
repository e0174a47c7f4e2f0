package tailer

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/skiff-dev/skiff/internal/record"
)

// A 5 MiB line, invalid UTF-8, NUL bytes, CRLF and an unterminated last
// line among normal lines: every normal line arrives, the long line in
// partial pieces that add up to it, and the last line only at shutdown.
func TestHostileFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	long := bytes.Repeat([]byte("0123456789abcdef"), 5<<20/16)
	var b bytes.Buffer
	n := 0
	normal := func() { fmt.Fprintf(&b, "normal-%d\n", n); n++ }
	normal()
	b.Write(long)
	b.WriteByte('\n')
	normal()
	b.WriteString("bad \xff\xfe utf8\n")
	normal()
	b.WriteString("nul\x00in\x00the\x00middle\n")
	normal()
	b.WriteString("crlf line\r\n")
	normal()
	b.Write([]byte{0, 0, 0, 0, '\n'})
	normal()
	b.WriteString("unterminated last line")
	writeFile(t, path, b.String())

	o := testOptions(t, path)
	o.PartialFlush = time.Hour // only complete lines while the file is followed
	app := &memAppender{}
	tl, stop := start(t, o, app)
	waitFor(t, "normal lines", func() bool {
		return strings.Count(strings.Join(app.messages(), "\n"), "normal-") == n
	})
	if err := tl.WaitQuiet(t.Context(), 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	for _, m := range app.messages() {
		if strings.HasPrefix(m, "unterminated") {
			t.Fatal("unterminated line shipped while the file is still followed")
		}
	}
	if len(tl.buf) > 2<<20 {
		t.Errorf("read buffer is %d bytes: a long line must not be held whole", len(tl.buf))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	recs := app.snapshot()
	var pieces [][]byte
	var rest []string
	for _, r := range recs {
		if r.Partial() && bytes.HasPrefix(r.Message, []byte("0123")) {
			pieces = append(pieces, r.Message)
			continue
		}
		rest = append(rest, fmt.Sprintf("%q/%d", r.Message, r.Flags))
	}
	if len(pieces) != 5 {
		t.Errorf("long line came in %d pieces, want 5", len(pieces))
	}
	if !bytes.Equal(bytes.Join(pieces, nil), long) {
		t.Errorf("pieces do not add up to the long line")
	}
	want := []string{
		`"normal-0"/0`, `"normal-1"/0`, `"bad \xff\xfe utf8"/0`, `"normal-2"/0`,
		`"nul\x00in\x00the\x00middle"/0`, `"normal-3"/0`, `"crlf line"/0`, `"normal-4"/0`,
		`"\x00\x00\x00\x00"/0`, `"normal-5"/0`,
		fmt.Sprintf(`"unterminated last line"/%d`, record.FlagPartial|record.FlagMore), // the line may go on after a restart
	}
	if strings.Join(rest, " ") != strings.Join(want, " ") {
		t.Errorf("got  %s\nwant %s", strings.Join(rest, " "), strings.Join(want, " "))
	}
	// Offsets point at each line's first byte.
	data, _ := os.ReadFile(path)
	for _, r := range recs {
		if !bytes.HasPrefix(data[r.Offset:], r.Message) {
			t.Errorf("record at offset %d does not start there", r.Offset)
		}
	}
}

// The continuation of a line shipped unterminated at shutdown is marked
// partial after the restart, and nothing is repeated.
func TestUnterminatedAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	writeFile(t, path, "first\nhalf a")
	o := testOptions(t, path)
	app := &memAppender{}
	tl, stop := start(t, o, app)
	waitFor(t, "first", func() bool { return app.count() == 1 })
	if err := tl.WaitQuiet(t.Context(), 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, " line\nnext\n")
	o.Registerer = nil
	_, stop = start(t, o, app)
	waitFor(t, "the rest", func() bool { return app.count() == 4 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range app.snapshot() {
		got = append(got, fmt.Sprintf("%s/%v", r.Message, r.Partial()))
	}
	if g, w := strings.Join(got, "|"), "first/false|half a/true| line/true|next/false"; g != w {
		t.Errorf("got %s, want %s", g, w)
	}
}

// TestPartialFlush: an unterminated last line is shipped, marked partial,
// once its file has been quiet for PartialFlush, while the file is still
// followed; when the writer completes it, the rest arrives as its
// continuation (partial, at its own offset), never as a repeat of the
// first piece, also across a restart. A last "\r" stays for the
// continuation (it may be half of a CRLF).
func TestPartialFlush(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	writeFile(t, path, "full\nhalf a")
	o := testOptions(t, path)
	o.PartialFlush = 100 * time.Millisecond
	app := &memAppender{}
	_, stop := start(t, o, app)
	waitFor(t, "the unterminated line", func() bool { return app.count() == 2 })
	appendFile(t, path, " line\nnext\ncr\r")
	waitFor(t, "the continuation, next and cr", func() bool { return app.count() == 5 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, "\nlast\n")
	o.Registerer = nil
	_, stop = start(t, o, app)
	waitFor(t, "last", func() bool { return app.count() == 7 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range app.snapshot() {
		got = append(got, fmt.Sprintf("%q@%d/%d", r.Message, r.Offset, r.Flags))
	}
	p, pm := record.FlagPartial, record.FlagPartial|record.FlagMore
	want := []string{
		`"full"@0/0`,
		fmt.Sprintf(`"half a"@5/%d`, pm),
		fmt.Sprintf(`" line"@11/%d`, p),
		`"next"@17/0`,
		fmt.Sprintf(`"cr"@22/%d`, pm),
		fmt.Sprintf(`""@24/%d`, p), // "\r\n": the end of the line, after a restart
		`"last"@26/0`,
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got  %s\nwant %s", strings.Join(got, " "), strings.Join(want, " "))
	}
}

func TestMaxLineBytesSplitsAcrossReads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	writeFile(t, path, "")
	o := testOptions(t, path)
	o.MaxLineBytes = 10
	o.PartialFlush = time.Hour // cut by size alone
	app := &memAppender{}
	_, stop := start(t, o, app)
	// A long line written in slow pieces: pieces are cut by size, never by
	// timing.
	for _, p := range []string{"aaaaaaa", "aaaaaaabbbbbbbbbb", "cc", "c\r\nshort\n"} {
		appendFile(t, path, p)
		time.Sleep(20 * time.Millisecond)
	}
	waitFor(t, "short", func() bool { return app.count() == 4 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range app.snapshot() {
		got = append(got, fmt.Sprintf("%s/%v@%d", r.Message, r.Partial(), r.Offset))
	}
	if g, w := strings.Join(got, " "), "aaaaaaaaaa/true@0 aaaabbbbbb/true@10 bbbbccc/true@20 short/false@29"; g != w {
		t.Errorf("got  %s\nwant %s", g, w)
	}
}

// An unterminated last line ships, whole and not partial, when its file
// is rotated away or deleted.
func TestUnterminatedAtRotation(t *testing.T) {
	for _, mode := range []string{"rename", "delete"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "app.log")
			writeFile(t, path, "full\nhalf")
			o := testOptions(t, path)
			o.PartialFlush = time.Hour // not shipped before the rotation
			app := &memAppender{}
			_, stop := start(t, o, app)
			waitFor(t, "full", func() bool { return app.count() == 1 })
			var err error
			if mode == "rename" {
				err = os.Rename(path, path+".1")
			} else {
				err = os.Remove(path)
			}
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, path, "next\n")
			waitFor(t, "half and next", func() bool { return app.count() == 3 })
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range app.snapshot() {
				got = append(got, fmt.Sprintf("%s/%v", r.Message, r.Partial()))
			}
			if !strings.Contains(strings.Join(got, "|"), "half/false") {
				t.Errorf("got %v, want half/false among them", got)
			}
		})
	}
}

// An unterminated last line of a file closed for inactivity still ships
// at shutdown.
func TestUnterminatedInClosedFileAtShutdown(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	writeFile(t, path, "full\nhalf")
	o := testOptions(t, path)
	o.CloseInactive = 50 * time.Millisecond
	app := &memAppender{}
	tl, stop := start(t, o, app)
	waitFor(t, "full", func() bool { return app.count() == 1 })
	waitFor(t, "the file closed", func() bool { return testutil.ToFloat64(tl.m.filesOpen) == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(app.messages(), "|"); got != "full|half" {
		t.Errorf("got %q", got)
	}
}

// TestLineLongerThanReadBuffer: the read buffer starts at minReadBuf and
// grows for a line longer than that but within MaxLineBytes, which
// arrives whole; so does such a line left unterminated at shutdown.
func TestLineLongerThanReadBuffer(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	long := bytes.Repeat([]byte("0123456789abcdef"), 3*minReadBuf/16) // 3× the buffer
	tail := bytes.Repeat([]byte("x"), 2*minReadBuf)
	writeFile(t, path, "short\n"+string(long)+"\nafter\n"+string(tail))

	o := testOptions(t, path)
	o.MaxLineBytes = 4 * minReadBuf
	app := &memAppender{}
	fresh := o
	fresh.Registerer = nil
	if tl, err := New(fresh, app); err != nil || len(tl.buf) != minReadBuf {
		t.Fatalf("read buffer starts at %d bytes (%v), want %d", len(tl.buf), err, minReadBuf)
	}
	_, stop := start(t, o, app)
	waitFor(t, "the line after the long one", func() bool {
		return strings.Contains(strings.Join(app.messages(), "\n"), "after")
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range app.snapshot() {
		switch {
		case bytes.Equal(r.Message, long) && r.Flags == 0:
			got = append(got, "long")
		case bytes.Equal(r.Message, tail):
			got = append(got, "tail")
		case len(r.Message) < 10 && r.Flags == 0:
			got = append(got, string(r.Message))
		default:
			got = append(got, fmt.Sprintf("%.20q(%d bytes, flags %d)", r.Message, len(r.Message), r.Flags))
		}
	}
	if want := `short long after tail`; strings.Join(got, " ") != want {
		t.Errorf("got %s, want %s", strings.Join(got, " "), want)
	}
}

// TestLineLongerThanReadBudget: a line longer than what one file may
// read in a pass (readBudget) still arrives whole. The budget counts the
// bytes a pass consumes, not those it reads: counting reads, every pass
// re-read the same first readBudget bytes of the line and gave up.
func TestLineLongerThanReadBudget(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	long := bytes.Repeat([]byte("0123456789abcdef"), (readBudget+readBudget/2)/16)
	writeFile(t, path, "short\n"+string(long)+"\nafter\n")

	o := testOptions(t, path)
	o.MaxLineBytes = 2 * readBudget
	app := &memAppender{}
	_, stop := start(t, o, app)
	waitFor(t, "the line after the long one", func() bool {
		return strings.Contains(strings.Join(app.messages(), "\n"), "after")
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	recs := app.snapshot()
	if len(recs) != 3 || !bytes.Equal(recs[1].Message, long) || recs[1].Flags != 0 {
		var sizes []int
		for _, r := range recs {
			sizes = append(sizes, len(r.Message))
		}
		t.Fatalf("got records of %v bytes, want [5 %d 5], the long one whole", sizes, len(long))
	}
}
