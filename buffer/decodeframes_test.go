package buffer

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// decodeFramesRef is decodeFrames done the plain way, one frame at a
// time with decodeFrame: the behaviour decodeFrames must match.
func decodeFramesRef(buf []byte, p Pos, limit int64, most int) (payloads [][]byte, pos int64, err error) {
	for len(payloads) < most && pos < int64(len(buf)) {
		payload, size, err := decodeFrame(buf[pos:], limit-(p.Offset+pos)-frameHeaderSize)
		if err != nil {
			return payloads, pos, err
		}
		payloads = append(payloads, payload)
		pos += size
	}
	return payloads, pos, nil
}

func checkDecodeFrames(t *testing.T, buf []byte, limitSlack int64, most int) {
	t.Helper()
	p := Pos{Segment: 3, Offset: 1000, Seq: 50}
	limit := p.Offset + int64(len(buf)) + limitSlack
	want, wantPos, wantErr := decodeFramesRef(buf, p, limit, most)
	got, gotPos, gotErr := decodeFrames(nil, buf, p, limit, most)
	if len(got) != len(want) || gotPos != wantPos || !errors.Is(gotErr, wantErr) || (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("decodeFrames: %d records, pos %d, err %v; one at a time: %d, %d, %v", len(got), gotPos, gotErr, len(want), wantPos, wantErr)
	}
	off := p.Offset
	for i, r := range got {
		off += frameSize(len(want[i]))
		if !bytes.Equal(r.Data, want[i]) || r.Pos != (Pos{Segment: 3, Offset: off, Seq: p.Seq + uint64(i) + 1}) {
			t.Fatalf("record %d: %+v, want data %x at offset %d", i, r, want[i], off)
		}
	}
}

// TestDecodeFramesMatchesOneAtATime: checking CRCs three at a time after
// a scan of the lengths returns exactly what decoding frame by frame
// returns (the valid prefix, where it stops and why), on batches with
// bit flips, truncations and tight limits.
func TestDecodeFramesMatchesOneAtATime(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for iter := range 20000 {
		n := rng.IntN(12)
		recs := make([][]byte, n)
		for i := range recs {
			recs[i] = make([]byte, rng.IntN(40))
			for j := range recs[i] {
				recs[i][j] = byte(rng.Uint32())
			}
		}
		buf := appendFrames(nil, recs)
		switch iter % 4 {
		case 1: // a bit flip anywhere
			if len(buf) > 0 {
				buf[rng.IntN(len(buf))] ^= 1 << rng.IntN(8)
			}
		case 2: // torn
			buf = buf[:rng.IntN(len(buf)+1)]
		case 3: // both
			if len(buf) > 0 {
				buf[rng.IntN(len(buf))] ^= 1 << rng.IntN(8)
			}
			buf = buf[:rng.IntN(len(buf)+1)]
		}
		checkDecodeFrames(t, buf, int64(rng.IntN(3))-1, 1+rng.IntN(14))
	}
}

// FuzzDecodeFrames: the same comparison on arbitrary bytes.
func FuzzDecodeFrames(f *testing.F) {
	f.Add(appendFrames(nil, [][]byte{[]byte("a"), []byte("bc"), []byte("def"), []byte("ghij")}), int64(0), 10)
	f.Add(appendFrames(nil, [][]byte{nil, nil, nil}), int64(-1), 2)
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 9}, int64(5), 1)
	f.Fuzz(func(t *testing.T, buf []byte, slack int64, most int) {
		if most < 1 || most > 1000 || slack < -int64(len(buf)) || slack > 1<<20 {
			t.Skip()
		}
		checkDecodeFrames(t, buf, slack, most)
	})
}
