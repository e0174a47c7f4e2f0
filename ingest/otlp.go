package ingest

import (
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/skiff-dev/skiff/internal/record"
)

// The OTLP logs messages, field by field
// (opentelemetry/proto/collector/logs/v1/logs_service.proto and the
// messages it uses). Decoding is by hand with protowire: the request is
// mostly sliced, not copied, and the generated types stay out of the binary.
const (
	reqResourceLogs     protowire.Number = 1
	rlResource          protowire.Number = 1
	rlScopeLogs         protowire.Number = 2
	rlSchemaURL         protowire.Number = 3
	resAttributes       protowire.Number = 1
	resDropped          protowire.Number = 2
	resEntityRefs       protowire.Number = 3
	slScope             protowire.Number = 1
	slLogRecords        protowire.Number = 2
	slSchemaURL         protowire.Number = 3
	scopeName           protowire.Number = 1
	scopeVersion        protowire.Number = 2
	scopeAttributes     protowire.Number = 3
	scopeDropped        protowire.Number = 4
	lrTime              protowire.Number = 1
	lrSeverityNumber    protowire.Number = 2
	lrSeverityText      protowire.Number = 3
	lrBody              protowire.Number = 5
	lrAttributes        protowire.Number = 6
	lrDropped           protowire.Number = 7
	lrFlags             protowire.Number = 8
	lrTraceID           protowire.Number = 9
	lrSpanID            protowire.Number = 10
	lrObservedTime      protowire.Number = 11
	lrEventName         protowire.Number = 12
	avString            protowire.Number = 1
	avBool              protowire.Number = 2
	avInt               protowire.Number = 3
	avDouble            protowire.Number = 4
	avArray             protowire.Number = 5
	avKvlist            protowire.Number = 6
	avBytes             protowire.Number = 7
	listValues          protowire.Number = 1
	kvKey               protowire.Number = 1
	kvValue             protowire.Number = 2
	erSchemaURL         protowire.Number = 1
	erType              protowire.Number = 2
	erIDKeys            protowire.Number = 3
	erDescriptionKeys   protowire.Number = 4
	respPartialSuccess  protowire.Number = 1
	psRejected          protowire.Number = 1
	psErrorMessage      protowire.Number = 2
	statusCode          protowire.Number = 1
	statusMessage       protowire.Number = 2
	maxDepth                             = 32 // nesting of AnyValues accepted
	traceIDLen, spanLen                  = 16, 8
)

// wireField is one field of a protobuf message.
type wireField struct {
	num protowire.Number
	typ protowire.Type
	v   []byte // value of a bytes field
	x   uint64 // value of a varint or fixed field
	raw []byte // the whole field, tag included
}

// consume reads the first field of b.
func consume(b []byte) (f wireField, rest []byte, err error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return f, nil, protowire.ParseError(n)
	}
	f.num, f.typ = num, typ
	m := 0
	switch typ {
	case protowire.VarintType:
		f.x, m = protowire.ConsumeVarint(b[n:])
	case protowire.Fixed64Type:
		f.x, m = protowire.ConsumeFixed64(b[n:])
	case protowire.Fixed32Type:
		var x uint32
		x, m = protowire.ConsumeFixed32(b[n:])
		f.x = uint64(x)
	case protowire.BytesType:
		f.v, m = protowire.ConsumeBytes(b[n:])
	default:
		m = protowire.ConsumeFieldValue(num, typ, b[n:])
	}
	if m < 0 {
		return f, nil, protowire.ParseError(m)
	}
	f.raw = b[:n+m]
	return f, b[n+m:], nil
}

// malformed is the error of a request that does not decode.
func malformed(format string, args ...any) error {
	return &reject{status: 400, reason: reasonMalformed, msg: fmt.Sprintf(format, args...)}
}

// want checks a known field's wire type. The field is named by what and
// the optional field, joined only for an error (no allocation otherwise).
func want(f wireField, typ protowire.Type, what string, field ...string) error {
	if f.typ != typ {
		return malformed("%s has wire type %d, want %d", join(what, field), f.typ, typ)
	}
	return nil
}

