package ingest

import (
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/skiff-dev/skiff/internal/otlpwire"
	"github.com/skiff-dev/skiff/internal/record"
)

// maxDepth bounds the nesting of AnyValues a request may have.
const maxDepth = 32

// malformed is the error of a request that does not decode.
func malformed(format string, args ...any) error {
	return &reject{status: 400, reason: reasonMalformed, msg: fmt.Sprintf(format, args...)}
}

// want checks a known field's wire type. The field is named by what and
// the optional field, joined only for an error (no allocation otherwise).
func want(f otlpwire.Field, typ protowire.Type, what string, field ...string) error {
	if f.Type != typ {
		return malformed("%s has wire type %d, want %d", join(what, field), f.Type, typ)
	}
	return nil
}

func checkString(f otlpwire.Field, what string, field ...string) error {
	if err := want(f, protowire.BytesType, what, field...); err != nil {
		return err
	}
	if !utf8.Valid(f.V) {
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
		f, rest, err := otlpwire.Consume(b)
		if err != nil {
			return malformed("request: %v", err)
		}
		b = rest
		if f.Num != otlpwire.RequestResourceLogs {
			continue // unknown: skipped, as a protobuf decoder does
		}
		if err := want(f, protowire.BytesType, "resource_logs"); err != nil {
			return err
		}
		if err := q.resourceLogs(f.V); err != nil {
			return err
		}
	}
	return nil
}

// logsGroup is the shape ResourceLogs and ScopeLogs share: a message
// saying what the group is (the resource, the scope), the repeated
// members (scope logs, log records), and a schema URL.
type logsGroup struct {
	what                     string // the message's name, for errors
	head, members, schemaURL protowire.Number
	headName, membersName    string
	check                    func([]byte) error // validates the head
}

var (
	resourceLogsGroup = logsGroup{
		what: "resource_logs",
		head: otlpwire.ResourceLogsResource, members: otlpwire.ResourceLogsScopeLogs, schemaURL: otlpwire.ResourceLogsSchemaURL,
		headName: "resource", membersName: "scope_logs",
		check: checkResource,
	}
	scopeLogsGroup = logsGroup{
		what: "scope_logs",
		head: otlpwire.ScopeLogsScope, members: otlpwire.ScopeLogsLogRecords, schemaURL: otlpwire.ScopeLogsSchemaURL,
		headName: "scope", membersName: "log_records",
		check: checkScope,
	}
)

// walk checks the group message b and returns its head and schema URL,
// which may follow the members on the wire, so that they are known before
// the first member is decoded. A head given more than once is merged in
// buf.
func (g *logsGroup) walk(b []byte, buf *[]byte) (head, schemaURL []byte, err error) {
	h := merged{buf: buf}
	for len(b) > 0 {
		f, rest, err := otlpwire.Consume(b)
		if err != nil {
			return nil, nil, malformed("%s: %v", g.what, err)
		}
		b = rest
		switch f.Num {
		case g.head:
			if err := want(f, protowire.BytesType, g.headName); err != nil {
				return nil, nil, err
			}
			if err := g.check(f.V); err != nil {
				return nil, nil, err
			}
			h.add(f.V)
		case g.schemaURL:
			if err := checkString(f, g.what+".schema_url"); err != nil {
				return nil, nil, err
			}
			schemaURL = f.V
		case g.members:
			if err := want(f, protowire.BytesType, g.membersName); err != nil {
				return nil, nil, err
			}
		}
	}
	return h.v, schemaURL, nil
}

// eachMember calls fn with each member of the group message b, which walk
// has checked.
func (g *logsGroup) eachMember(b []byte, fn func([]byte) error) error {
	for f, rest, ok := otlpwire.Next(b); ok; f, rest, ok = otlpwire.Next(rest) {
		if f.Num == g.members {
			if err := fn(f.V); err != nil {
				return err
			}
		}
	}
	return nil
}

// merged is a message field that may be given more than once, which
// protobuf merges: for the wire form, concatenation. The first occurrence
// stays sliced from the request; later ones are joined in *buf (scratch
// memory of the request).
type merged struct {
	v   []byte // the field so far; nil if absent
	n   int    // occurrences
	buf *[]byte
}

func (m *merged) add(v []byte) {
	m.n++
	switch m.n {
	case 1:
		m.v = v
		return
	case 2:
		*m.buf = append(append((*m.buf)[:0], m.v...), v...)
	default:
		*m.buf = append(*m.buf, v...)
	}
	m.v = *m.buf
}

