package buffer

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// datasync flushes f's data and the metadata needed to read it back (the
// size), skipping timestamps: fdatasync(2).
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}

// writeback starts writeback of the range without waiting for it.
func writeback(f *os.File, off, n int64) error {
	return unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
