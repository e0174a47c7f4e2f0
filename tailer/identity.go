package tailer

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"syscall"
)

// fpLen is how many leading bytes of a file make its fingerprint. A file
// shorter than this still gets one (a prefix) and is read at once.
const fpLen = 1024

// fileKey is the (device, inode) half of a file's identity.
type fileKey struct{ dev, ino uint64 }

func keyOf(fi os.FileInfo) fileKey {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileKey{}
	}
	return fileKey{dev: uint64(st.Dev), ino: uint64(st.Ino)} //nolint:unconvert // Dev is not uint64 on every platform
}

func nlinkOf(fi os.FileInfo) uint64 {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 1
	}
	return uint64(st.Nlink) //nolint:unconvert // Nlink is not uint64 on every platform
}

// fpMatch reports whether head, the current first bytes of a file, is
// consistent with the stored fingerprint: an append-only file's head only
// ever extends its old fingerprint.
func fpMatch(stored, head []byte) bool {
	return len(head) >= len(stored) && bytes.Equal(head[:len(stored)], stored)
}

// guardLen is how many bytes before the read position are kept and
// compared (follower.guard).
const guardLen = 64

// newSource returns the record.Record.Source of a new content generation:
// random, so that no two generations of a file share record IDs (a hash
// of the inode and the first line, as before, gave a file rewritten with
// the same first line, a banner or a CSV header, the old file's IDs, and
// Elasticsearch refused its lines as duplicates). It is kept in the
// checkpoint, written before the generation's first record is appended.
func newSource() uint64 {
	for {
		if s := rand.Uint64(); s != 0 {
			return s
		}
	}
}

// stampOf returns a file's modification and change times in nanoseconds
// (the change time, which no tool can set back, where the platform has
// it).
func stampOf(fi os.FileInfo) (mtime, ctime int64) {
	return fi.ModTime().UnixNano(), ctimeOf(fi)
}

// legacySource is the Source that versions before content generations
// derived from the device, the inode and the first line (≤ fpLen bytes).
// It is used only for a checkpoint entry written by such a version before
// any of the file's records was shipped (no Source in it): records it may
// have appended since then carry this Source, and the replay must find
// them.
func legacySource(k fileKey, head []byte) uint64 {
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[:i+1]
	}
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], k.dev)
	binary.LittleEndian.PutUint64(b[8:], k.ino)
	const offset64, prime64 = 14695981039346656037, 1099511628211
	h := uint64(offset64)
	for _, c := range b {
		h ^= uint64(c)
		h *= prime64
	}
	for _, c := range head {
		h ^= uint64(c)
		h *= prime64
	}
	return h
}
