package buffer

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// datasync flushes f's data and the metadata needed to read it back (the
// size), skipping timestamps: fdatasync(2). It runs on f's descriptor
// through SyscallConn, which keeps the descriptor open (and its number
// from being reused) for the duration of the call even if f is closed
// meanwhile; f.Fd() would not.
func datasync(f *os.File) error {
	var err error
	if cerr := control(f, func(fd int) {
		for {
			if err = syscall.Fdatasync(fd); err != syscall.EINTR {
				return
			}
		}
	}); cerr != nil {
		return cerr
	}
	if err != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
	}
	return nil
}

// writeback starts writeback of the range without waiting for it.
func writeback(f *os.File, off, n int64) error {
	var err error
	if cerr := control(f, func(fd int) {
		err = unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WRITE)
	}); cerr != nil {
		return cerr
	}
	return err
}

// control runs fn on f's descriptor, held open while fn runs.
func control(f *os.File, fn func(fd int)) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(func(fd uintptr) { fn(int(fd)) })
}
