package buffer

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// faultFS is the real file system with injectable failures, in the manner
// of a failing disk: writes to segment files can fail after writing half
// their bytes, and fsyncs can fail.
type faultFS struct {
	osFS
	mu        sync.Mutex
	writeErr  error // segment writes fail with it (after a short write)
	syncErr   error // segment fsyncs fail with it
	syncFails int   // how many more fsyncs fail (with syncErr); <0 means all
	writes    int   // segment writes attempted
	// wrote holds the memory of every segment write past the header,
	// when track is set.
	track bool
	wrote [][]byte
	// synced lists the segment files (base names) of successful fsyncs,
	// in order.
	synced []string
	// dirSyncs counts directory fsyncs.
	dirSyncs int
	// hinted counts the bytes of segment writeback hints.
	hinted int64
	// onSync and onRead, when set, run before each segment fsync and
	// read (outside mu): tests block them to hold a Sync mid-way.
	onSync, onRead func(name string)
}

func (f *faultFS) hooks() (onSync, onRead func(string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.onSync, f.onRead
}

func (f *faultFile) ReadAt(b []byte, off int64) (int, error) {
	if _, onRead := f.fs.hooks(); onRead != nil {
		onRead(f.name)
	}
	return f.file.ReadAt(b, off)
}

func (f *faultFS) hintedBytes() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hinted
}

func (f *faultFile) Writeback(off, n int64) error {
	f.fs.mu.Lock()
	f.fs.hinted += n
	f.fs.mu.Unlock()
	return f.file.Writeback(off, n)
}

func (f *faultFS) SyncDir(dir string) error {
	f.mu.Lock()
	f.dirSyncs++
	f.mu.Unlock()
	return f.osFS.SyncDir(dir)
}

func (f *faultFS) dirSyncCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dirSyncs
}

// syncs returns how many successful fsyncs segment file name had.
func (f *faultFS) syncs(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, s := range f.synced {
		if s == name {
			n++
		}
	}
	return n
}

func (f *faultFS) set(fn func(*faultFS)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *faultFS) OpenFile(name string, flag int, perm os.FileMode) (file, error) {
	inner, err := f.osFS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(filepath.Base(name), segmentSuffix) {
		return inner, err
	}
	return &faultFile{file: inner, fs: f, name: filepath.Base(name)}, nil
}

type faultFile struct {
	file
	fs   *faultFS
	name string
}

func (f *faultFile) WriteAt(b []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	f.fs.writes++
	err := f.fs.writeErr
	if f.fs.track && off >= segmentHeaderSize {
		f.fs.wrote = append(f.fs.wrote, b)
	}
	f.fs.mu.Unlock()
	if err != nil {
		n, _ := f.file.WriteAt(b[:len(b)/2], off)
		return n, err
	}
	return f.file.WriteAt(b, off)
}

func (f *faultFile) Sync() error {
	if onSync, _ := f.fs.hooks(); onSync != nil {
		onSync(f.name)
	}
	f.fs.mu.Lock()
	fail := f.fs.syncFails != 0
	if f.fs.syncFails > 0 {
		f.fs.syncFails--
	}
	err := f.fs.syncErr
	f.fs.mu.Unlock()
	if fail && err != nil {
		return err
	}
	if err := f.file.Sync(); err != nil {
		return err
	}
	f.fs.mu.Lock()
	f.fs.synced = append(f.fs.synced, f.name)
	f.fs.mu.Unlock()
	return nil
}