// resourceLogs decodes one ResourceLogs: its resource and schema URL
// first, then each ScopeLogs.
func (q *request) resourceLogs(b []byte) error {
	res, schema, err := resourceLogsGroup.walk(b, &q.res)
	if err != nil {
		return err
	}
	return resourceLogsGroup.eachMember(b, func(sl []byte) error {
		return q.scopeLogs(sl, res, schema)
	})
}

func (q *request) scopeLogs(b, res, resSchema []byte) error {
	scope, schema, err := scopeLogsGroup.walk(b, &q.scope)
	if err != nil {
		return err
	}
	parts := record.OTLPParts{Resource: res, ResourceSchemaURL: resSchema, Scope: scope, ScopeSchemaURL: schema}
	return scopeLogsGroup.eachMember(b, func(lr []byte) error {
		return q.logRecord(lr, parts)
	})
}

// logRecord decodes one LogRecord into a record. A record whose trace or
// span ID has the wrong length is rejected alone (partial success); any
// other problem fails the request.
func (q *request) logRecord(b []byte, parts record.OTLPParts) error {
	q.log = q.log[:0]
	body := merged{buf: &q.body2}
	var ts, observed uint64
	bad := ""
	for lb := b; len(lb) > 0; {
		f, rest, err := otlpwire.Consume(lb)
		if err != nil {
			return malformed("log_record: %v", err)
		}
		raw := lb[:len(lb)-len(rest)] // the whole field, tag included
		lb = rest
		var cerr error
		switch f.Num {
		case otlpwire.LogBody:
			if cerr = want(f, protowire.BytesType, "body"); cerr == nil {
				cerr = checkAnyValue(f.V, 0, "body")
			}
			if cerr != nil {
				return cerr
			}
			body.add(f.V)
			continue // the body travels apart from the other fields
		case otlpwire.LogTime:
			cerr = want(f, protowire.Fixed64Type, "time_unix_nano")
			ts = f.X
		case otlpwire.LogObservedTime:
			cerr = want(f, protowire.Fixed64Type, "observed_time_unix_nano")
			observed = f.X
		case otlpwire.LogSeverityNumber:
			cerr = want(f, protowire.VarintType, "severity_number")
		case otlpwire.LogDropped:
			cerr = want(f, protowire.VarintType, "dropped_attributes_count")
		case otlpwire.LogFlags:
			cerr = want(f, protowire.Fixed32Type, "flags")
		case otlpwire.LogSeverityText:
			cerr = checkString(f, "severity_text")
		case otlpwire.LogEventName:
			cerr = checkString(f, "event_name")
		case otlpwire.LogAttributes:
			if cerr = want(f, protowire.BytesType, "attributes"); cerr == nil {
				cerr = checkKeyValue(f.V, 0, "attributes")
			}
		case otlpwire.LogTraceID:
			if cerr = want(f, protowire.BytesType, "trace_id"); cerr == nil && len(f.V) != 0 && len(f.V) != otlpwire.TraceIDLen {
				bad = fmt.Sprintf("trace_id is %d bytes (accepted: 16, or none)", len(f.V))
			}
		case otlpwire.LogSpanID:
			if cerr = want(f, protowire.BytesType, "span_id"); cerr == nil && len(f.V) != 0 && len(f.V) != otlpwire.SpanIDLen {
				bad = fmt.Sprintf("span_id is %d bytes (accepted: 8, or none)", len(f.V))
			}
		}
		if cerr != nil {
			return cerr
		}
		q.log = append(q.log, raw...)
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
	if body.n > 0 {
		kind, str := anyValueKind(body.v)
		if kind == otlpwire.AnyString {
			parts.BodyKind = record.BodyString
			r.Message = str
		} else {
			parts.BodyKind, parts.Body = record.BodyValue, body.v
			q.msg = record.AppendAnyValueJSON(q.msg[:0], body.v)
			r.Message = q.msg
			if kind == otlpwire.AnyKvlist {
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
		f, rest, err := otlpwire.Consume(b)
		if err != nil {
			break
		}
		b = rest
		switch f.Num {
		case otlpwire.AnyString, otlpwire.AnyBool, otlpwire.AnyInt, otlpwire.AnyDouble, otlpwire.AnyArray, otlpwire.AnyKvlist, otlpwire.AnyBytes:
			kind, s = f.Num, f.V
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
		f, rest, err := otlpwire.Consume(b)
		if err != nil {
			return malformed("%s: %v", what, err)
		}
		b = rest
		switch f.Num {
		case otlpwire.AnyString:
			err = checkString(f, what, "string_value")
		case otlpwire.AnyBool, otlpwire.AnyInt:
			err = want(f, protowire.VarintType, what, "value")
		case otlpwire.AnyDouble:
			err = want(f, protowire.Fixed64Type, what, "double_value")
		case otlpwire.AnyBytes:
			err = want(f, protowire.BytesType, what, "bytes_value")
		case otlpwire.AnyArray, otlpwire.AnyKvlist:
			if err = want(f, protowire.BytesType, what, "value"); err != nil {
				return err
			}
			for lb := f.V; len(lb) > 0 && err == nil; {
				var g otlpwire.Field
				g, lb, err = otlpwire.Consume(lb)
				if err != nil {
					return malformed("%s: %v", what, err)
				}
				if g.Num != otlpwire.ListValues {
					continue
				}
				if err = want(g, protowire.BytesType, what, "values"); err != nil {
					return err
				}
				if f.Num == otlpwire.AnyArray {
					err = checkAnyValue(g.V, depth+1, what)
				} else {
					err = checkKeyValue(g.V, depth+1, what)
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
		f, rest, err := otlpwire.Consume(b)
		if err != nil {
			return malformed("%s: %v", what, err)
		}
		b = rest
		switch f.Num {
		case otlpwire.KeyValueKey:
			err = checkString(f, what, "key")
		case otlpwire.KeyValueValue:
			if err = want(f, protowire.BytesType, what, "value"); err == nil {
				err = checkAnyValue(f.V, depth+1, what)
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
		f, rest, err := otlpwire.Consume(b)
		if err != nil {
			return malformed("resource: %v", err)
		}
		b = rest
		switch f.Num {
		case otlpwire.ResourceAttributes:
			if err = want(f, protowire.BytesType, "resource attributes"); err == nil {
				err = checkKeyValue(f.V, 0, "resource attributes")
			}
		case otlpwire.ResourceDropped:
			err = want(f, protowire.VarintType, "resource dropped_attributes_count")
		case otlpwire.ResourceEntityRefs:
			if err = want(f, protowire.BytesType, "resource entity_refs"); err == nil {
				err = checkStrings(f.V, "resource entity_refs")
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
		f, rest, err := otlpwire.Consume(b)
		if err != nil {
			return malformed("scope: %v", err)
		}
		b = rest
		switch f.Num {
		case otlpwire.ScopeName:
			err = checkString(f, "scope name")
		case otlpwire.ScopeVersion:
			err = checkString(f, "scope version")
		case otlpwire.ScopeAttributes:
			if err = want(f, protowire.BytesType, "scope attributes"); err == nil {
				err = checkKeyValue(f.V, 0, "scope attributes")
			}
		case otlpwire.ScopeDropped:
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
		f, rest, err := otlpwire.Consume(b)
		if err != nil {
			return malformed("%s: %v", what, err)
		}
		b = rest
		if f.Num >= otlpwire.EntityRefSchemaURL && f.Num <= otlpwire.EntityRefDescriptionKeys {
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
	ps = protowire.AppendTag(ps, otlpwire.PartialSuccessRejected, protowire.VarintType)
	ps = protowire.AppendVarint(ps, uint64(rejected))
	ps = protowire.AppendTag(ps, otlpwire.PartialSuccessErrorMessage, protowire.BytesType)
	ps = protowire.AppendString(ps, msg)
	dst = protowire.AppendTag(dst, otlpwire.ResponsePartialSuccess, protowire.BytesType)
	return protowire.AppendBytes(dst, ps)
}

// appendStatus appends a google.rpc.Status: the body of every OTLP/HTTP
// error response.
func appendStatus(dst []byte, code int32, msg string) []byte {
	dst = protowire.AppendTag(dst, otlpwire.StatusCode, protowire.VarintType)
	dst = protowire.AppendVarint(dst, uint64(code))
	dst = protowire.AppendTag(dst, otlpwire.StatusMessage, protowire.BytesType)
	return protowire.AppendString(dst, msg)
}
