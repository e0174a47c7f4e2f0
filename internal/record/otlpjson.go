package record

import (
	"encoding/base64"
	"encoding/hex"
	"math"
	"strconv"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// logFields are the LogRecord fields the JSON form shows, read from
// OTLPParts.Log. A field given twice keeps its last value, as protobuf
// decoders do.
type logFields struct {
	observed  uint64
	sevNum    int32
	sevText   []byte
	traceID   []byte
	spanID    []byte
	flags     uint32
	eventName []byte
	dropped   uint32
	attrs     bool // there is at least one attribute
}

func (f *logFields) scan(b []byte) {
	for g, b, ok := nextField(b); ok; g, b, ok = nextField(b) {
		switch {
		case g.typ == protowire.Fixed64Type && g.num == logObservedTime:
			f.observed = g.x
		case g.typ == protowire.Fixed32Type && g.num == logFlags:
			f.flags = uint32(g.x)
		case g.typ == protowire.VarintType && g.num == logSeverityNum:
			f.sevNum = int32(g.x)
		case g.typ == protowire.VarintType && g.num == logDropped:
			f.dropped = uint32(g.x)
		case g.typ == protowire.BytesType:
			switch g.num {
			case logSeverityText:
				f.sevText = g.v
			case logTraceID:
				f.traceID = g.v
			case logSpanID:
				f.spanID = g.v
			case logEventName:
				f.eventName = g.v
			case logAttributes:
				f.attrs = true
			}
		}
	}
}

// appendOTLPJSON appends the members of an OTLP record's JSON form that
// follow "source": the body, the LogRecord's fields, resource and scope.
// Bytes that do not parse (which ingest never stores) render as little as
// can be read.
func appendOTLPJSON(dst []byte, r *Record) []byte {
	var p OTLPParts
	_ = p.Decode(r.OTLP) // on error: what was read before it
	switch p.BodyKind {
	case BodyString:
		dst = appendMessage(dst, r.Message)
	case BodyValue:
		// Rendered from the AnyValue, not Message, so that the JSON form is
		// valid whatever Message holds.
		if anyKind(p.Body) == anyKvlist {
			dst = append(dst, `,"json":`...)
		} else {
			dst = append(dst, `,"body":`...)
		}
		dst = appendAnyValue(dst, p.Body, 0)
	}
	var f logFields
	f.scan(p.Log)
	if f.observed != 0 {
		dst = append(dst, `,"observed_time":"`...)
		dst = appendTimeUncached(dst, time.Unix(0, int64(f.observed)))
		dst = append(dst, '"')
	}
	if len(f.sevText) > 0 {
		dst = append(dst, `,"severity_text":`...)
		dst = AppendString(dst, f.sevText)
	}
	if f.sevNum != 0 {
		dst = append(dst, `,"severity_number":`...)
		dst = strconv.AppendInt(dst, int64(f.sevNum), 10)
	}
	if len(f.traceID) > 0 {
		dst = append(dst, `,"trace_id":"`...)
		dst = hex.AppendEncode(dst, f.traceID)
		dst = append(dst, '"')
	}
	if len(f.spanID) > 0 {
		dst = append(dst, `,"span_id":"`...)
		dst = hex.AppendEncode(dst, f.spanID)
		dst = append(dst, '"')
	}
	if f.flags != 0 {
		dst = append(dst, `,"flags":`...)
		dst = strconv.AppendUint(dst, uint64(f.flags), 10)
	}
	if len(f.eventName) > 0 {
		dst = append(dst, `,"event_name":`...)
		dst = AppendString(dst, f.eventName)
	}
	if f.attrs {
		dst = append(dst, `,"attributes":`...)
		dst = appendKeyValues(dst, p.Log, logAttributes, 0)
	}
	if f.dropped != 0 {
		dst = append(dst, `,"dropped_attributes_count":`...)
		dst = strconv.AppendUint(dst, uint64(f.dropped), 10)
	}
	dst = appendResource(dst, p.Resource, p.ResourceSchemaURL)
	return appendScope(dst, p.Scope, p.ScopeSchemaURL)
}

// appendMessage appends `,"message":…` and, for bytes that are not UTF-8,
// `,"message_base64":…` with the exact bytes.
func appendMessage(dst, msg []byte) []byte {
	dst = append(dst, `,"message":`...)
	var valid bool
	dst, valid = appendString(dst, msg)
	if !valid {
		dst = append(dst, `,"message_base64":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, msg)
		dst = append(dst, '"')
	}
	return dst
}

// appendResource appends `,"resource":{…}` unless the resource is empty.
func appendResource(dst, res, schemaURL []byte) []byte {
	var dropped uint64
	attrs := false
	for f, b, ok := nextField(res); ok; f, b, ok = nextField(b) {
		switch {
		case f.num == resourceAttrs && f.typ == protowire.BytesType:
			attrs = true
		case f.num == resourceDropped && f.typ == protowire.VarintType:
			dropped = f.x
		}
	}
	if !attrs && dropped == 0 && len(schemaURL) == 0 {
		return dst
	}
	dst = append(dst, `,"resource":{`...)
	mark := len(dst)
	if attrs {
		dst = append(dst, `"attributes":`...)
		dst = appendKeyValues(dst, res, resourceAttrs, 0)
	}
	if dropped != 0 {
		dst = appendComma(dst, mark)
		dst = append(dst, `"dropped_attributes_count":`...)
		dst = strconv.AppendUint(dst, dropped, 10)
	}
	if len(schemaURL) > 0 {
		dst = appendComma(dst, mark)
		dst = append(dst, `"schema_url":`...)
		dst = AppendString(dst, schemaURL)
	}
	return append(dst, '}')
}

// appendScope appends `,"scope":{…}` unless the scope is empty.
func appendScope(dst, scope, schemaURL []byte) []byte {
	var name, version []byte
	var dropped uint64
	attrs := false
	for f, b, ok := nextField(scope); ok; f, b, ok = nextField(b) {
		switch {
		case f.typ == protowire.BytesType && f.num == scopeName:
			name = f.v
		case f.typ == protowire.BytesType && f.num == scopeVersion:
			version = f.v
		case f.typ == protowire.BytesType && f.num == scopeAttrs:
			attrs = true
		case f.typ == protowire.VarintType && f.num == scopeDropped:
			dropped = f.x
		}
	}
	if len(name) == 0 && len(version) == 0 && !attrs && dropped == 0 && len(schemaURL) == 0 {
		return dst
	}
	dst = append(dst, `,"scope":{`...)
	mark := len(dst)
	if len(name) > 0 {
		dst = append(dst, `"name":`...)
		dst = AppendString(dst, name)
	}
	if len(version) > 0 {
		dst = appendComma(dst, mark)
		dst = append(dst, `"version":`...)
		dst = AppendString(dst, version)
	}
	if attrs {
		dst = appendComma(dst, mark)
		dst = append(dst, `"attributes":`...)
		dst = appendKeyValues(dst, scope, scopeAttrs, 0)
	}
	if dropped != 0 {
		dst = appendComma(dst, mark)
		dst = append(dst, `"dropped_attributes_count":`...)
		dst = strconv.AppendUint(dst, dropped, 10)
	}
	if len(schemaURL) > 0 {
		dst = appendComma(dst, mark)
		dst = append(dst, `"schema_url":`...)
		dst = AppendString(dst, schemaURL)
	}
	return append(dst, '}')
}

func appendComma(dst []byte, mark int) []byte {
	if len(dst) > mark {
		dst = append(dst, ',')
	}
	return dst
}

// field is one field of a protobuf message.
type field struct {
	num protowire.Number
	typ protowire.Type
	v   []byte // the value of a bytes field
	x   uint64 // the value of a varint or fixed field
}

// nextField reads the first field of the protobuf message b and returns it
// with the rest of b. ok is false at the end of b and at a malformed field.
func nextField(b []byte) (f field, rest []byte, ok bool) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return f, nil, false
	}
	b = b[n:]
	f.num, f.typ = num, typ
	switch typ {
	case protowire.VarintType:
		f.x, n = protowire.ConsumeVarint(b)
	case protowire.Fixed64Type:
		f.x, n = protowire.ConsumeFixed64(b)
	case protowire.Fixed32Type:
		var x uint32
		x, n = protowire.ConsumeFixed32(b)
		f.x = uint64(x)
	case protowire.BytesType:
		f.v, n = protowire.ConsumeBytes(b)
	default:
		n = protowire.ConsumeFieldValue(num, typ, b)
	}
	if n < 0 {
		return f, nil, false
	}
	return f, b[n:], true
}

// appendKeyValues appends the KeyValues in the repeated field num of the
// message b as a JSON object. Keys are rendered as given, duplicates
// included (OTLP requires unique keys; skiff does not rewrite data).
func appendKeyValues(dst, b []byte, num protowire.Number, depth int) []byte {
	dst = append(dst, '{')
	mark := len(dst)
	for f, b, ok := nextField(b); ok; f, b, ok = nextField(b) {
		if f.num != num || f.typ != protowire.BytesType {
			continue
		}
		var key, value []byte
		hasValue := false
		for g, kv, ok := nextField(f.v); ok; g, kv, ok = nextField(kv) {
			switch {
			case g.num == keyValueKey && g.typ == protowire.BytesType:
				key = g.v
			case g.num == keyValueValue && g.typ == protowire.BytesType:
				value, hasValue = g.v, true
			}
		}
		dst = appendComma(dst, mark)
		dst = AppendString(dst, key)
		dst = append(dst, ':')
		if !hasValue {
			dst = append(dst, "null"...)
			continue
		}
		dst = appendAnyValue(dst, value, depth+1)
	}
	return append(dst, '}')
}

// AppendAnyValueJSON appends the opentelemetry.proto.common.v1.AnyValue v
// as JSON: a string, true/false, a number (NaN and infinities as the strings
// "NaN", "Infinity", "-Infinity"), a base64 string for bytes, an array, an
// object for a key-value list, null for an empty AnyValue. Ingest uses it
// to render a body that is not a string into Record.Message.
func AppendAnyValueJSON(dst, v []byte) []byte {
	return appendAnyValue(dst, v, 0)
}

// anyValue reads the value of the AnyValue b: the field number of the
// oneof member set (0 for none), with its bytes or number. The last member
// wins, as in protobuf decoders.
func anyValue(b []byte) (kind protowire.Number, val []byte, x uint64) {
	for f, b, ok := nextField(b); ok; f, b, ok = nextField(b) {
		switch {
		case f.typ == protowire.BytesType && (f.num == anyString || f.num == anyArray || f.num == anyKvlist || f.num == anyBytes):
			kind, val = f.num, f.v
		case f.typ == protowire.VarintType && (f.num == anyBool || f.num == anyInt):
			kind, x = f.num, f.x
		case f.typ == protowire.Fixed64Type && f.num == anyDouble:
			kind, x = f.num, f.x
		}
	}
	return kind, val, x
}

func anyKind(b []byte) protowire.Number {
	k, _, _ := anyValue(b)
	return k
}

func appendAnyValue(dst, b []byte, depth int) []byte {
	if depth > maxRenderedDepth {
		return append(dst, "null"...)
	}
	kind, val, x := anyValue(b)
	switch kind {
	case anyString:
		return AppendString(dst, val)
	case anyBool:
		if x != 0 {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case anyInt:
		return strconv.AppendInt(dst, int64(x), 10)
	case anyDouble:
		f := math.Float64frombits(x)
		switch {
		case math.IsNaN(f):
			return append(dst, `"NaN"`...)
		case math.IsInf(f, 1):
			return append(dst, `"Infinity"`...)
		case math.IsInf(f, -1):
			return append(dst, `"-Infinity"`...)
		}
		return strconv.AppendFloat(dst, f, 'g', -1, 64)
	case anyBytes:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, val)
		return append(dst, '"')
	case anyArray:
		dst = append(dst, '[')
		mark := len(dst)
		for f, b, ok := nextField(val); ok; f, b, ok = nextField(b) {
			if f.num == listValues && f.typ == protowire.BytesType {
				dst = appendComma(dst, mark)
				dst = appendAnyValue(dst, f.v, depth+1)
			}
		}
		return append(dst, ']')
	case anyKvlist:
		return appendKeyValues(dst, val, listValues, depth)
	}
	return append(dst, "null"...)
}
