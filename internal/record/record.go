package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Flag bits of a Record.
const (
	// FlagPartial marks one piece of a line longer than SKIFF_MAX_LINE_BYTES.
	FlagPartial uint8 = 1 << iota
	// FlagJSON marks a message that the tailer verified to be a JSON object
	// (SKIFF_PARSE=json); the encoder emits it as an object, not a string.
	FlagJSON
	// flagEventTime is internal: EventTime is present in the binary form.
	flagEventTime
	// FlagMore marks a piece of a long line that the next record of the
	// same file continues (every piece but the last). It is not shipped;
	// the tailer uses it to resume mid-line after a crash.
	FlagMore
)

// binaryVersion is the first byte of every encoded record. Bump it when the
// layout changes and keep decoding the old one (see buffer/FORMAT.md for the
// frame around it).
const binaryVersion = 1

// Record is one line read from a file.
//
// Message and Path may alias the buffer they were decoded from; copy them
// to keep them beyond the life of that buffer.
type Record struct {
	// Collected is when skiff read the line.
	Collected time.Time
	// EventTime is the application's own timestamp when SKIFF_TIME_FIELD
	// found one; zero otherwise.
	EventTime time.Time
	// Source identifies the file (device, inode and fingerprint, hashed).
	// Together with Offset and the instance it makes the record ID stable.
	Source uint64
	// Offset is the byte offset of the line's first byte in its file.
	Offset int64
	// End is the offset just past the line's last byte in its file,
	// terminator included: where reading resumes after this record. The
	// tailer uses it to resume exactly after the last record that reached
	// the buffer, so a crash repeats no line that was appended.
	End int64
	// Path is the file's path when the line was read. It is a label, not
	// an identity: rotation changes it.
	Path []byte
	// Message is the line without its terminator (LF or CRLF).
	Message []byte
	// Flags is a set of Flag* bits.
	Flags uint8
}

// Time is the record's timestamp as shipped: the event time when one was
// parsed, else the collection time.
func (r *Record) Time() time.Time {
	if !r.EventTime.IsZero() {
		return r.EventTime
	}
	return r.Collected
}

// Partial reports whether the record is one piece of a split long line.
func (r *Record) Partial() bool { return r.Flags&FlagPartial != 0 }

// ErrMalformed is returned by Decode for bytes that are not an encoded record.
var ErrMalformed = errors.New("malformed record")

// AppendBinary appends r's binary form to dst and returns the result. It
// allocates only when dst has no room.
func (r *Record) AppendBinary(dst []byte) []byte {
	flags := r.Flags &^ flagEventTime
	if !r.EventTime.IsZero() {
		flags |= flagEventTime
	}
	dst = append(dst, binaryVersion, flags)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(r.Collected.UnixNano()))
	if flags&flagEventTime != 0 {
		dst = binary.LittleEndian.AppendUint64(dst, uint64(r.EventTime.UnixNano()))
	}
	dst = binary.LittleEndian.AppendUint64(dst, r.Source)
	dst = binary.AppendUvarint(dst, uint64(r.Offset))
	dst = binary.AppendUvarint(dst, uint64(max(r.End-r.Offset, 0)))
	dst = binary.AppendUvarint(dst, uint64(len(r.Path)))
	dst = append(dst, r.Path...)
	return append(dst, r.Message...)
}

// Decode fills r from b, the output of AppendBinary. Path and Message alias
// b. It never panics on arbitrary input.
func (r *Record) Decode(b []byte) error {
	if len(b) < 2+8+8 {
		return fmt.Errorf("%w: %d bytes is too short", ErrMalformed, len(b))
	}
	if b[0] != binaryVersion {
		return fmt.Errorf("%w: unknown version %d", ErrMalformed, b[0])
	}
	flags := b[1]
	b = b[2:]
	r.Collected = time.Unix(0, int64(binary.LittleEndian.Uint64(b))).UTC()
	b = b[8:]
	r.EventTime = time.Time{}
	if flags&flagEventTime != 0 {
		if len(b) < 16 {
			return fmt.Errorf("%w: truncated event time", ErrMalformed)
		}
		r.EventTime = time.Unix(0, int64(binary.LittleEndian.Uint64(b))).UTC()
		b = b[8:]
	}
	if len(b) < 8 {
		return fmt.Errorf("%w: truncated source", ErrMalformed)
	}
	r.Source = binary.LittleEndian.Uint64(b)
	b = b[8:]
	off, n := binary.Uvarint(b)
	if n <= 0 || off > 1<<62 {
		return fmt.Errorf("%w: bad offset", ErrMalformed)
	}
	b = b[n:]
	span, n := binary.Uvarint(b)
	if n <= 0 || span > 1<<62-off {
		return fmt.Errorf("%w: bad span", ErrMalformed)
	}
	b = b[n:]
	plen, n := binary.Uvarint(b)
	if n <= 0 || plen > uint64(len(b)-n) {
		return fmt.Errorf("%w: bad path length", ErrMalformed)
	}
	b = b[n:]
	r.Offset = int64(off)
	r.End = int64(off + span)
	r.Path = b[:plen:plen]
	r.Message = b[plen:]
	r.Flags = flags &^ flagEventTime
	return nil
}
