package ingest

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/skiff-dev/skiff/internal/otlpwire"
)

// OTLP/JSON is transcoded into the protobuf form and then decoded like a
// protobuf request, so that both encodings are held to the same checks and
// the OTLP sink gets protobuf bytes either way. The mapping is protobuf's
// JSON mapping with OTLP's deviations: trace and span IDs are hex (any
// case), 64-bit integers are strings or numbers, enums are numbers (names
// are accepted too, as protojson does), field names are lowerCamelCase
// (the original snake_case names are accepted too), and unknown fields are
// ignored.

// jsonObj is a JSON object by member name.
type jsonObj map[string]json.RawMessage

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

func object(raw json.RawMessage, what string) (jsonObj, error) {
	if isNull(raw) {
		return nil, nil
	}
	var m jsonObj
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, malformed("%s is not a JSON object: %v", what, err)
	}
	return m, nil
}

func array(raw json.RawMessage, what string) ([]json.RawMessage, error) {
	if isNull(raw) {
		return nil, nil
	}
	var a []json.RawMessage
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, malformed("%s is not a JSON array: %v", what, err)
	}
	return a, nil
}

// get returns the member named in lowerCamelCase, or else in the original
// snake_case (derived from it), or nil.
func (m jsonObj) get(camel string) json.RawMessage {
	if v, ok := m[camel]; ok && !isNull(v) {
		return v
	}
	if snake := snakeCase(camel); snake != camel {
		if v, ok := m[snake]; ok && !isNull(v) {
			return v
		}
	}
	return nil
}

func snakeCase(camel string) string {
	var sb strings.Builder
	for _, c := range camel {
		if c >= 'A' && c <= 'Z' {
			sb.WriteByte('_')
			c += 'a' - 'A'
		}
		sb.WriteRune(c)
	}
	return sb.String()
}

// appendMsg appends a message field holding msg.
func appendMsg(dst []byte, num protowire.Number, msg []byte) []byte {
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	return protowire.AppendBytes(dst, msg)
}

// transcoder turns the JSON form of a message into its protobuf form.
type transcoder func(json.RawMessage) ([]byte, error)

// appendMsgField appends message field num transcoded from raw, unless
// raw is absent.
func appendMsgField(dst []byte, num protowire.Number, raw json.RawMessage, transcode transcoder) ([]byte, error) {
	if raw == nil {
		return dst, nil
	}
	msg, err := transcode(raw)
	if err != nil {
		return nil, err
	}
	return appendMsg(dst, num, msg), nil
}

