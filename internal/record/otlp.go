package record

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/skiff-dev/skiff/internal/otlpwire"
)

// BodyKind says where an OTLP record's body is.
type BodyKind uint8

// Body kinds.
const (
	// BodyNone: the log record has no body; Message is empty.
	BodyNone BodyKind = iota
	// BodyString: the body is a string, and Message holds it.
	BodyString
	// BodyValue: the body is another AnyValue (a map, an array, a number,
	// bytes…), kept in OTLPParts.Body exactly as received. Message holds
	// its JSON rendering (an object, with FlagJSON, for a map), so that
	// sinks and filters that look at Message see the content.
	BodyValue
)

// OTLPParts are the parts of an OTLP log record that Message does not
// carry, each in protobuf wire form exactly as the client sent it, so that
// an OTLP sink can copy them through unchanged and group records by
// resource and scope by comparing bytes. They travel in Record.OTLP.
//
// The slices alias what they were decoded from.
type OTLPParts struct {
	// Resource is the opentelemetry.proto.resource.v1.Resource of the
	// record's ResourceLogs (attributes, dropped_attributes_count,
	// entity_refs, and any field a later OTLP adds).
	Resource []byte
	// ResourceSchemaURL is ResourceLogs.schema_url.
	ResourceSchemaURL []byte
	// Scope is the opentelemetry.proto.common.v1.InstrumentationScope of
	// the record's ScopeLogs.
	Scope []byte
	// ScopeSchemaURL is ScopeLogs.schema_url.
	ScopeSchemaURL []byte
	// Log is the opentelemetry.proto.logs.v1.LogRecord without its body
	// (field 5): every other field, unknown ones included, in the order
	// received. AppendLogRecord puts the body back.
	Log []byte
	// BodyKind says where the body is.
	BodyKind BodyKind
	// Body is the body as an opentelemetry.proto.common.v1.AnyValue when
	// BodyKind is BodyValue; nil otherwise.
	Body []byte
}

// Fields of the OTLPParts binary form (protobuf wire form, so that a later
// version can add fields that older binaries skip).
const (
	partResource          protowire.Number = 1
	partResourceSchemaURL protowire.Number = 2
	partScope             protowire.Number = 3
	partScopeSchemaURL    protowire.Number = 4
	partLog               protowire.Number = 5
	partBodyKind          protowire.Number = 6
	partBody              protowire.Number = 7
)

// maxRenderedDepth bounds the nesting of AnyValues rendered as JSON:
// deeper ones render as null.
const maxRenderedDepth = 64

// AppendBinary appends p's binary form (what Record.OTLP holds) to dst.
func (p *OTLPParts) AppendBinary(dst []byte) []byte {
	for _, f := range [...]struct {
		num protowire.Number
		b   []byte
	}{{partResource, p.Resource}, {partResourceSchemaURL, p.ResourceSchemaURL}, {partScope, p.Scope}, {partScopeSchemaURL, p.ScopeSchemaURL}, {partLog, p.Log}} {
		if len(f.b) > 0 {
			dst = protowire.AppendTag(dst, f.num, protowire.BytesType)
			dst = protowire.AppendBytes(dst, f.b)
		}
	}
	if p.BodyKind != BodyNone {
		dst = protowire.AppendTag(dst, partBodyKind, protowire.VarintType)
		dst = protowire.AppendVarint(dst, uint64(p.BodyKind))
	}
	if p.BodyKind == BodyValue {
		dst = protowire.AppendTag(dst, partBody, protowire.BytesType)
		dst = protowire.AppendBytes(dst, p.Body)
	}
	return dst
}

// Decode fills p from b, the output of AppendBinary; the slices alias b.
// Fields it does not know are skipped. It never panics on arbitrary input.
func (p *OTLPParts) Decode(b []byte) error {
	*p = OTLPParts{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: OTLP parts: %v", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		var v []byte
		if typ == protowire.BytesType {
			v, n = protowire.ConsumeBytes(b)
			v = v[:len(v):len(v)]
		} else if num == partBodyKind && typ == protowire.VarintType {
			var k uint64
			k, n = protowire.ConsumeVarint(b)
			if n >= 0 {
				if k > uint64(BodyValue) {
					return fmt.Errorf("%w: OTLP parts: unknown body kind %d", ErrMalformed, k)
				}
				p.BodyKind = BodyKind(k)
			}
		} else {
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("%w: OTLP parts: %v", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		if typ != protowire.BytesType {
			continue
		}
		switch num {
		case partResource:
			p.Resource = v
		case partResourceSchemaURL:
			p.ResourceSchemaURL = v
		case partScope:
			p.Scope = v
		case partScopeSchemaURL:
			p.ScopeSchemaURL = v
		case partLog:
			p.Log = v
		case partBody:
			p.Body = v
		}
	}
	if p.BodyKind == BodyValue && p.Body == nil {
		p.Body = []byte{} // an AnyValue with no value set is still a body
	}
	return nil
}

// AppendLogRecord appends the complete opentelemetry.proto.logs.v1.LogRecord
// (without its own tag and length) to dst: p.Log with the body put back as
// field 5, message being the Record's Message. The result is the LogRecord
// the client sent, the body moved to after the other fields (protobuf
// field order carries no meaning).
func (p *OTLPParts) AppendLogRecord(dst, message []byte) []byte {
	dst = append(dst, p.Log...)
	switch p.BodyKind {
	case BodyString:
		dst = protowire.AppendTag(dst, otlpwire.LogBody, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(protowire.SizeTag(otlpwire.AnyString)+protowire.SizeBytes(len(message))))
		dst = protowire.AppendTag(dst, otlpwire.AnyString, protowire.BytesType)
		dst = protowire.AppendBytes(dst, message)
	case BodyValue:
		dst = protowire.AppendTag(dst, otlpwire.LogBody, protowire.BytesType)
		dst = protowire.AppendBytes(dst, p.Body)
	}
	return dst
}
