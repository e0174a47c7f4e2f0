package otlp

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"math"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/skiff-dev/skiff/internal/otlpwire"
	"github.com/skiff-dev/skiff/internal/record"
)

// The OTLP JSON mapping (OTLP specification, "JSON Protobuf Encoding"):
// proto3 JSON with lowerCamelCase member names, 64-bit integers as decimal
// strings, enums as integers, bytes as base64 except trace and span IDs,
// which are hex. Unknown protobuf fields of records that came in over OTLP
// have no JSON form and are left out.

// encodeJSON renders recs as an ExportLogsServiceRequest in the OTLP JSON
// mapping, in e.buf, grouped as encodeProto groups them.
func (e *batch) encodeJSON(recs []record.Record) []byte {
	b := append(e.buf[:0], `{"resourceLogs":[`...)
	if !e.groupRecords(recs) {
		b = append(b, `{"resource":`...)
		b = e.appendOwnResourceJSON(b)
		b = append(b, `,"scopeLogs":[{"logRecords":[`...)
		for i := range recs {
			if i > 0 {
				b = append(b, ',')
			}
			b = e.appendLogRecordJSON(b, &recs[i])
		}
		e.buf = append(b, "]}]}]}"...)
		return e.buf
	}
	for k := 0; k < len(e.sorder); {
		if k > 0 {
			b = append(b, ',')
		}
		rg := &e.rgs[e.sgs[e.sorder[k]].rg]
		b = append(b, `{"resource":`...)
		var resURL []byte
		if rg.rep < 0 {
			b = e.appendOwnResourceJSON(b)
		} else {
			p := &e.parts[rg.rep]
			b, resURL = appendResourceJSON(b, p.Resource), p.ResourceSchemaURL
		}
		b = append(b, `,"scopeLogs":[`...)
		for n, first := 0, e.sgs[e.sorder[k]].rg; k < len(e.sorder) && e.sgs[e.sorder[k]].rg == first; k, n = k+1, n+1 {
			if n > 0 {
				b = append(b, ',')
			}
			sg := &e.sgs[e.sorder[k]]
			var p *record.OTLPParts
			b = append(b, '{')
			if sg.rep >= 0 {
				if p = &e.parts[sg.rep]; len(p.Scope) > 0 {
					b = append(b, `"scope":`...)
					b = appendScopeJSON(b, p.Scope)
					b = append(b, ',')
				}
			}
			b = append(b, `"logRecords":[`...)
			for m, i := range e.order[sg.at : sg.at+sg.n] {
				if m > 0 {
					b = append(b, ',')
				}
				if recs[i].Origin == record.OriginOTLP {
					b = appendPassThroughJSON(b, &recs[i], &e.parts[i])
				} else {
					b = e.appendLogRecordJSON(b, &recs[i])
				}
			}
			b = append(b, ']')
			if p != nil && len(p.ScopeSchemaURL) > 0 {
				b = append(b, `,"schemaUrl":`...)
				b = record.AppendString(b, p.ScopeSchemaURL)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
		if len(resURL) > 0 {
			b = append(b, `,"schemaUrl":`...)
			b = record.AppendString(b, resURL)
		}
		b = append(b, '}')
	}
	e.buf = append(b, "]}"...)
	return e.buf
}

func (e *batch) appendOwnResourceJSON(b []byte) []byte {
	b = append(b, `{"attributes":[`...)
	for i, a := range e.m.resAttrs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendStringKVJSON(b, a.key, []byte(a.value))
	}
	return append(b, "]}"...)
}

// appendStringKVJSON appends {"key":…,"value":{"stringValue":…}}.
func appendStringKVJSON(b []byte, key string, v []byte) []byte {
	b = append(b, `{"key":`...)
	b = record.AppendString(b, []byte(key))
	b = append(b, `,"value":{"stringValue":`...)
	b = record.AppendString(b, v)
	return append(b, "}}"...)
}

func appendUintString(b []byte, v uint64) []byte {
	b = append(b, '"')
	b = strconv.AppendUint(b, v, 10)
	return append(b, '"')
}

// appendLogRecordJSON is appendLogRecord in the JSON mapping.
func (e *batch) appendLogRecordJSON(b []byte, r *record.Record) []byte {
	b = append(b, '{')
	if !r.EventTime.IsZero() {
		b = append(b, `"timeUnixNano":`...)
		b = appendUintString(b, uint64(r.EventTime.UnixNano()))
		b = append(b, ',')
	}
	b = append(b, `"observedTimeUnixNano":`...)
	b = appendUintString(b, uint64(r.Collected.UnixNano()))

	valid := utf8.Valid(r.Message)
	var j jsonBody
	body := false
	if r.Flags&record.FlagJSON != 0 {
		j = jsonBody{sevKey: e.m.sevKey, checkUTF8: !valid}
		mark := len(b)
		nb := append(b, `,"body":`...)
		nb, rest, ok := j.appendValueJSON(nb, r.Message, 0)
		if ok && len(skipWS(rest)) == 0 {
			b, body = nb, true
		} else {
			b, j = nb[:mark], jsonBody{}
		}
	}
	if !body {
		b = append(b, `,"body":{"stringValue":`...)
		b = record.AppendString(b, r.Message) // invalid UTF-8 becomes U+FFFD
		b = append(b, '}')
	}
	b = append(b, `,"attributes":[`...)
	if len(r.Path) > 0 {
		b = appendStringKVJSON(b, attrFilePath, r.Path)
		name := r.Path
		if i := bytes.LastIndexByte(name, '/'); i >= 0 && i < len(name)-1 {
			name = name[i+1:]
		}
		b = append(b, ',')
		b = appendStringKVJSON(b, attrFileName, name)
		b = append(b, ',')
	}
	e.tmp = e.m.ids.AppendID(e.tmp[:0], r)
	b = appendStringKVJSON(b, attrRecordUID, e.tmp)
	if r.Flags&record.FlagPartial != 0 {
		b = append(b, `,{"key":"`+attrPartial+`","value":{"boolValue":true}},{"key":"`+attrOffset+`","value":{"intValue":"`...)
		b = strconv.AppendInt(b, r.Offset, 10)
		b = append(b, `"}}`...)
	}
	if !valid && !body {
		b = append(b, `,{"key":"`+attrMessageBytes+`","value":{"bytesValue":"`...)
		b = base64.StdEncoding.AppendEncode(b, r.Message)
		b = append(b, `"}}`...)
	}
	b = append(b, ']')
	if j.sev != nil {
		text := j.sev
		if j.sevStr && (bytes.IndexByte(text, '\\') >= 0 || !utf8.Valid(text)) {
			e.tmp = appendUnescaped(e.tmp[:0], text)
			text = e.tmp
		}
		if n := severityNumber(text, e.m.numbers); n > 0 {
			b = append(b, `,"severityNumber":`...)
			b = strconv.AppendInt(b, int64(n), 10)
		}
		b = append(b, `,"severityText":`...)
		b = record.AppendString(b, text)
	}
	return append(b, '}')
}

// appendValueJSON is appendValue writing an AnyValue of the JSON mapping.
func (j *jsonBody) appendValueJSON(b, src []byte, depth int) ([]byte, []byte, bool) {
	src = skipWS(src)
	if len(src) == 0 {
		return b, src, false
	}
	if depth >= maxDepth && (src[0] == '{' || src[0] == '[') {
		rest, ok := skipValue(src, 0)
		if !ok {
			return b, src, false
		}
		b = append(b, `{"stringValue":`...)
		b = record.AppendString(b, src[:len(src)-len(rest)])
		return append(b, '}'), rest, true
	}
	switch c := src[0]; {
	case c == '{':
		b = append(b, `{"kvlistValue":{"values":[`...)
		src = skipWS(src[1:])
		if len(src) > 0 && src[0] == '}' {
			return append(b, "]}}"...), src[1:], true
		}
		for n := 0; ; n++ {
			if len(src) == 0 || src[0] != '"' {
				return b, src, false
			}
			key, rest, ok := stringToken(src)
			if !ok {
				return b, src, false
			}
			src = skipWS(rest)
			if len(src) == 0 || src[0] != ':' {
				return b, src, false
			}
			src = skipWS(src[1:])
			if n > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"key":`...)
			b = j.appendStringJSON(b, key)
			b = append(b, `,"value":`...)
			if depth == 0 && j.sevKey != nil && bytes.Equal(key, j.sevKey) && len(src) > 0 {
				j.noteSeverity(src)
			}
			if b, src, ok = j.appendValueJSON(b, src, depth+1); !ok {
				return b, src, false
			}
			b = append(b, '}')
			src = skipWS(src)
			if len(src) == 0 {
				return b, src, false
			}
			if src[0] == '}' {
				return append(b, "]}}"...), src[1:], true
			}
			if src[0] != ',' {
				return b, src, false
			}
			src = skipWS(src[1:])
		}
	case c == '[':
		b = append(b, `{"arrayValue":{"values":[`...)
		src = skipWS(src[1:])
		if len(src) > 0 && src[0] == ']' {
			return append(b, "]}}"...), src[1:], true
		}
		for n := 0; ; n++ {
			if n > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, src, ok = j.appendValueJSON(b, src, depth+1); !ok {
				return b, src, false
			}
			src = skipWS(src)
			if len(src) == 0 {
				return b, src, false
			}
			if src[0] == ']' {
				return append(b, "]}}"...), src[1:], true
			}
			if src[0] != ',' {
				return b, src, false
			}
			src = src[1:]
		}
	case c == '"':
		raw, rest, ok := stringToken(src)
		if !ok {
			return b, src, false
		}
		b = append(b, `{"stringValue":`...)
		b = j.appendStringJSON(b, raw)
		return append(b, '}'), rest, true
	case c == 't' && bytes.HasPrefix(src, []byte("true")):
		return append(b, `{"boolValue":true}`...), src[4:], true
	case c == 'f' && bytes.HasPrefix(src, []byte("false")):
		return append(b, `{"boolValue":false}`...), src[5:], true
	case c == 'n' && bytes.HasPrefix(src, []byte("null")):
		return append(b, "{}"...), src[4:], true
	case c == '-' || (c >= '0' && c <= '9'):
		raw, rest := numberToken(src)
		if i, ok := parseInt(raw); ok {
			b = append(b, `{"intValue":"`...)
			b = strconv.AppendInt(b, i, 10)
			return append(b, `"}`...), rest, true
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil && !math.IsInf(f, 0) {
			return b, src, false
		}
		b = append(b, `{"doubleValue":`...)
		b = appendDoubleJSON(b, f)
		return append(b, '}'), rest, true
	}
	return b, src, false
}

// appendStringJSON appends the JSON string whose raw content is raw: as it
// is when it needs no repair, else decoded and encoded again.
func (j *jsonBody) appendStringJSON(b, raw []byte) []byte {
	if !j.checkUTF8 || utf8.Valid(raw) {
		b = append(b, '"')
		b = append(b, raw...)
		return append(b, '"')
	}
	var tmp [256]byte
	return record.AppendString(b, appendUnescaped(tmp[:0], raw))
}

// appendDoubleJSON writes a double as proto3 JSON does: a number, or
// "NaN", "Infinity", "-Infinity".
func appendDoubleJSON(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Infinity"`...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// appendKeyValuesJSON appends `,"attributes":[…]` for the KeyValues in the
// repeated field num of msg, if there is any.
func appendKeyValuesJSON(b, msg []byte, num protowire.Number, name string, depth int) []byte {
	n := 0
	for f, rest, ok := otlpwire.Next(msg); ok; f, rest, ok = otlpwire.Next(rest) {
		if f.Num != num || f.Type != protowire.BytesType {
			continue
		}
		if n == 0 {
			b = append(b, `,"`...)
			b = append(b, name...)
			b = append(b, `":[`...)
		} else {
			b = append(b, ',')
		}
		n++
		b = appendKeyValueJSON(b, f.V, depth)
	}
	if n > 0 {
		b = append(b, ']')
	}
	return b
}

func appendKeyValueJSON(b, kvb []byte, depth int) []byte {
	var key, val []byte
	hasVal := false
	for f, rest, ok := otlpwire.Next(kvb); ok; f, rest, ok = otlpwire.Next(rest) {
		switch {
		case f.Num == otlpwire.KeyValueKey && f.Type == protowire.BytesType:
			key = f.V
		case f.Num == otlpwire.KeyValueValue && f.Type == protowire.BytesType:
			val, hasVal = f.V, true
		}
	}
	b = append(b, `{"key":`...)
	b = record.AppendString(b, key)
	if hasVal {
		b = append(b, `,"value":`...)
		b = appendAnyValueJSON(b, val, depth+1)
	}
	return append(b, '}')
}

// appendAnyValueJSON transcodes an AnyValue; the last value field wins, as
// protobuf decoders decide.
func appendAnyValueJSON(b, av []byte, depth int) []byte {
	var last otlpwire.Field
	found := false
	for f, rest, ok := otlpwire.Next(av); ok; f, rest, ok = otlpwire.Next(rest) {
		if f.Num >= otlpwire.AnyString && f.Num <= otlpwire.AnyBytes {
			last, found = f, true
		}
	}
	if !found {
		return append(b, "{}"...)
	}
	if depth > maxDepth && (last.Num == otlpwire.AnyArray || last.Num == otlpwire.AnyKvlist) {
		return append(b, "{}"...)
	}
	switch f := last; {
	case f.Num == otlpwire.AnyString && f.Type == protowire.BytesType:
		b = append(b, `{"stringValue":`...)
		b = record.AppendString(b, f.V)
	case f.Num == otlpwire.AnyBool && f.Type == protowire.VarintType:
		b = append(b, `{"boolValue":`...)
		b = strconv.AppendBool(b, f.X != 0)
	case f.Num == otlpwire.AnyInt && f.Type == protowire.VarintType:
		b = append(b, `{"intValue":"`...)
		b = strconv.AppendInt(b, int64(f.X), 10)
		b = append(b, '"')
	case f.Num == otlpwire.AnyDouble && f.Type == protowire.Fixed64Type:
		b = append(b, `{"doubleValue":`...)
		b = appendDoubleJSON(b, math.Float64frombits(f.X))
	case f.Num == otlpwire.AnyArray && f.Type == protowire.BytesType:
		b = append(b, `{"arrayValue":{"values":[`...)
		b = appendListJSON(b, f.V, depth+1, appendAnyValueJSON)
		b = append(b, "]}"...)
	case f.Num == otlpwire.AnyKvlist && f.Type == protowire.BytesType:
		b = append(b, `{"kvlistValue":{"values":[`...)
		b = appendListJSON(b, f.V, depth+1, appendKeyValueJSON)
		b = append(b, "]}"...)
	case f.Num == otlpwire.AnyBytes && f.Type == protowire.BytesType:
		b = append(b, `{"bytesValue":"`...)
		b = base64.StdEncoding.AppendEncode(b, f.V)
		b = append(b, '"')
	default:
		return append(b, "{}"...)
	}
	return append(b, '}')
}

// appendListJSON appends the values of an ArrayValue or KeyValueList,
// each transcoded by appendValue, separated by commas.
func appendListJSON(b, list []byte, depth int, appendValue func(b, v []byte, depth int) []byte) []byte {
	n := 0
	for f, rest, ok := otlpwire.Next(list); ok; f, rest, ok = otlpwire.Next(rest) {
		if f.Num == otlpwire.ListValues && f.Type == protowire.BytesType {
			if n > 0 {
				b = append(b, ',')
			}
			n++
			b = appendValue(b, f.V, depth)
		}
	}
	return b
}

// appendResourceJSON transcodes a Resource.
func appendResourceJSON(b, res []byte) []byte {
	var dropped uint64
	for f, rest, ok := otlpwire.Next(res); ok; f, rest, ok = otlpwire.Next(rest) {
		if f.Num == otlpwire.ResourceDropped && f.Type == protowire.VarintType {
			dropped = f.X
		}
	}
	b = append(b, '{')
	mark := len(b)
	b = appendKeyValuesJSON(b, res, otlpwire.ResourceAttributes, "attributes", 0)
	if dropped != 0 {
		b = append(b, `,"droppedAttributesCount":`...)
		b = strconv.AppendUint(b, uint64(uint32(dropped)), 10)
	}
	if len(b) > mark {
		b[mark] = ' ' // the first member's comma
	}
	return append(b, '}')
}

// appendScopeJSON transcodes an InstrumentationScope.
func appendScopeJSON(b, scope []byte) []byte {
	var name, version []byte
	var dropped uint64
	for f, rest, ok := otlpwire.Next(scope); ok; f, rest, ok = otlpwire.Next(rest) {
		switch {
		case f.Num == otlpwire.ScopeName && f.Type == protowire.BytesType:
			name = f.V
		case f.Num == otlpwire.ScopeVersion && f.Type == protowire.BytesType:
			version = f.V
		case f.Num == otlpwire.ScopeDropped && f.Type == protowire.VarintType:
			dropped = f.X
		}
	}
	b = append(b, '{')
	mark := len(b)
	if len(name) > 0 {
		b = append(b, `,"name":`...)
		b = record.AppendString(b, name)
	}
	if len(version) > 0 {
		b = append(b, `,"version":`...)
		b = record.AppendString(b, version)
	}
	b = appendKeyValuesJSON(b, scope, otlpwire.ScopeAttributes, "attributes", 0)
	if dropped != 0 {
		b = append(b, `,"droppedAttributesCount":`...)
		b = strconv.AppendUint(b, uint64(uint32(dropped)), 10)
	}
	if len(b) > mark {
		b[mark] = ' '
	}
	return append(b, '}')
}

// appendPassThroughJSON transcodes the log record of an OTLP record.
func appendPassThroughJSON(b []byte, r *record.Record, p *record.OTLPParts) []byte {
	var (
		t, observed, flags uint64
		sevNum, dropped    uint64
		sevText, eventName []byte
		traceID, spanID    []byte
	)
	for f, rest, ok := otlpwire.Next(p.Log); ok; f, rest, ok = otlpwire.Next(rest) {
		switch {
		case f.Num == otlpwire.LogTime && f.Type == protowire.Fixed64Type:
			t = f.X
		case f.Num == otlpwire.LogObservedTime && f.Type == protowire.Fixed64Type:
			observed = f.X
		case f.Num == otlpwire.LogSeverityNumber && f.Type == protowire.VarintType:
			sevNum = f.X
		case f.Num == otlpwire.LogSeverityText && f.Type == protowire.BytesType:
			sevText = f.V
		case f.Num == otlpwire.LogDropped && f.Type == protowire.VarintType:
			dropped = f.X
		case f.Num == otlpwire.LogFlags && f.Type == protowire.Fixed32Type:
			flags = f.X
		case f.Num == otlpwire.LogTraceID && f.Type == protowire.BytesType:
			traceID = f.V
		case f.Num == otlpwire.LogSpanID && f.Type == protowire.BytesType:
			spanID = f.V
		case f.Num == otlpwire.LogEventName && f.Type == protowire.BytesType:
			eventName = f.V
		}
	}
	b = append(b, '{')
	mark := len(b)
	if t != 0 {
		b = append(b, `,"timeUnixNano":`...)
		b = appendUintString(b, t)
	}
	if observed != 0 {
		b = append(b, `,"observedTimeUnixNano":`...)
		b = appendUintString(b, observed)
	}
	if sevNum != 0 {
		b = append(b, `,"severityNumber":`...)
		b = strconv.AppendInt(b, int64(int32(sevNum)), 10)
	}
	if len(sevText) > 0 {
		b = append(b, `,"severityText":`...)
		b = record.AppendString(b, sevText)
	}
	switch p.BodyKind {
	case record.BodyString:
		b = append(b, `,"body":{"stringValue":`...)
		b = record.AppendString(b, r.Message)
		b = append(b, '}')
	case record.BodyValue:
		b = append(b, `,"body":`...)
		b = appendAnyValueJSON(b, p.Body, 0)
	}
	b = appendKeyValuesJSON(b, p.Log, otlpwire.LogAttributes, "attributes", 0)
	if dropped != 0 {
		b = append(b, `,"droppedAttributesCount":`...)
		b = strconv.AppendUint(b, uint64(uint32(dropped)), 10)
	}
	if flags != 0 {
		b = append(b, `,"flags":`...)
		b = strconv.AppendUint(b, flags, 10)
	}
	if len(traceID) > 0 {
		b = append(b, `,"traceId":"`...)
		b = hex.AppendEncode(b, traceID)
		b = append(b, '"')
	}
	if len(spanID) > 0 {
		b = append(b, `,"spanId":"`...)
		b = hex.AppendEncode(b, spanID)
		b = append(b, '"')
	}
	if len(eventName) > 0 {
		b = append(b, `,"eventName":`...)
		b = record.AppendString(b, eventName)
	}
	if len(b) > mark {
		b[mark] = ' '
	}
	return append(b, '}')
}