func checkString(f wireField, what string, field ...string) error {
	if err := want(f, protowire.BytesType, what, field...); err != nil {
		return err
	}
	if !utf8.Valid(f.v) {
		return malformed("%s is not valid UTF-8", join(what, field))
	}
	return nil
}

func join(what string, field []string) string {
	for _, f := range field {
		what += " " + f
	}
	return what
}

// otlpBatch decodes a protobuf ExportLogsServiceRequest into q's records.
func (q *request) otlpBatch(body []byte) error {
	for b := body; len(b) > 0; {
		f, rest, err := consume(b)
		if err != nil {
			return malformed("request: %v", err)
		}
		b = rest
		if f.num != reqResourceLogs {
			continue // unknown: skipped, as a protobuf decoder does
		}
		if err := want(f, protowire.BytesType, "resource_logs"); err != nil {
			return err
		}
		if err := q.resourceLogs(f.v); err != nil {
			return err
		}
	}
	return nil
}

// resourceLogs decodes one ResourceLogs: its resource and schema URL
// first (they may follow the scope_logs on the wire), then each ScopeLogs.
func (q *request) resourceLogs(b []byte) error {
	var res, schema []byte
	several := false
	for rb := b; len(rb) > 0; {
		f, rest, err := consume(rb)
		if err != nil {
			return malformed("resource_logs: %v", err)
		}
		rb = rest
		switch f.num {
		case rlResource:
			if err := want(f, protowire.BytesType, "resource"); err != nil {
				return err
			}
			if err := checkResource(f.v); err != nil {
				return err
			}
			// A message field given twice is merged, which for the wire
			// form is concatenation.
			if res != nil {
				if !several {
					q.res = append(q.res[:0], res...)
					several = true
				}
				q.res = append(q.res, f.v...)
				res = q.res
			} else {
				res = f.v
			}
		case rlSchemaURL:
			if err := checkString(f, "resource_logs.schema_url"); err != nil {
				return err
			}
			schema = f.v
		case rlScopeLogs:
			if err := want(f, protowire.BytesType, "scope_logs"); err != nil {
				return err
			}
		}
	}
	for rb := b; len(rb) > 0; {
		f, rest, _ := consume(rb) // checked above
		rb = rest
		if f.num == rlScopeLogs {
			if err := q.scopeLogs(f.v, res, schema); err != nil {
				return err
			}
		}
	}
	return nil
}

func (q *request) scopeLogs(b, res, resSchema []byte) error {
	var scope, schema []byte
	var merged []byte
	for sb := b; len(sb) > 0; {
		f, rest, err := consume(sb)
		if err != nil {
			return malformed("scope_logs: %v", err)
		}
		sb = rest
		switch f.num {
		case slScope:
			if err := want(f, protowire.BytesType, "scope"); err != nil {
				return err
			}
			if err := checkScope(f.v); err != nil {
				return err
			}
			if scope != nil {
				merged = append(append(merged[:0:0], scope...), f.v...)
				scope = merged
			} else {
				scope = f.v
			}
		case slSchemaURL:
			if err := checkString(f, "scope_logs.schema_url"); err != nil {
				return err
			}
			schema = f.v
		case slLogRecords:
			if err := want(f, protowire.BytesType, "log_records"); err != nil {
				return err
			}
		}
	}
	parts := record.OTLPParts{Resource: res, ResourceSchemaURL: resSchema, Scope: scope, ScopeSchemaURL: schema}
	for sb := b; len(sb) > 0; {
		f, rest, _ := consume(sb)
		sb = rest
		if f.num == slLogRecords {
			if err := q.logRecord(f.v, parts); err != nil {
				return err
			}
		}
	}
	return nil
}

