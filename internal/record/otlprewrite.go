package record

import "google.golang.org/protobuf/encoding/protowire"

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
	}{{&p.Log, logAttributes}, {&p.Resource, resourceAttrs}, {&p.Scope, scopeAttrs}} {
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
	return rewriteFields(b, func(f field) ([]byte, bool) {
		if f.num != num || f.typ != protowire.BytesType {
			return nil, false
		}
		return rewriteFields(f.v, func(kv field) ([]byte, bool) {
			if kv.num != keyValueValue || kv.typ != protowire.BytesType {
				return nil, false
			}
			return rewriteAnyValue(kv.v, fn, depth+1)
		})
	})
}

// rewriteAnyValue rewrites an AnyValue: its string, or the values of its
// array or map.
func rewriteAnyValue(b []byte, fn StringRewriter, depth int) ([]byte, bool) {
	if depth > maxRenderedDepth {
		return nil, false
	}
	return rewriteFields(b, func(f field) ([]byte, bool) {
		if f.typ != protowire.BytesType {
			return nil, false
		}
		switch f.num {
		case anyString:
			return fn(f.v)
		case anyArray:
			return rewriteFields(f.v, func(e field) ([]byte, bool) {
				if e.num != listValues || e.typ != protowire.BytesType {
					return nil, false
				}
				return rewriteAnyValue(e.v, fn, depth+1)
			})
		case anyKvlist:
			return rewriteKeyValues(f.v, listValues, fn, depth+1)
		}
		return nil, false
	})
}

// rewriteFields walks the fields of message b and lets each bytes field be
// replaced: fn returns the new value and true, or false to keep it. The
// message is rebuilt only when some field changed; a malformed message is
// kept whole.
func rewriteFields(b []byte, fn func(field) ([]byte, bool)) ([]byte, bool) {
	var out []byte
	rest := b
	for len(rest) > 0 {
		start := len(b) - len(rest)
		f, next, ok := nextField(rest)
		if !ok {
			return nil, false
		}
		v, changed := fn(f)
		if changed {
			if out == nil {
				out = append(make([]byte, 0, len(b)+16), b[:start]...)
			}
			out = protowire.AppendTag(out, f.num, protowire.BytesType)
			out = protowire.AppendBytes(out, v)
		} else if out != nil {
			out = append(out, rest[:len(rest)-len(next)]...)
		}
		rest = next
	}
	return out, out != nil
}
