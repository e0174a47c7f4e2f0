package otlp

import (
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/skiff-dev/skiff/internal/otlpwire"
)

// appendVarint is protowire.AppendVarint for the small values that most
// lengths and tags are: one append per byte, no size switch.
func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// tag is the one-byte tag of a length-delimited field (every field skiff
// writes has a number below 16).
func tag(num protowire.Number) byte { return byte(num)<<3 | byte(protowire.BytesType) }

// kvKeyPrefix is the start of a KeyValue for a fixed key: the key field and the
// value field's tag, rendered once per key.
type kvKeyPrefix []byte

func keyPrefix(key string) kvKeyPrefix {
	b := []byte{tag(otlpwire.KeyValueKey)}
	b = appendVarint(b, uint64(len(key)))
	b = append(b, key...)
	return append(b, tag(otlpwire.KeyValueValue))
}

// The KeyValue starts of the log attributes skiff writes on every record.
var (
	kvFilePath  = keyPrefix(attrFilePath)
	kvFileName  = keyPrefix(attrFileName)
	kvRecordUID = keyPrefix(attrRecordUID)
)

// appendStringAttr appends a log attribute holding KeyValue{k, string v}; v
// must be valid UTF-8.
func appendStringAttr(b []byte, k kvKeyPrefix, v []byte) []byte {
	anyLen := 1 + protowire.SizeVarint(uint64(len(v))) + len(v)
	b = append(b, tag(otlpwire.LogAttributes))
	b = appendVarint(b, uint64(len(k)+protowire.SizeVarint(uint64(anyLen))+anyLen))
	b = append(b, k...)
	b = appendVarint(b, uint64(anyLen))
	b = append(b, tag(otlpwire.AnyString))
	b = appendVarint(b, uint64(len(v)))
	return append(b, v...)
}

// openField appends the tag of length-delimited field num and room for a
// length of about hint bytes, and returns where the field's content
// starts. closeField writes the length once the content is appended.
// Reserving the varint's likely size up front means the content moves
// only when the guess was wrong, so a field is written in one pass into a
// reused buffer, with no sizing pass and no copy.
func openField(b []byte, num protowire.Number, hint int) ([]byte, int) {
	b = append(b, tag(num))
	for range protowire.SizeVarint(uint64(hint)) {
		b = append(b, 0)
	}
	return b, len(b)
}

// closeField writes the length of the field openField(b, _, hint) began
// at start, moving its content when the length's varint is not the size
// reserved. Lengths are always minimal varints.
func closeField(b []byte, start, hint int) []byte {
	size := len(b) - start
	reserved := protowire.SizeVarint(uint64(hint))
	need := protowire.SizeVarint(uint64(size))
	at := start - reserved
	switch {
	case need > reserved:
		for range need - reserved {
			b = append(b, 0)
		}
		copy(b[at+need:], b[start:start+size])
	case need < reserved:
		copy(b[at+need:], b[start:start+size])
		b = b[:at+need+size]
	}
	appendVarint(b[at:at], uint64(size)) // in place: b has the room
	return b
}

// appendBytesField appends field num holding v (a string or bytes field).
func appendBytesField(b []byte, num protowire.Number, v []byte) []byte {
	b = append(b, tag(num))
	b = appendVarint(b, uint64(len(v)))
	return append(b, v...)
}

// sizeStringKV is the size of a KeyValue{key, AnyValue{string_value: v}}
// with a value of n bytes.
func sizeStringKV(key string, n int) int {
	any := protowire.SizeTag(otlpwire.AnyString) + protowire.SizeBytes(n)
	return protowire.SizeTag(otlpwire.KeyValueKey) + protowire.SizeBytes(len(key)) + protowire.SizeTag(otlpwire.KeyValueValue) + protowire.SizeBytes(any)
}

// appendStringKV appends field num holding KeyValue{key, string v}; v must
// be valid UTF-8.
func appendStringKV(b []byte, num protowire.Number, key string, v []byte) []byte {
	b = append(b, tag(num))
	b = appendVarint(b, uint64(sizeStringKV(key, len(v))))
	b = append(b, tag(otlpwire.KeyValueKey))
	b = protowire.AppendString(b, key)
	b = append(b, tag(otlpwire.KeyValueValue))
	b = appendVarint(b, uint64(protowire.SizeTag(otlpwire.AnyString)+protowire.SizeBytes(len(v))))
	return appendBytesField(b, otlpwire.AnyString, v)
}

// appendScalarKV appends field num holding KeyValue{key, AnyValue} where
// the AnyValue is one varint field (bool_value, int_value).
func appendVarintKV(b []byte, num protowire.Number, key string, field protowire.Number, v uint64) []byte {
	any := protowire.SizeTag(field) + protowire.SizeVarint(v)
	b = append(b, tag(num))
	b = appendVarint(b, uint64(protowire.SizeTag(otlpwire.KeyValueKey)+protowire.SizeBytes(len(key))+protowire.SizeTag(otlpwire.KeyValueValue)+protowire.SizeBytes(any)))
	b = append(b, tag(otlpwire.KeyValueKey))
	b = protowire.AppendString(b, key)
	b = append(b, tag(otlpwire.KeyValueValue))
	b = appendVarint(b, uint64(any))
	b = append(b, byte(field)<<3)
	return appendVarint(b, v)
}

// appendBytesKV appends field num holding KeyValue{key, bytes_value v}.
func appendBytesKV(b []byte, num protowire.Number, key string, v []byte) []byte {
	any := protowire.SizeTag(otlpwire.AnyBytes) + protowire.SizeBytes(len(v))
	b = append(b, tag(num))
	b = appendVarint(b, uint64(protowire.SizeTag(otlpwire.KeyValueKey)+protowire.SizeBytes(len(key))+protowire.SizeTag(otlpwire.KeyValueValue)+protowire.SizeBytes(any)))
	b = append(b, tag(otlpwire.KeyValueKey))
	b = protowire.AppendString(b, key)
	b = append(b, tag(otlpwire.KeyValueValue))
	b = appendVarint(b, uint64(any))
	return appendBytesField(b, otlpwire.AnyBytes, v)
}

// appendValidUTF8 appends s with every invalid byte replaced by U+FFFD:
// protobuf string fields must be UTF-8, and receivers built on the
// official libraries refuse a request that has one that is not.
func appendValidUTF8(dst, s []byte) []byte {
	for len(s) > 0 {
		r, n := utf8.DecodeRune(s)
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, "\uFFFD"...)
		} else {
			dst = append(dst, s[:n]...)
		}
		s = s[n:]
	}
	return dst
}
