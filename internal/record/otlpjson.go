package record

import (
	"encoding/base64"
	"encoding/hex"
	"math"
	"strconv"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/skiff-dev/skiff/internal/otlpwire"
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
	for g, b, ok := otlpwire.Next(b); ok; g, b, ok = otlpwire.Next(b) {
		switch {
		case g.Type == protowire.Fixed64Type && g.Num == otlpwire.LogObservedTime:
			f.observed = g.X
		case g.Type == protowire.Fixed32Type && g.Num == otlpwire.LogFlags:
			f.flags = uint32(g.X)
		case g.Type == protowire.VarintType && g.Num == otlpwire.LogSeverityNumber:
			f.sevNum = int32(g.X)
		case g.Type == protowire.VarintType && g.Num == otlpwire.LogDropped:
			f.dropped = uint32(g.X)
		case g.Type == protowire.BytesType:
			switch g.Num {
			case otlpwire.LogSeverityText:
				f.sevText = g.V
			case otlpwire.LogTraceID:
				f.traceID = g.V
			case otlpwire.LogSpanID:
				f.spanID = g.V
			case otlpwire.LogEventName:
				f.eventName = g.V
			case otlpwire.LogAttributes:
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
		if anyKind(p.Body) == otlpwire.AnyKvlist {
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
		dst = appendKeyValues(dst, p.Log, otlpwire.LogAttributes, 0)
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
	for f, b, ok := otlpwire.Next(res); ok; f, b, ok = otlpwire.Next(b) {
		switch {
		case f.Num == otlpwire.ResourceAttributes && f.Type == protowire.BytesType:
			attrs = true
		case f.Num == otlpwire.ResourceDropped && f.Type == protowire.VarintType:
			dropped = f.X
		}
	}
	if !attrs && dropped == 0 && len(schemaURL) == 0 {
		return dst
	}
	dst = append(dst, `,"resource":{`...)
	mark := len(dst)
	if attrs {
		dst = append(dst, `"attributes":`...)
		dst = appendKeyValues(dst, res, otlpwire.ResourceAttributes, 0)
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
	for f, b, ok := otlpwire.Next(scope); ok; f, b, ok = otlpwire.Next(b) {
		switch {
		case f.Type == protowire.BytesType && f.Num == otlpwire.ScopeName:
			name = f.V
		case f.Type == protowire.BytesType && f.Num == otlpwire.ScopeVersion:
			version = f.V
		case f.Type == protowire.BytesType && f.Num == otlpwire.ScopeAttributes:
			attrs = true
		case f.Type == protowire.VarintType && f.Num == otlpwire.ScopeDropped:
			dropped = f.X
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
		dst = appendKeyValues(dst, scope, otlpwire.ScopeAttributes, 0)
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

// appendKeyValues appends the KeyValues in the repeated field num of the
// message b as a JSON object. Keys are rendered as given, duplicates
// included (OTLP requires unique keys; skiff does not rewrite data).
func appendKeyValues(dst, b []byte, num protowire.Number, depth int) []byte {
	dst = append(dst, '{')
	mark := len(dst)
	for f, b, ok := otlpwire.Next(b); ok; f, b, ok = otlpwire.Next(b) {
		if f.Num != num || f.Type != protowire.BytesType {
			continue
		}
		var key, value []byte
		hasValue := false
		for g, kv, ok := otlpwire.Next(f.V); ok; g, kv, ok = otlpwire.Next(kv) {
			switch {
			case g.Num == otlpwire.KeyValueKey && g.Type == protowire.BytesType:
				key = g.V
			case g.Num == otlpwire.KeyValueValue && g.Type == protowire.BytesType:
				value, hasValue = g.V, true
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
	for f, b, ok := otlpwire.Next(b); ok; f, b, ok = otlpwire.Next(b) {
		switch {
		case f.Type == protowire.BytesType && (f.Num == otlpwire.AnyString || f.Num == otlpwire.AnyArray || f.Num == otlpwire.AnyKvlist || f.Num == otlpwire.AnyBytes):
			kind, val = f.Num, f.V
		case f.Type == protowire.VarintType && (f.Num == otlpwire.AnyBool || f.Num == otlpwire.AnyInt):
			kind, x = f.Num, f.X
		case f.Type == protowire.Fixed64Type && f.Num == otlpwire.AnyDouble:
			kind, x = f.Num, f.X
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
	case otlpwire.AnyString:
		return AppendString(dst, val)
	case otlpwire.AnyBool:
		if x != 0 {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case otlpwire.AnyInt:
		return strconv.AppendInt(dst, int64(x), 10)
	case otlpwire.AnyDouble:
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
	case otlpwire.AnyBytes:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, val)
		return append(dst, '"')
	case otlpwire.AnyArray:
		dst = append(dst, '[')
		mark := len(dst)
		for f, b, ok := otlpwire.Next(val); ok; f, b, ok = otlpwire.Next(b) {
			if f.Num == otlpwire.ListValues && f.Type == protowire.BytesType {
				dst = appendComma(dst, mark)
				dst = appendAnyValue(dst, f.V, depth+1)
			}
		}
		return append(dst, ']')
	case otlpwire.AnyKvlist:
		return appendKeyValues(dst, val, otlpwire.ListValues, depth)
	}
	return append(dst, "null"...)
}
