//go:build linux

package buffer

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// dropCache evicts the files from the page cache (they must be clean).
func dropCache(b *testing.B, files []string) {
	b.Helper()
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			b.Fatal(err)
		}
		if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
			b.Fatal(err)
		}
		_ = f.Close()
	}
}
