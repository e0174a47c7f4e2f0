package buffer

import (
	"context"
	"testing"
)

func TestReplayFromMark(t *testing.T) {
	for name, tc := range map[string]struct {
		before, after int
		segBytes      int64
	}{
		"same segment":    {before: 10, after: 25, segBytes: 1 << 20},
		"across segments": {before: 300, after: 700, segBytes: 64 << 10},
		"nothing after":   {before: 50, after: 0, segBytes: 1 << 20},
	} {
		t.Run(name, func(t *testing.T) {
			l := testOpen(t, Options{Dir: t.TempDir(), MaxBytes: 64 << 20, SegmentBytes: tc.segBytes, Fsync: FsyncNever, Cursors: []string{"a"}})
			appendN(t, l, 0, tc.before, 7, 200)
			mark := l.End()
			appendN(t, l, uint64(tc.before), tc.after, 7, 200)
			var got []uint64
			if err := l.Replay(context.Background(), mark, func(b []byte) error { got = append(got, recNum(b)); return nil }); err != nil {
				t.Fatal(err)
			}
			checkSeq(t, got, uint64(tc.before), tc.after)

			// A mark survives a restart as text.
			text, _ := mark.MarshalText()
			var back Pos
			if err := back.UnmarshalText(text); err != nil || back != mark {
				t.Fatalf("Pos text round trip: %v %v", back, err)
			}
		})
	}
}

// TestReplaySkipsDeletedSegments: records in segments that every sink
// consumed (and GC deleted) are not replayed, and Replay does not fail.
func TestReplaySkipsDeletedSegments(t *testing.T) {
	l := testOpen(t, Options{Dir: t.TempDir(), MaxBytes: 64 << 20, SegmentBytes: 64 << 10, Fsync: FsyncNever, Cursors: []string{"a"}})
	mark := l.End()
	appendN(t, l, 0, 1000, 10, 200)
	c, err := l.Cursor("a")
	if err != nil {
		t.Fatal(err)
	}
	recs := drain(t, c)
	if err := c.Commit(recs[500].Pos); err != nil {
		t.Fatal(err)
	}
	var got []uint64
	if err := l.Replay(context.Background(), mark, func(b []byte) error { got = append(got, recNum(b)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || len(got) >= 1000 || got[len(got)-1] != 999 {
		t.Fatalf("replayed %d records ending %v; want a suffix ending at 999 without the deleted segments", len(got), got[len(got)-1:])
	}
	checkSeq(t, got, got[0], len(got))
}

func TestPosUnmarshalRejects(t *testing.T) {
	for _, s := range []string{"", "1:2", "a:b:c", "1:-5:3", "1:2:3:4"} {
		var p Pos
		if err := p.UnmarshalText([]byte(s)); err == nil {
			t.Errorf("UnmarshalText(%q) accepted", s)
		}
	}
}
