//go:build !amd64

package buffer

// frameCRC3 returns frameCRC of three payloads (see crc3_amd64.go).
func frameCRC3(a, b, c []byte) (uint32, uint32, uint32) {
	return frameCRC(uint32(len(a)), a), frameCRC(uint32(len(b)), b), frameCRC(uint32(len(c)), c)
}
