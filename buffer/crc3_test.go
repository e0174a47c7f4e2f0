package buffer

import (
	"math/rand/v2"
	"testing"
)

// TestFrameCRC3: the three-way CRC equals frameCRC for every combination
// of lengths around the 8-byte word and the tails, and for unaligned
// slices.
func TestFrameCRC3(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 4096)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	lens := []int{0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 63, 200, 201, 1000}
	for _, la := range lens {
		for _, lb := range lens {
			for _, lc := range lens {
				oa, ob, oc := rng.IntN(64), rng.IntN(64), rng.IntN(64)
				a, b, c := buf[oa:oa+la], buf[1000+ob:1000+ob+lb], buf[2000+oc:2000+oc+lc]
				ga, gb, gc := frameCRC3(a, b, c)
				if wa, wb, wc := frameCRC(uint32(la), a), frameCRC(uint32(lb), b), frameCRC(uint32(lc), c); ga != wa || gb != wb || gc != wc {
					t.Fatalf("lengths %d,%d,%d: got %08x %08x %08x, want %08x %08x %08x", la, lb, lc, ga, gb, gc, wa, wb, wc)
				}
			}
		}
	}
}

func BenchmarkFrameCRC(b *testing.B) {
	p := make([]byte, benchRec)
	b.Run("single", func(b *testing.B) {
		b.SetBytes(3 * benchRec)
		for b.Loop() {
			frameCRC(benchRec, p)
			frameCRC(benchRec, p)
			frameCRC(benchRec, p)
		}
	})
	b.Run("three", func(b *testing.B) {
		b.SetBytes(3 * benchRec)
		for b.Loop() {
			frameCRC3(p, p, p)
		}
	})
}

// TestAppendFrames: appendFrames writes the same bytes as appendFrame in
// a loop, for every batch length around the groups of three.
func TestAppendFrames(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for n := range 10 {
		recs := make([][]byte, n)
		var want []byte
		for i := range recs {
			recs[i] = make([]byte, rng.IntN(300))
			for j := range recs[i] {
				recs[i][j] = byte(rng.Uint32())
			}
			want = appendFrame(want, recs[i])
		}
		if got := appendFrames(nil, recs); string(got) != string(want) {
			t.Fatalf("%d records: appendFrames differs from appendFrame", n)
		}
	}
}

func BenchmarkAppendFrames(b *testing.B) {
	recs := benchBatch(batch1MiB)
	buf := make([]byte, 0, 2<<20)
	b.SetBytes(int64(batch1MiB) * frameSize(benchRec))
	for b.Loop() {
		buf = appendFrames(buf[:0], recs)
	}
}

// BenchmarkDecodeFrames: checking and slicing 1 MiB of 200-byte records
// already in memory, the CPU part of a cursor read.
func BenchmarkDecodeFrames(b *testing.B) {
	buf := appendFrames(nil, benchBatch(batch1MiB))
	recs := make([]Record, 0, batch1MiB)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if got, _, err := decodeFrames(recs[:0], buf, Pos{}, int64(len(buf)), batch1MiB); err != nil || len(got) != batch1MiB {
			b.Fatalf("%d records, %v", len(got), err)
		}
	}
}

// BenchmarkFillHeaders: what AppendBatch spends on a 1 MiB batch before
// writing it (CRC-32C of every record, headers written in place).
func BenchmarkFillHeaders(b *testing.B) {
	var bt Batch
	for _, r := range benchBatch(batch1MiB) {
		bt.Add(r)
	}
	b.SetBytes(int64(bt.Size()))
	for b.Loop() {
		bt.fillHeaders()
	}
}
