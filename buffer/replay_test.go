package buffer

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// TestReplayStopsAtGap: after a power loss with several segments unsynced
// (FsyncInterval), a sealed segment may have lost records while later
// segments kept theirs. Replay must stop before the first gap, so that the
// tailer resumes before the lost lines instead of after the survivors.
func TestReplayStopsAtGap(t *testing.T) {
	const frame = 208 // rec(i, 200), framed
	for name, damage := range map[string]func(t *testing.T, seg string){
		"corrupt frame": func(t *testing.T, seg string) {
			f, err := os.OpenFile(seg, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt([]byte{0xff, 0xfe}, H+100*frame+20); err != nil {
				t.Fatal(err)
			}
		},
		"zeroed blocks": func(t *testing.T, seg string) {
			f, err := os.OpenFile(seg, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(make([]byte, 8192), H+100*frame); err != nil {
				t.Fatal(err)
			}
		},
		"cut between frames": func(t *testing.T, seg string) {
			if err := os.Truncate(seg, H+100*frame); err != nil {
				t.Fatal(err)
			}
		},
		"cut inside a frame": func(t *testing.T, seg string) {
			if err := os.Truncate(seg, H+100*frame+50); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			// A cursor that never commits keeps every segment.
			o := Options{Dir: dir, MaxBytes: 64 << 20, SegmentBytes: 64 << 10, Cursors: []string{"a"}}
			l := testOpen(t, o)
			appendN(t, l, 0, 1500, 50, 200) // about 5 segments of 315 records
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			segs := segFiles(t, dir)
			if len(segs) < 4 {
				t.Fatalf("%d segments, want at least 4", len(segs))
			}
			hdr := make([]byte, H)
			f, err := os.Open(segs[1])
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.ReadAt(hdr, 0)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			firstSeq, err := decodeSegmentHeader(hdr)
			if err != nil {
				t.Fatal(err)
			}
			damage(t, segs[1])

			l = testOpen(t, o)
			defer l.Close()
			var got []uint64
			if err := l.Replay(context.Background(), Pos{}, func(b []byte) error { got = append(got, recNum(b)); return nil }); err != nil {
				t.Fatal(err)
			}
			// Everything before the damage, nothing after it.
			checkSeq(t, got, 0, int(firstSeq)+100)
		})
	}
}

// TestReplayStopsAtGapAfterMark: the records right after the mark were
// lost (the mark's segment ends at the mark) while later segments kept
// theirs: nothing is replayed.
func TestReplayStopsAtGapAfterMark(t *testing.T) {
	const frame = 208
	dir := t.TempDir()
	o := Options{Dir: dir, MaxBytes: 64 << 20, SegmentBytes: 64 << 10, Cursors: []string{"a"}}
	l := testOpen(t, o)
	appendN(t, l, 0, 1500, 50, 200)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs := segFiles(t, dir)
	id, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(segs[1]), segmentSuffix), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(segs[1])
	if err != nil {
		t.Fatal(err)
	}
	firstSeq, err := decodeSegmentHeader(b[:H])
	if err != nil {
		t.Fatal(err)
	}
	mark := Pos{Segment: id, Offset: H + 100*frame, Seq: firstSeq + 100}
	if err := os.Truncate(segs[1], mark.Offset); err != nil {
		t.Fatal(err)
	}
	l = testOpen(t, o)
	defer l.Close()
	var got []uint64
	if err := l.Replay(context.Background(), mark, func(b []byte) error { got = append(got, recNum(b)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("replayed %d records from %d on, after lost ones", len(got), got[0])
	}
}