// appendRepeated appends the repeated message field num: one field for
// each element of the JSON array raw (named what in errors).
func appendRepeated(dst []byte, num protowire.Number, raw json.RawMessage, what string, transcode transcoder) ([]byte, error) {
	elems, err := array(raw, what)
	if err != nil {
		return nil, err
	}
	for _, e := range elems {
		if dst, err = appendMsgField(dst, num, e, transcode); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

// transcodeRequest turns an OTLP/JSON ExportLogsServiceRequest into its
// protobuf form, appended to dst.
func transcodeRequest(dst, body []byte) ([]byte, error) {
	if t := bytes.TrimSpace(body); len(t) == 0 || t[0] != '{' {
		return nil, malformed("body is not a JSON object (an ExportLogsServiceRequest)")
	}
	m, err := object(body, "body")
	if err != nil {
		return nil, err
	}
	return appendRepeated(dst, otlpwire.RequestResourceLogs, m.get("resourceLogs"), "resourceLogs", transcodeResourceLogs)
}

func transcodeResourceLogs(raw json.RawMessage) ([]byte, error) {
	m, err := object(raw, "resourceLogs[]")
	if err != nil {
		return nil, err
	}
	out, err := appendMsgField(nil, otlpwire.ResourceLogsResource, m.get("resource"), transcodeResource)
	if err != nil {
		return nil, err
	}
	if out, err = appendRepeated(out, otlpwire.ResourceLogsScopeLogs, m.get("scopeLogs"), "scopeLogs", transcodeScopeLogs); err != nil {
		return nil, err
	}
	return appendStringField(out, otlpwire.ResourceLogsSchemaURL, m.get("schemaUrl"), "resourceLogs.schemaUrl")
}

func transcodeResource(raw json.RawMessage) ([]byte, error) {
	m, err := object(raw, "resource")
	if err != nil {
		return nil, err
	}
	out, err := appendKeyValues(nil, otlpwire.ResourceAttributes, m.get("attributes"), "resource.attributes")
	if err != nil {
		return nil, err
	}
	if out, err = appendVarintField(out, otlpwire.ResourceDropped, m.get("droppedAttributesCount"), "resource.droppedAttributesCount", math.MaxUint32); err != nil {
		return nil, err
	}
	return appendRepeated(out, otlpwire.ResourceEntityRefs, m.get("entityRefs"), "resource.entityRefs", transcodeEntityRef)
}

func transcodeEntityRef(raw json.RawMessage) ([]byte, error) {
	m, err := object(raw, "resource.entityRefs[]")
	if err != nil {
		return nil, err
	}
	var out []byte
	if out, err = appendStringField(out, otlpwire.EntityRefSchemaURL, m.get("schemaUrl"), "entityRefs.schemaUrl"); err != nil {
		return nil, err
	}
	if out, err = appendStringField(out, otlpwire.EntityRefType, m.get("type"), "entityRefs.type"); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		num  protowire.Number
		name string
	}{{otlpwire.EntityRefIDKeys, "idKeys"}, {otlpwire.EntityRefDescriptionKeys, "descriptionKeys"}} {
		keys, err := array(m.get(f.name), "entityRefs."+f.name)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			var s string
			if err := json.Unmarshal(k, &s); err != nil {
				return nil, malformed("entityRefs.%s: %v", f.name, err)
			}
			out = protowire.AppendTag(out, f.num, protowire.BytesType)
			out = protowire.AppendString(out, s)
		}
	}
	return out, nil
}

func transcodeScopeLogs(raw json.RawMessage) ([]byte, error) {
	m, err := object(raw, "scopeLogs[]")
	if err != nil {
		return nil, err
	}
	out, err := appendMsgField(nil, otlpwire.ScopeLogsScope, m.get("scope"), transcodeScope)
	if err != nil {
		return nil, err
	}
	if out, err = appendRepeated(out, otlpwire.ScopeLogsLogRecords, m.get("logRecords"), "logRecords", transcodeLogRecord); err != nil {
		return nil, err
	}
	return appendStringField(out, otlpwire.ScopeLogsSchemaURL, m.get("schemaUrl"), "scopeLogs.schemaUrl")
}

func transcodeScope(raw json.RawMessage) ([]byte, error) {
	m, err := object(raw, "scope")
	if err != nil {
		return nil, err
	}
	var out []byte
	if out, err = appendStringField(out, otlpwire.ScopeName, m.get("name"), "scope.name"); err != nil {
		return nil, err
	}
	if out, err = appendStringField(out, otlpwire.ScopeVersion, m.get("version"), "scope.version"); err != nil {
		return nil, err
	}
	if out, err = appendKeyValues(out, otlpwire.ScopeAttributes, m.get("attributes"), "scope.attributes"); err != nil {
		return nil, err
	}
	return appendVarintField(out, otlpwire.ScopeDropped, m.get("droppedAttributesCount"), "scope.droppedAttributesCount", math.MaxUint32)
}

