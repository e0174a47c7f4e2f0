package tailer

import (
	"bytes"
	"encoding/binary"
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

// sourceID is record.Record.Source: a hash of the device, the inode and the
// file's first line (at most fpLen bytes). It is stable for the life of the
// file, across restarts, even before any checkpoint names it, because the
// first line never changes once written; a new file on a reused inode has
// another first line.
func sourceID(k fileKey, head []byte) uint64 {
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
