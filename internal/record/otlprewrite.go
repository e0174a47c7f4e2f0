package record

import (
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/skiff-dev/skiff/internal/otlpwire"
)

// StringRewriter rewrites one string value: it returns the replacement and
// whether it differs from s.
type StringRewriter func(s []byte) (out []byte, changed bool)

// RewriteStrings passes every string value of p's attributes (the log
// record's, the resource's and the scope's), of their nested arrays and
// maps, and of a non-string body to fn, and puts the replacements in place.
// Keys, numbers and every other field stay as received. It reports whether
// anything changed; the parts that changed are new memory, the others
// still alias what p was decoded from. Redaction uses it so that a secret
// in an attribute of an ingested OTLP record never reaches the buffer.
//
// Malformed protobuf is left as it is (nothing skiff decodes from it is
// rewritten), as is anything nested deeper than the JSON renderer goes.
func (p *OTLPParts) RewriteStrings(fn StringRewriter) bool {
	changed := false
	for _, m := range []struct {
		b    *[]byte
		attr protowire.Number
	}{{&p.Log, otlpwire.LogAttributes}, {&p.Resource, otlpwire.ResourceAttributes}, {&p.Scope, otlpwire.ScopeAttributes}} {
		if out, ok := rewriteKeyValues(*m.b, m.attr, fn, 0); ok {
			*m.b, changed = out, true
		}
	}
	if p.BodyKind == BodyValue {
		if out, ok := rewriteAnyValue(p.Body, fn, 0); ok {
			p.Body, changed = out, true
		}
	}
	return changed
}

// rewriteKeyValues rewrites the values of the KeyValues in the repeated
// field num of message b. It returns b's new form and true only when
// something changed.
func rewriteKeyValues(b []byte, num protowire.Number, fn StringRewriter, depth int) ([]byte, bool) {
	return rewriteFields(b, func(f otlpwire.Field) ([]byte, bool) {
		if f.Num != num || f.Type != protowire.BytesType {
			return nil, false
		}
		return rewriteFields(f.V, func(kv otlpwire.Field) ([]byte, bool) {
			if kv.Num != otlpwire.KeyValueValue || kv.Type != protowire.BytesType {
				return nil, false
			}
			return rewriteAnyValue(kv.V, fn, depth+1)
		})
	})
}

// rewriteAnyValue rewrites an AnyValue: its string, or the values of its
// array or map.
func rewriteAnyValue(b []byte, fn StringRewriter, depth int) ([]byte, bool) {
	if depth > maxRenderedDepth {
		return nil, false
	}
	return rewriteFields(b, func(f otlpwire.Field) ([]byte, bool) {
		if f.Type != protowire.BytesType {
			return nil, false
		}
		switch f.Num {
		case otlpwire.AnyString:
			return fn(f.V)
		case otlpwire.AnyArray:
			return rewriteFields(f.V, func(e otlpwire.Field) ([]byte, bool) {
				if e.Num != otlpwire.ListValues || e.Type != protowire.BytesType {
					return nil, false
				}
				return rewriteAnyValue(e.V, fn, depth+1)
			})
		case otlpwire.AnyKvlist:
			return rewriteKeyValues(f.V, otlpwire.ListValues, fn, depth+1)
		}
		return nil, false
	})
}

// rewriteFields walks the fields of message b and lets each bytes field be
// replaced: fn returns the new value and true, or false to keep it. The
// message is rebuilt only when some field changed; a malformed message is
// kept whole.
func rewriteFields(b []byte, fn func(otlpwire.Field) ([]byte, bool)) ([]byte, bool) {
	var out []byte
	rest := b
	for len(rest) > 0 {
		start := len(b) - len(rest)
		f, next, ok := otlpwire.Next(rest)
		if !ok {
			return nil, false
		}
		v, changed := fn(f)
		if changed {
			if out == nil {
				out = append(make([]byte, 0, len(b)+16), b[:start]...)
			}
			out = protowire.AppendTag(out, f.Num, protowire.BytesType)
			out = protowire.AppendBytes(out, v)
		} else if out != nil {
			out = append(out, rest[:len(rest)-len(next)]...)
		}
		rest = next
	}
	return out, out != nil
}
