package tailer

import (
	"context"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/skiff-dev/skiff/buffer"
	"github.com/skiff-dev/skiff/internal/record"
)

// logAppender keeps every appended record in order and replays them from a
// mark, the way the buffer does.
type logAppender struct {
	memAppender
	mu  sync.Mutex
	raw [][]byte
}

func (a *logAppender) AppendBatch(ctx context.Context, recs *buffer.Batch) error {
	a.mu.Lock()
	for i := range recs.Len() {
		a.raw = append(a.raw, append([]byte(nil), recs.Record(i)...))
	}
	a.mu.Unlock()
	return a.memAppender.AppendBatch(ctx, recs)
}

func (a *logAppender) Mark() ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return strconv.AppendInt(nil, int64(len(a.raw)), 10), nil
}

func (a *logAppender) Replay(_ context.Context, mark []byte, fn func([]byte) error) error {
	from := 0
	if len(mark) > 0 {
		var err error
		if from, err = strconv.Atoi(string(mark)); err != nil {
			return err
		}
	}
	a.mu.Lock()
	recs := append([][]byte(nil), a.raw[from:]...)
	a.mu.Unlock()
	for _, r := range recs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// TestResumeAfterRecordsPastTheCheckpoint: a run that appended records
// after its last checkpoint and then crashed must not make the next run
// append them again. Without the replay, lines 100-129 below arrive twice.
func TestResumeAfterRecordsPastTheCheckpoint(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	var lines []string
	for i := 0; i < 150; i++ {
		lines = append(lines, seqLine(i, 20))
	}
	for _, l := range lines[:100] {
		appendFile(t, path, l)
	}
	app := &logAppender{}
	o := testOptions(t, filepath.Join(dir, "*.log"))
	o.Replayer = app
	_, stop := start(t, o, app)
	waitFor(t, "the first 100 lines", func() bool { return app.count() == 100 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// The crashed run: it appended lines 100-129, then died before its
	// next checkpoint.
	first := app.snapshot()[0]
	off := int64(0)
	for _, l := range lines[:100] {
		off += int64(len(l))
	}
	var crashed buffer.Batch
	for _, l := range lines[100:130] {
		r := record.Record{Source: first.Source, Offset: off, End: off + int64(len(l)), Path: []byte(path), Message: []byte(l[:len(l)-1])}
		crashed.Add(r.AppendBinary(nil))
		off += int64(len(l))
	}
	for _, l := range lines[100:] {
		appendFile(t, path, l)
	}
	if err := app.AppendBatch(context.Background(), &crashed); err != nil {
		t.Fatal(err)
	}

	o.Registerer = nil
	_, stop = start(t, o, app)
	waitFor(t, "lines 130-149", func() bool { return app.count() >= 150 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	missing, repeated := seqCheck(app.messages(), 150)
	if len(missing) > 0 || len(repeated) > 0 {
		t.Fatalf("missing %s, repeated %s", short(missing), short(repeated))
	}
}