func transcodeLogRecord(raw json.RawMessage) ([]byte, error) {
	m, err := object(raw, "logRecords[]")
	if err != nil {
		return nil, err
	}
	var out []byte
	if out, err = appendFixed64Field(out, otlpwire.LogTime, m.get("timeUnixNano"), "timeUnixNano"); err != nil {
		return nil, err
	}
	if v := m.get("severityNumber"); v != nil {
		n, err := severity(v)
		if err != nil {
			return nil, err
		}
		if n != 0 {
			out = protowire.AppendTag(out, otlpwire.LogSeverityNumber, protowire.VarintType)
			out = protowire.AppendVarint(out, uint64(n))
		}
	}
	if out, err = appendStringField(out, otlpwire.LogSeverityText, m.get("severityText"), "severityText"); err != nil {
		return nil, err
	}
	if out, err = appendMsgField(out, otlpwire.LogBody, m.get("body"), func(v json.RawMessage) ([]byte, error) {
		return transcodeAnyValue(v, 0, "body")
	}); err != nil {
		return nil, err
	}
	if out, err = appendKeyValues(out, otlpwire.LogAttributes, m.get("attributes"), "attributes"); err != nil {
		return nil, err
	}
	if out, err = appendVarintField(out, otlpwire.LogDropped, m.get("droppedAttributesCount"), "droppedAttributesCount", math.MaxUint32); err != nil {
		return nil, err
	}
	if v := m.get("flags"); v != nil {
		n, err := unsigned(v, "flags", math.MaxUint32)
		if err != nil {
			return nil, err
		}
		if n != 0 {
			out = protowire.AppendTag(out, otlpwire.LogFlags, protowire.Fixed32Type)
			out = protowire.AppendFixed32(out, uint32(n))
		}
	}
	for _, f := range []struct {
		num  protowire.Number
		name string
	}{{otlpwire.LogTraceID, "traceId"}, {otlpwire.LogSpanID, "spanId"}} {
		if out, err = appendHexField(out, f.num, m.get(f.name), f.name); err != nil {
			return nil, err
		}
	}
	if out, err = appendFixed64Field(out, otlpwire.LogObservedTime, m.get("observedTimeUnixNano"), "observedTimeUnixNano"); err != nil {
		return nil, err
	}
	return appendStringField(out, otlpwire.LogEventName, m.get("eventName"), "eventName")
}

// transcodeAnyValue turns {"stringValue": …} and its siblings into an
// AnyValue.
func transcodeAnyValue(raw json.RawMessage, depth int, what string) ([]byte, error) {
	if depth > maxDepth {
		return nil, malformed("%s is nested deeper than %d levels", what, maxDepth)
	}
	m, err := object(raw, what)
	if err != nil {
		return nil, err
	}
	var out []byte
	set := 0
	for _, name := range [...]string{"stringValue", "boolValue", "intValue", "doubleValue", "arrayValue", "kvlistValue", "bytesValue"} {
		v := m.get(name)
		if v == nil {
			continue
		}
		if set++; set > 1 {
			return nil, malformed("%s sets more than one value", what)
		}
		switch name {
		case "stringValue":
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, malformed("%s.stringValue: %v", what, err)
			}
			out = protowire.AppendTag(out, otlpwire.AnyString, protowire.BytesType)
			out = protowire.AppendString(out, s)
		case "boolValue":
			var b bool
			if err := json.Unmarshal(v, &b); err != nil {
				return nil, malformed("%s.boolValue: %v", what, err)
			}
			out = protowire.AppendTag(out, otlpwire.AnyBool, protowire.VarintType)
			out = protowire.AppendVarint(out, protowire.EncodeBool(b))
		case "intValue":
			n, err := signed(v, what+".intValue")
			if err != nil {
				return nil, err
			}
			out = protowire.AppendTag(out, otlpwire.AnyInt, protowire.VarintType)
			out = protowire.AppendVarint(out, uint64(n))
		case "doubleValue":
			f, err := double(v, what+".doubleValue")
			if err != nil {
				return nil, err
			}
			out = protowire.AppendTag(out, otlpwire.AnyDouble, protowire.Fixed64Type)
			out = protowire.AppendFixed64(out, math.Float64bits(f))
		case "bytesValue":
			b, err := base64Bytes(v, what+".bytesValue")
			if err != nil {
				return nil, err
			}
			out = protowire.AppendTag(out, otlpwire.AnyBytes, protowire.BytesType)
			out = protowire.AppendBytes(out, b)
		case "arrayValue", "kvlistValue":
			lm, err := object(v, what+"."+name)
			if err != nil {
				return nil, err
			}
			num, item := otlpwire.AnyArray, transcodeAnyValue
			if name == "kvlistValue" {
				num, item = otlpwire.AnyKvlist, transcodeKeyValue
			}
			list, err := appendRepeated(nil, otlpwire.ListValues, lm.get("values"), what+"."+name+".values", func(e json.RawMessage) ([]byte, error) {
				return item(e, depth+1, what)
			})
			if err != nil {
				return nil, err
			}
			out = appendMsg(out, num, list)
		}
	}
	return out, nil
}

