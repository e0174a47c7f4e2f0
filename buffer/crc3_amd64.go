package buffer

import (
	"hash/crc32"

	"golang.org/x/sys/cpu"
)

// haveCRC3 reports whether crc3Words may run: it needs the SSE4.2 CRC32
// instruction.
var haveCRC3 = cpu.X86.HasSSE42

// crc3Words is in crc3_amd64.s.
//
//go:noescape
func crc3Words(a, b, c []byte, words int) (ca, cb, cc uint32)

// frameCRC3 returns frameCRC of three payloads. A single CRC-32C stream
// is bound by the CRC32 instruction's latency (about 8 bytes per 3
// cycles); three independent records in flight at once use its full
// throughput, which roughly triples the speed for short records.
func frameCRC3(a, b, c []byte) (uint32, uint32, uint32) {
	if !haveCRC3 {
		return frameCRC(uint32(len(a)), a), frameCRC(uint32(len(b)), b), frameCRC(uint32(len(c)), c)
	}
	w := min(len(a), len(b), len(c)) / 8
	sa, sb, sc := crc3Words(a, b, c, w)
	n := w * 8
	return crcFinish(sa, a[n:]), crcFinish(sb, b[n:]), crcFinish(sc, c[n:])
}

// crcFinish continues the non-inverted CRC-32C state s over rest and
// returns the final checksum.
func crcFinish(s uint32, rest []byte) uint32 {
	if len(rest) == 0 {
		return ^s
	}
	return crc32.Update(^s, castagnoli, rest)
}
