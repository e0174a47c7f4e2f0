package buffer

import (
	"errors"
	"fmt"
)

// ErrClosed is returned by every method called after Close.
var ErrClosed = errors.New("buffer closed")

// ErrFull is returned by AppendAll when the buffer has no room for the
// batch: at once under WhenFullDropNewest, or wrapped with ctx's error when
// ctx ended while AppendAll waited for room.
var ErrFull = errors.New("buffer full")

// ErrRecordTooLarge is returned by Append when a record can never fit in
// the buffer (see Options.MaxBytes). Nothing of the batch was written.
var ErrRecordTooLarge = errors.New("record too large for the buffer")

// ErrUnknownCursor is returned by Cursor for a name that was not in
// Options.Cursors.
var ErrUnknownCursor = errors.New("unknown cursor")

// VersionError means a file was written by a newer format version than this
// binary knows. Open returns it instead of touching the data, so that a
// rollback of the binary never quarantines or truncates newer data; the
// caller should exit (skiff exits 2) and let the operator roll forward.
type VersionError struct {
	File      string // base name of the file
	Version   uint16 // version found
	Supported uint16 // newest version this binary reads
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("%s: format version %d is newer than this binary supports (%d): run a newer skiff or remove the buffer", e.File, e.Version, e.Supported)
}

// CorruptionError describes bytes in a segment that are not a valid frame.
// The buffer never returns it to readers: it skips the bytes, counts them and
// logs the error once. It is exported so that tools and tests can match it
// with errors.As.
type CorruptionError struct {
	Segment uint64 // segment ID
	Offset  int64  // offset of the first bad byte
	Skipped int64  // bytes skipped to the next valid frame or segment end
	Err     error
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("segment %d offset %d: %v (%d bytes skipped)", e.Segment, e.Offset, e.Err, e.Skipped)
}

// Unwrap returns the underlying error.
func (e *CorruptionError) Unwrap() error { return e.Err }
