#include "textflag.h"

// func crc3Words(a, b, c []byte, words int) (ca, cb, cc uint32)
//
// Three independent CRC-32C streams, interleaved so that the CRC32
// instruction's latency is hidden: each stream starts from the inverted
// initial value, takes the 32-bit little-endian length of its slice, then
// the first words 8-byte words of its slice. The results are the
// non-inverted states.
TEXT ·crc3Words(SB), NOSPLIT, $0-92
	MOVQ a_base+0(FP), SI
	MOVQ a_len+8(FP), R10
	MOVQ b_base+24(FP), DI
	MOVQ b_len+32(FP), R11
	MOVQ c_base+48(FP), R8
	MOVQ c_len+56(FP), R12
	MOVQ words+72(FP), CX
	MOVL $0xffffffff, AX
	MOVL AX, BX
	MOVL AX, DX
	CRC32L R10, AX
	CRC32L R11, BX
	CRC32L R12, DX
	TESTQ CX, CX
	JZ done

loop:
	CRC32Q (SI), AX
	CRC32Q (DI), BX
	CRC32Q (R8), DX
	ADDQ $8, SI
	ADDQ $8, DI
	ADDQ $8, R8
	DECQ CX
	JNZ loop

done:
	MOVL AX, ca+80(FP)
	MOVL BX, cb+84(FP)
	MOVL DX, cc+88(FP)
	RET
