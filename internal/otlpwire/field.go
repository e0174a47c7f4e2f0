package otlpwire

import "google.golang.org/protobuf/encoding/protowire"

// Field is one field of a protobuf message.
type Field struct {
	Num  protowire.Number
	Type protowire.Type
	V    []byte // the value of a bytes field; it aliases the message
	X    uint64 // the value of a varint or fixed field
}

// Consume reads the first field of the protobuf message b and returns it
// with the rest of b. A group or unknown wire type is skipped whole. The
// error is protowire's, for a field that does not parse.
func Consume(b []byte) (f Field, rest []byte, err error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return f, nil, protowire.ParseError(n)
	}
	b = b[n:]
	f.Num, f.Type = num, typ
	switch typ {
	case protowire.VarintType:
		f.X, n = protowire.ConsumeVarint(b)
	case protowire.Fixed64Type:
		f.X, n = protowire.ConsumeFixed64(b)
	case protowire.Fixed32Type:
		var x uint32
		x, n = protowire.ConsumeFixed32(b)
		f.X = uint64(x)
	case protowire.BytesType:
		f.V, n = protowire.ConsumeBytes(b)
	default:
		n = protowire.ConsumeFieldValue(num, typ, b)
	}
	if n < 0 {
		return f, nil, protowire.ParseError(n)
	}
	return f, b[n:], nil
}

// Next is Consume for a reader that stops at the first malformed field as
// at the end of b: ok is false at either. It suits loops of the form
//
//	for f, rest, ok := otlpwire.Next(b); ok; f, rest, ok = otlpwire.Next(rest) {
func Next(b []byte) (f Field, rest []byte, ok bool) {
	f, rest, err := Consume(b)
	return f, rest, err == nil
}
