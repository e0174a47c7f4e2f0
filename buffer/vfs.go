package buffer

import (
	"io"
	"os"
	"path/filepath"
)

// fileSystem is the part of the file system the buffer uses. It exists so
// that tests can inject disk faults (ENOSPC, failed fsync, short writes)
// under the real code; production uses osFS.
type fileSystem interface {
	OpenFile(name string, flag int, perm os.FileMode) (file, error)
	ReadDir(dir string) ([]os.DirEntry, error)
	Remove(name string) error
	Rename(oldpath, newpath string) error
	// SyncDir fsyncs a directory so that creates, renames and removes in
	// it survive power loss.
	SyncDir(dir string) error
}

// file is an open file. Writes always name their offset so that a failed
// write never leaves the file position somewhere unknown.
type file interface {
	io.ReaderAt
	io.WriterAt
	// Sync flushes the file's data (fdatasync where available).
	Sync() error
	Truncate(size int64) error
	Stat() (os.FileInfo, error)
	Close() error
}

// osFS is the real file system.
type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (file, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) ReadDir(dir string) ([]os.DirEntry, error) { return os.ReadDir(dir) }
func (osFS) Remove(name string) error                  { return os.Remove(name) }
func (osFS) Rename(oldpath, newpath string) error      { return os.Rename(oldpath, newpath) }

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close() // the Sync error is the one that matters
		return err
	}
	return d.Close()
}

// osFile wraps *os.File to sync with fdatasync.
type osFile struct{ *os.File }

func (f osFile) Sync() error { return datasync(f.File) }