func transcodeKeyValue(raw json.RawMessage, depth int, what string) ([]byte, error) {
	m, err := object(raw, what)
	if err != nil {
		return nil, err
	}
	out, err := appendStringField(nil, otlpwire.KeyValueKey, m.get("key"), what+" key")
	if err != nil {
		return nil, err
	}
	return appendMsgField(out, otlpwire.KeyValueValue, m.get("value"), func(v json.RawMessage) ([]byte, error) {
		return transcodeAnyValue(v, depth+1, what)
	})
}

func appendKeyValues(dst []byte, num protowire.Number, raw json.RawMessage, what string) ([]byte, error) {
	return appendRepeated(dst, num, raw, what, func(kv json.RawMessage) ([]byte, error) {
		return transcodeKeyValue(kv, 0, what)
	})
}

// appendStringField appends a string field unless it is absent or empty
// (proto3 leaves defaults out).
func appendStringField(dst []byte, num protowire.Number, raw json.RawMessage, what string) ([]byte, error) {
	if raw == nil {
		return dst, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, malformed("%s is not a string: %v", what, err)
	}
	if s == "" {
		return dst, nil
	}
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	return protowire.AppendString(dst, s), nil
}

func appendVarintField(dst []byte, num protowire.Number, raw json.RawMessage, what string, max uint64) ([]byte, error) {
	if raw == nil {
		return dst, nil
	}
	n, err := unsigned(raw, what, max)
	if err != nil || n == 0 {
		return dst, err
	}
	dst = protowire.AppendTag(dst, num, protowire.VarintType)
	return protowire.AppendVarint(dst, n), nil
}

func appendFixed64Field(dst []byte, num protowire.Number, raw json.RawMessage, what string) ([]byte, error) {
	if raw == nil {
		return dst, nil
	}
	n, err := unsigned(raw, what, math.MaxUint64)
	if err != nil || n == 0 {
		return dst, err
	}
	dst = protowire.AppendTag(dst, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(dst, n), nil
}

// appendHexField appends a bytes field given as hex (OTLP's trace and span
// IDs). Its length is checked by the protobuf decoder.
func appendHexField(dst []byte, num protowire.Number, raw json.RawMessage, what string) ([]byte, error) {
	if raw == nil {
		return dst, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, malformed("%s is not a string: %v", what, err)
	}
	if s == "" {
		return dst, nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, malformed("%s %q is not hex: %v", what, s, err)
	}
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	return protowire.AppendBytes(dst, b), nil
}

// number returns the text of a JSON number or of a string holding one
// (protobuf's JSON mapping writes 64-bit integers as strings).
func number(raw json.RawMessage, what string) (string, error) {
	t := strings.TrimSpace(string(raw))
	if strings.HasPrefix(t, `"`) {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", malformed("%s: %v", what, err)
		}
		return s, nil
	}
	if !json.Valid(raw) || t == "" || !(t[0] == '-' || t[0] >= '0' && t[0] <= '9') {
		return "", malformed("%s is not a number: %s", what, t)
	}
	return t, nil
}

