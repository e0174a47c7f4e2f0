package tailer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/skiff-dev/skiff/internal/filter"
)

// errReleased is returned by follower.readAt once the janitor has closed
// the file (a deleted file held too long under a full buffer).
var errReleased = errors.New("file released")

// follower follows one file identity from discovery until it is released.
//
// Fields are owned by the Run goroutine, except those under mu, which the
// janitor goroutine also touches.
type follower struct {
	key     fileKey
	path    string
	pathB   []byte // path as bytes for records; replaced, never mutated
	pattern int    // index into the matcher's patterns, for the lag metric
	// missed counts consecutive scans that did not find a closed follower;
	// owned by the Run goroutine.
	missed int

	mu       sync.Mutex
	file     *os.File // nil when closed for inactivity or released; guarded by mu
	released bool     // the janitor closed the file; guarded by mu
	off      int64    // next byte not yet emitted (into the batch or a pending multiline record); guarded by mu for writes
	// deletedSeen is when the janitor first saw the file deleted while the
	// Appender was blocked; guarded by mu.
	deletedSeen time.Time
	readHi      int64 // end of the bytes read into memory so far; guarded by mu

	fp []byte // first bytes of the file, ≤ fpLen; grows with a small file
	// source is record.Record.Source of the file's current content
	// generation (newSource): a file truncated and rewritten, or a new file
	// on a reused inode, gets another one, so its records never take the
	// IDs of the old content's. idSaved says a checkpoint written since
	// names it: the first records of a generation wait for that, so that
	// after a crash the file is matched to the records it already has.
	source  uint64
	idSaved bool
	// guard holds the file's last bytes (≤ guardLen) before guardAt, as
	// read: a rewrite that changes them is a new generation, however its
	// first bytes and size compare. guard has room for 2*guardLen so that
	// keeping it current never allocates.
	guard   []byte
	guardAt int64
	mtime   int64 // modification and change times at the last check (ns), to
	ctime   int64 // see a same-size rewrite without reading the file
	settled bool  // the times were older than stampSettle at the last check

	committed       int64 // every byte before it is in records Append accepted; the checkpoint
	committedInLong bool  // whether committed is inside a long line shipped in pieces
	inLong          bool  // off is inside a long line shipped in pieces

	size       int64     // size at the last check
	seen       int64     // highest offset ever read, to tell growth from re-reading a partial line
	lastGrowth time.Time // when size last grew (or the file was opened)
	dirty      bool      // read it on the next pass
	check      bool      // run the poll checks (rotation, idleness) at the next EOF

	gone      bool // no longer found under any matching path: rotated away or deleted
	deleted   bool // its link count is 0
	successor bool // another non-empty file now sits at path, so the writer has moved on

	ml multiline // pending joined record, when multiline is on

	redact   filter.Stream // Options.Filter's state between this file's records
	dropLine bool          // the long line being shipped in pieces was dropped
}

func newFollower(key fileKey, path string, pattern int, f *os.File, now time.Time) *follower {
	return &follower{key: key, path: path, pathB: []byte(path), pattern: pattern, file: f, lastGrowth: now}
}

func (f *follower) setPath(p string) {
	f.path = p
	f.pathB = []byte(p)
}

// readAt reads from the file at off. It returns errReleased once the
// janitor has closed the file.
func (f *follower) readAt(b []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.file == nil {
		return 0, errReleased
	}
	n, err := f.file.ReadAt(b, off)
	if hi := off + int64(n); hi > f.readHi {
		f.readHi = hi
	}
	return n, err
}

func (f *follower) setOff(off int64) {
	f.mu.Lock()
	f.off = off
	f.mu.Unlock()
}

// stat returns the open file's info.
func (f *follower) stat() (os.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.file == nil {
		return nil, errReleased
	}
	return f.file.Stat()
}

// head reads the first n bytes of the open file into a new slice.
func (f *follower) head(n int) ([]byte, error) {
	b := make([]byte, n)
	m, err := f.readAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b[:m], nil
}

// closeFile closes the open file, if any, and reports whether it was open.
func (f *follower) closeFile() (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.file == nil {
		return false, nil
	}
	err := f.file.Close()
	f.file = nil
	if err != nil {
		return true, fmt.Errorf("close %s: %w", f.path, err)
	}
	return true, nil
}

func (f *follower) isOpen() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.file != nil
}

// sourceFor returns the record Source of the current generation.
func (f *follower) sourceFor() uint64 {
	if f.source == 0 {
		f.newGeneration()
	}
	return f.source
}

// newGeneration gives f a new identity for new contents: a new Source,
// not yet in any checkpoint, and no guard.
func (f *follower) newGeneration() {
	f.source, f.idSaved = newSource(), false
	f.guard, f.guardAt = f.guard[:0], 0
}

// advanceGuard records that consumed, the bytes of the file just before
// end, were read and passed on.
func (f *follower) advanceGuard(consumed []byte, end int64) {
	if cap(f.guard) < 2*guardLen {
		f.guard = make([]byte, 0, 2*guardLen)
	}
	switch {
	case len(consumed) >= guardLen:
		f.guard = append(f.guard[:0], consumed[len(consumed)-guardLen:]...)
	case f.guardAt == end-int64(len(consumed)):
		f.guard = append(f.guard, consumed...)
		if n := len(f.guard); n > guardLen {
			copy(f.guard, f.guard[n-guardLen:])
			f.guard = f.guard[:guardLen]
		}
	default:
		f.guard = append(f.guard[:0], consumed...)
	}
	f.guardAt = end
}

// guardHolds reports whether the file still has the guard bytes before
// guardAt (true when there is no guard yet).
func (f *follower) guardHolds(size int64, scratch []byte) (bool, error) {
	if len(f.guard) == 0 {
		return true, nil
	}
	if size < f.guardAt {
		return false, nil
	}
	b := scratch[:len(f.guard)]
	n, err := f.readAt(b, f.guardAt-int64(len(b)))
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	return n == len(b) && bytes.Equal(b, f.guard), nil
}
