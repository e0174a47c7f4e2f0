package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
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
	// FlagRedacted marks a message in which a filter replaced at least one
	// secret with a [REDACTED:<detector>] marker before the record was
	// appended; the JSON form ships "redacted":true. (Bits 1<<5 and 1<<6
	// are reserved for other flags.)
	FlagRedacted
)

// flagExt is internal: the binary form has an extension section (Origin,
// OTLP), and its version byte is binaryVersionExt. Bit 1<<4 is left to
// FlagRedacted and 1<<6 to the tailer.
const flagExt uint8 = 1 << 5

// The first byte of every encoded record (FORMAT.md; buffer/FORMAT.md has
// the frame around it). A record with an extension section is written as
// version 2 so that a binary that knows only version 1 rejects it rather
// than reading the section as part of the message; every other record is
// still written as version 1, byte for byte as before, so rolling back to
// such a binary loses no tailed record.
const (
	binaryVersion    = 1
	binaryVersionExt = 2
)

// Fields of the extension section, which is in protobuf wire form so that
// a later version can add fields older binaries skip.
const (
	extOrigin protowire.Number = 1 // varint: Origin
	extOTLP   protowire.Number = 2 // bytes: Record.OTLP
)

// Origin is the source that made a record.
type Origin uint8

// Origins. The zero value is the tailer's, so a record decoded from the
// version 1 form is a file line.
const (
	OriginFile Origin = iota // a line of a tailed file
	OriginOTLP               // an OTLP/HTTP log record (ingest /v1/logs)
	OriginJSON               // a JSON object POSTed to ingest /v1/json
	OriginText               // a line POSTed to ingest /v1/text
)

// String returns the name the JSON form's "source" member carries.
func (o Origin) String() string {
	switch o {
	case OriginFile:
		return "file"
	case OriginOTLP:
		return "otlp"
	case OriginJSON:
		return "json"
	case OriginText:
		return "text"
	}
	return fmt.Sprintf("origin%d", uint8(o))
}

// Record is one log record: a line read from a file, or a record an
// application sent to the ingest endpoints.
//
// Message and Path may alias the buffer they were decoded from; copy them
// to keep them beyond the life of that buffer.
type Record struct {
	// Collected is when skiff read the line.
	Collected time.Time
	// EventTime is the application's own timestamp when SKIFF_TIME_FIELD
	// found one; zero otherwise.
	EventTime time.Time
	// Source identifies the file's content generation (the tailer gives
	// each new contents of a file a random one and keeps it in its
	// checkpoint). Together with Offset and the instance it makes the
	// record ID stable.
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
	// Origin is the source that made the record. Records of the ingest
	// endpoints have no Path; their Source is the request's number and
	// Offset the record's index in the request (the ID stays stable and
	// unique), and End equals Offset, which tells the tailer's replay they
	// are not file positions.
	Origin Origin
	// OTLP is set for records of OriginOTLP: what the log record holds
	// besides its string body (resource, scope, the LogRecord's other
	// fields), in the form OTLPParts.AppendBinary makes and Decode reads.
	// Message is the body when it is a string, else its JSON rendering.
	OTLP []byte
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
	flags := r.Flags &^ (flagEventTime | flagExt)
	if !r.EventTime.IsZero() {
		flags |= flagEventTime
	}
	version := byte(binaryVersion)
	ext := r.Origin != OriginFile || len(r.OTLP) > 0
	if ext {
		flags |= flagExt
		version = binaryVersionExt
	}
	dst = append(dst, version, flags)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(r.Collected.UnixNano()))
	if flags&flagEventTime != 0 {
		dst = binary.LittleEndian.AppendUint64(dst, uint64(r.EventTime.UnixNano()))
	}
	dst = binary.LittleEndian.AppendUint64(dst, r.Source)
	dst = binary.AppendUvarint(dst, uint64(r.Offset))
	dst = binary.AppendUvarint(dst, uint64(max(r.End-r.Offset, 0)))
	dst = binary.AppendUvarint(dst, uint64(len(r.Path)))
	dst = append(dst, r.Path...)
	if ext {
		n := protowire.SizeTag(extOrigin) + protowire.SizeVarint(uint64(r.Origin))
		if len(r.OTLP) > 0 {
			n += protowire.SizeTag(extOTLP) + protowire.SizeBytes(len(r.OTLP))
		}
		dst = binary.AppendUvarint(dst, uint64(n))
		dst = protowire.AppendTag(dst, extOrigin, protowire.VarintType)
		dst = protowire.AppendVarint(dst, uint64(r.Origin))
		if len(r.OTLP) > 0 {
			dst = protowire.AppendTag(dst, extOTLP, protowire.BytesType)
			dst = protowire.AppendBytes(dst, r.OTLP)
		}
	}
	return append(dst, r.Message...)
}

// Decode fills r from b, the output of AppendBinary (either version). Path,
// Message and OTLP alias b. It never panics on arbitrary input.
func (r *Record) Decode(b []byte) error {
	if len(b) < 2+8+8 {
		return fmt.Errorf("%w: %d bytes is too short", ErrMalformed, len(b))
	}
	flags := b[1]
	switch {
	case b[0] == binaryVersion && flags&flagExt == 0:
	case b[0] == binaryVersionExt && flags&flagExt != 0:
	case b[0] == binaryVersion || b[0] == binaryVersionExt:
		return fmt.Errorf("%w: version %d with extension flag %v", ErrMalformed, b[0], flags&flagExt != 0)
	default:
		return fmt.Errorf("%w: unknown version %d", ErrMalformed, b[0])
	}
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
	b = b[plen:]
	r.Origin, r.OTLP = OriginFile, nil
	if flags&flagExt != 0 {
		elen, n := binary.Uvarint(b)
		if n <= 0 || elen > uint64(len(b)-n) {
			return fmt.Errorf("%w: bad extension length", ErrMalformed)
		}
		if err := r.decodeExt(b[n : n+int(elen)]); err != nil {
			return err
		}
		b = b[n+int(elen):]
	}
	r.Message = b
	r.Flags = flags &^ (flagEventTime | flagExt)
	return nil
}

// decodeExt reads the extension section; fields it does not know (written
// by a later version) are skipped.
func (r *Record) decodeExt(b []byte) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: extension: %v", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == extOrigin && typ == protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 || v > 0xff {
				return fmt.Errorf("%w: extension: bad origin", ErrMalformed)
			}
			r.Origin, n = Origin(v), m
		case num == extOTLP && typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return fmt.Errorf("%w: extension: bad OTLP parts", ErrMalformed)
			}
			r.OTLP, n = v[:len(v):len(v)], m
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("%w: extension: %v", ErrMalformed, protowire.ParseError(n))
			}
		}
		b = b[n:]
	}
	return nil
}