func unsigned(raw json.RawMessage, what string, max uint64) (uint64, error) {
	t, err := number(raw, what)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(t, 10, 64)
	if err != nil {
		// An integral number in another notation (1e9, 5.0) is accepted,
		// as protojson does.
		f, ferr := strconv.ParseFloat(t, 64)
		if ferr != nil || f < 0 || f != math.Trunc(f) || f >= math.MaxUint64 {
			return 0, malformed("%s %q is not an unsigned integer", what, t)
		}
		n = uint64(f)
	}
	if n > max {
		return 0, malformed("%s %s is out of range", what, t)
	}
	return n, nil
}

func signed(raw json.RawMessage, what string) (int64, error) {
	t, err := number(raw, what)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(t, 64)
		if ferr != nil || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
			return 0, malformed("%s %q is not an integer", what, t)
		}
		n = int64(f)
	}
	return n, nil
}

func double(raw json.RawMessage, what string) (float64, error) {
	t := strings.TrimSpace(string(raw))
	if strings.HasPrefix(t, `"`) {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, malformed("%s: %v", what, err)
		}
		switch s {
		case "NaN":
			return math.NaN(), nil
		case "Infinity":
			return math.Inf(1), nil
		case "-Infinity":
			return math.Inf(-1), nil
		}
		t = s
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil {
		return 0, malformed("%s %q is not a number", what, t)
	}
	return f, nil
}

func base64Bytes(raw json.RawMessage, what string) ([]byte, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, malformed("%s is not a string: %v", what, err)
	}
	// protojson accepts standard and URL-safe base64, padded or not.
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "-_") {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			return nil, malformed("%s is not base64: %v", what, err)
		}
		return b, nil
	}
	b, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		return nil, malformed("%s is not base64: %v", what, err)
	}
	return b, nil
}

// severities maps SeverityNumber names to values.
var severities = func() map[string]int32 {
	m := map[string]int32{"SEVERITY_NUMBER_UNSPECIFIED": 0}
	for i, level := range []string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"} {
		for j, suffix := range []string{"", "2", "3", "4"} {
			m["SEVERITY_NUMBER_"+level+suffix] = int32(4*i + j + 1)
		}
	}
	return m
}()

// severity reads a SeverityNumber given as a number or by name.
func severity(raw json.RawMessage) (int32, error) {
	t := strings.TrimSpace(string(raw))
	if strings.HasPrefix(t, `"`) {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, malformed("severityNumber: %v", err)
		}
		n, ok := severities[s]
		if !ok {
			return 0, malformed("severityNumber %q is not a SeverityNumber name", s)
		}
		return n, nil
	}
	n, err := strconv.ParseInt(t, 10, 32)
	if err != nil {
		return 0, malformed("severityNumber %s is not an enum value", t)
	}
	return int32(n), nil
}

// appendJSONPartialSuccess appends the JSON form of an
// ExportLogsServiceResponse with partial_success set (int64 as a string,
// as protobuf's JSON mapping writes it).
func appendJSONPartialSuccess(dst []byte, rejected int64, msg string) []byte {
	m, _ := json.Marshal(msg) // a string always marshals
	dst = append(dst, `{"partialSuccess":{"rejectedLogRecords":"`...)
	dst = strconv.AppendInt(dst, rejected, 10)
	dst = append(dst, `","errorMessage":`...)
	dst = append(dst, m...)
	return append(dst, "}}"...)
}

// appendJSONStatus appends the JSON form of a google.rpc.Status.
func appendJSONStatus(dst []byte, code int32, msg string) []byte {
	m, _ := json.Marshal(msg)
	dst = append(dst, `{"code":`...)
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, `,"message":`...)
	dst = append(dst, m...)
	return append(dst, '}')
}