// logRecord decodes one LogRecord into a record. A record whose trace or
// span ID has the wrong length is rejected alone (partial success); any
// other problem fails the request.
func (q *request) logRecord(b []byte, parts record.OTLPParts) error {
	q.log = q.log[:0]
	var body []byte
	hasBody, bodies := false, 0
	var ts, observed uint64
	bad := ""
	for lb := b; len(lb) > 0; {
		f, rest, err := consume(lb)
		if err != nil {
			return malformed("log_record: %v", err)
		}
		lb = rest
		var cerr error
		switch f.num {
		case lrBody:
			if cerr = want(f, protowire.BytesType, "body"); cerr == nil {
				cerr = checkAnyValue(f.v, 0, "body")
			}
			if cerr == nil {
				hasBody = true
				bodies++
				if bodies == 1 {
					body = f.v
				} else {
					q.body2 = append(append(q.body2[:0], body...), f.v...)
					body = q.body2
				}
			}
			if cerr != nil {
				return cerr
			}
			continue // the body travels apart from the other fields
		case lrTime:
			cerr = want(f, protowire.Fixed64Type, "time_unix_nano")
			ts = f.x
		case lrObservedTime:
			cerr = want(f, protowire.Fixed64Type, "observed_time_unix_nano")
			observed = f.x
		case lrSeverityNumber:
			cerr = want(f, protowire.VarintType, "severity_number")
		case lrDropped:
			cerr = want(f, protowire.VarintType, "dropped_attributes_count")
		case lrFlags:
			cerr = want(f, protowire.Fixed32Type, "flags")
		case lrSeverityText:
			cerr = checkString(f, "severity_text")
		case lrEventName:
			cerr = checkString(f, "event_name")
		case lrAttributes:
			if cerr = want(f, protowire.BytesType, "attributes"); cerr == nil {
				cerr = checkKeyValue(f.v, 0, "attributes")
			}
		case lrTraceID:
			if cerr = want(f, protowire.BytesType, "trace_id"); cerr == nil && len(f.v) != 0 && len(f.v) != traceIDLen {
				bad = fmt.Sprintf("trace_id is %d bytes (accepted: 16, or none)", len(f.v))
			}
		case lrSpanID:
			if cerr = want(f, protowire.BytesType, "span_id"); cerr == nil && len(f.v) != 0 && len(f.v) != spanLen {
				bad = fmt.Sprintf("span_id is %d bytes (accepted: 8, or none)", len(f.v))
			}
		}
		if cerr != nil {
			return cerr
		}
		q.log = append(q.log, f.raw...)
	}
	if bad != "" {
		q.rejectRecord(bad)
		return nil
	}
	r := &q.rec
	*r = record.Record{Origin: record.OriginOTLP}
	switch {
	case ts != 0 && ts <= math.MaxInt64:
		r.EventTime = time.Unix(0, int64(ts)).UTC()
	case observed != 0 && observed <= math.MaxInt64:
		r.EventTime = time.Unix(0, int64(observed)).UTC()
	}
	parts.Log = q.log
	if hasBody {
		kind, str := anyValueKind(body)
		if kind == avString {
			parts.BodyKind = record.BodyString
			r.Message = str
		} else {
			parts.BodyKind, parts.Body = record.BodyValue, body
			q.msg = record.AppendAnyValueJSON(q.msg[:0], body)
			r.Message = q.msg
			if kind == avKvlist {
				r.Flags |= record.FlagJSON
			}
		}
	}
	q.parts = parts.AppendBinary(q.parts[:0])
	r.OTLP = q.parts
	return q.emit(r)
}

// anyValueKind returns which member of the AnyValue b is set (the last one
// on the wire, 0 for none) and, for a string, its bytes.
func anyValueKind(b []byte) (protowire.Number, []byte) {
	var kind protowire.Number
	var s []byte
	for len(b) > 0 {
		f, rest, err := consume(b)
		if err != nil {
			break
		}
		b = rest
		switch f.num {
		case avString, avBool, avInt, avDouble, avArray, avKvlist, avBytes:
			kind, s = f.num, f.v
		}
	}
	return kind, s
}

// checkAnyValue validates an AnyValue: wire types, UTF-8 strings, nesting.
func checkAnyValue(b []byte, depth int, what string) error {
	if depth > maxDepth {
		return malformed("%s is nested deeper than %d levels", what, maxDepth)
	}
	for len(b) > 0 {
		f, rest, err := consume(b)
		if err != nil {
			return malformed("%s: %v", what, err)
		}
		b = rest
		switch f.num {
		case avString:
			err = checkString(f, what, "string_value")
		case avBool, avInt:
			err = want(f, protowire.VarintType, what, "value")
		case avDouble:
			err = want(f, protowire.Fixed64Type, what, "double_value")
		case avBytes:
			err = want(f, protowire.BytesType, what, "bytes_value")
		case avArray, avKvlist:
			if err = want(f, protowire.BytesType, what, "value"); err != nil {
				return err
			}
			for lb := f.v; len(lb) > 0 && err == nil; {
				var g wireField
				g, lb, err = consume(lb)
				if err != nil {
					return malformed("%s: %v", what, err)
				}
				if g.num != listValues {
					continue
				}
				if err = want(g, protowire.BytesType, what, "values"); err != nil {
					return err
				}
				if f.num == avArray {
					err = checkAnyValue(g.v, depth+1, what)
				} else {
					err = checkKeyValue(g.v, depth+1, what)
				}
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func checkKeyValue(b []byte, depth int, what string) error {
	for len(b) > 0 {
		f, rest, err := consume(b)
		if err != nil {
			return malformed("%s: %v", what, err)
		}
		b = rest
		switch f.num {
		case kvKey:
			err = checkString(f, what, "key")
		case kvValue:
			if err = want(f, protowire.BytesType, what, "value"); err == nil {
				err = checkAnyValue(f.v, depth+1, what)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func checkResource(b []byte) error {
	for len(b) > 0 {
		f, rest, err := consume(b)
		if err != nil {
			return malformed("resource: %v", err)
		}
		b = rest
		switch f.num {
		case resAttributes:
			if err = want(f, protowire.BytesType, "resource attributes"); err == nil {
				err = checkKeyValue(f.v, 0, "resource attributes")
			}
		case resDropped:
			err = want(f, protowire.VarintType, "resource dropped_attributes_count")
		case resEntityRefs:
			if err = want(f, protowire.BytesType, "resource entity_refs"); err == nil {
				err = checkStrings(f.v, "resource entity_refs")
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func checkScope(b []byte) error {
	for len(b) > 0 {
		f, rest, err := consume(b)
		if err != nil {
			return malformed("scope: %v", err)
		}
		b = rest
		switch f.num {
		case scopeName:
			err = checkString(f, "scope name")
		case scopeVersion:
			err = checkString(f, "scope version")
		case scopeAttributes:
			if err = want(f, protowire.BytesType, "scope attributes"); err == nil {
				err = checkKeyValue(f.v, 0, "scope attributes")
			}
		case scopeDropped:
			err = want(f, protowire.VarintType, "scope dropped_attributes_count")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// checkStrings validates a message whose known fields (1 to 4) are all
// strings: an EntityRef.
func checkStrings(b []byte, what string) error {
	for len(b) > 0 {
		f, rest, err := consume(b)
		if err != nil {
			return malformed("%s: %v", what, err)
		}
		b = rest
		if f.num >= erSchemaURL && f.num <= erDescriptionKeys {
			if err := checkString(f, what); err != nil {
				return err
			}
		}
	}
	return nil
}

// appendPartialSuccess appends an ExportLogsServiceResponse with its
// partial_success set (rejected records and why).
func appendPartialSuccess(dst []byte, rejected int64, msg string) []byte {
	var ps []byte
	ps = protowire.AppendTag(ps, psRejected, protowire.VarintType)
	ps = protowire.AppendVarint(ps, uint64(rejected))
	ps = protowire.AppendTag(ps, psErrorMessage, protowire.BytesType)
	ps = protowire.AppendString(ps, msg)
	dst = protowire.AppendTag(dst, respPartialSuccess, protowire.BytesType)
	return protowire.AppendBytes(dst, ps)
}

// appendStatus appends a google.rpc.Status: the body of every OTLP/HTTP
// error response.
func appendStatus(dst []byte, code int32, msg string) []byte {
	dst = protowire.AppendTag(dst, statusCode, protowire.VarintType)
	dst = protowire.AppendVarint(dst, uint64(code))
	dst = protowire.AppendTag(dst, statusMessage, protowire.BytesType)
	return protowire.AppendString(dst, msg)
}
