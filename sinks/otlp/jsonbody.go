package otlp

import (
	"bytes"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/skiff-dev/skiff/internal/otlpwire"
)

// maxDepth bounds the nesting converted to AnyValues; a value nested
// deeper is shipped as its JSON text (a string_value), so a hostile line
// cannot make the encoder recurse without end.
const maxDepth = 64

// nestedHint is the length guessed for a nested message whose size is not
// known before it is written (one varint byte: most keys and values are
// short); a longer one costs a move of its content.
const nestedHint = 100

// jsonBody converts a JSON object (a record with FlagJSON) into an
// opentelemetry.proto.common.v1.AnyValue holding a kvlist_value, the body
// of its log record, and picks up the severity member on the way. It
// holds no memory of its own: one is made per record, on the stack.
type jsonBody struct {
	// sevKey is the top-level member holding the level; nil: none.
	sevKey []byte
	// checkUTF8: the input may hold invalid UTF-8 (replaced by U+FFFD).
	checkUTF8 bool

	// sev is the raw severity value found: a string's content (sevStr)
	// or a number's text; nil when the member is absent or of another
	// type.
	sev    []byte
	sevStr bool
}

// appendObject appends the content of an AnyValue holding the JSON value
// at the start of src (after white space) and returns the rest of src. It
// reports false for input that is not JSON; b may then hold a part of the
// value, and the caller truncates it.
func (j *jsonBody) appendValue(b, src []byte, depth int) ([]byte, []byte, bool) {
	src = skipWS(src)
	if len(src) == 0 {
		return b, src, false
	}
	if depth >= maxDepth && (src[0] == '{' || src[0] == '[') {
		rest, ok := skipValue(src, 0)
		if !ok {
			return b, src, false
		}
		raw := src[:len(src)-len(rest)]
		if j.checkUTF8 && !utf8.Valid(raw) {
			b, start := openField(b, otlpwire.AnyString, len(raw))
			return closeField(appendValidUTF8(b, raw), start, len(raw)), rest, true
		}
		return appendBytesField(b, otlpwire.AnyString, raw), rest, true
	}
	switch c := src[0]; {
	case c == '{':
		return j.appendObject(b, src, depth)
	case c == '[':
		b, start := openField(b, otlpwire.AnyArray, nestedHint)
		src = skipWS(src[1:])
		if len(src) > 0 && src[0] == ']' {
			return closeField(b, start, nestedHint), src[1:], true
		}
		for {
			var vs int
			b, vs = openField(b, otlpwire.ListValues, nestedHint)
			var ok bool
			if b, src, ok = j.appendValue(b, src, depth+1); !ok {
				return b, src, false
			}
			b = closeField(b, vs, nestedHint)
			src = skipWS(src)
			if len(src) == 0 {
				return b, src, false
			}
			if src[0] == ']' {
				return closeField(b, start, nestedHint), src[1:], true
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
		return j.appendString(b, otlpwire.AnyString, raw), rest, true
	case c == 't' && bytes.HasPrefix(src, []byte("true")):
		b = append(b, byte(otlpwire.AnyBool)<<3)
		return appendVarint(b, 1), src[4:], true
	case c == 'f' && bytes.HasPrefix(src, []byte("false")):
		b = append(b, byte(otlpwire.AnyBool)<<3)
		return appendVarint(b, 0), src[5:], true
	case c == 'n' && bytes.HasPrefix(src, []byte("null")):
		return b, src[4:], true // an AnyValue with no value is null
	case c == '-' || (c >= '0' && c <= '9'):
		raw, rest := numberToken(src)
		if i, ok := parseInt(raw); ok {
			b = append(b, byte(otlpwire.AnyInt)<<3)
			return appendVarint(b, uint64(i)), rest, true
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil && !math.IsInf(f, 0) { // out of range parses to ±Inf: keep it
			return b, src, false
		}
		b = protowire.AppendTag(b, otlpwire.AnyDouble, protowire.Fixed64Type)
		return protowire.AppendFixed64(b, math.Float64bits(f)), rest, true
	}
	return b, src, false
}

// appendObject appends a kvlist_value for the object at src[0] == '{'.
func (j *jsonBody) appendObject(b, src []byte, depth int) ([]byte, []byte, bool) {
	hint := nestedHint
	if depth == 0 {
		hint = len(src) // the whole record: its length is a close guess
	}
	b, start := openField(b, otlpwire.AnyKvlist, hint)
	src = skipWS(src[1:])
	if len(src) > 0 && src[0] == '}' {
		return closeField(b, start, hint), src[1:], true
	}
	for {
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
		var kv, vs int
		b, kv = openField(b, otlpwire.ListValues, nestedHint)
		b = j.appendString(b, otlpwire.KeyValueKey, key)
		b, vs = openField(b, otlpwire.KeyValueValue, nestedHint)
		if depth == 0 && j.sevKey != nil && bytes.Equal(key, j.sevKey) && len(src) > 0 {
			j.noteSeverity(src)
		}
		if b, src, ok = j.appendValue(b, src, depth+1); !ok {
			return b, src, false
		}
		b = closeField(b, vs, nestedHint)
		b = closeField(b, kv, nestedHint)
		src = skipWS(src)
		if len(src) == 0 {
			return b, src, false
		}
		if src[0] == '}' {
			return closeField(b, start, hint), src[1:], true
		}
		if src[0] != ',' {
			return b, src, false
		}
		src = skipWS(src[1:])
	}
}

// noteSeverity keeps the severity member's value when it is a string or a
// number.
func (j *jsonBody) noteSeverity(src []byte) {
	switch c := src[0]; {
	case c == '"':
		if raw, _, ok := stringToken(src); ok {
			j.sev, j.sevStr = raw, true
		}
	case c == '-' || (c >= '0' && c <= '9'):
		j.sev, _ = numberToken(src)
		j.sevStr = false
	}
}

// appendString appends string field num holding the JSON string whose raw
// content (between the quotes) is raw.
func (j *jsonBody) appendString(b []byte, num protowire.Number, raw []byte) []byte {
	if bytes.IndexByte(raw, '\\') < 0 && (!j.checkUTF8 || utf8.Valid(raw)) {
		return appendBytesField(b, num, raw)
	}
	b, start := openField(b, num, len(raw))
	b = appendUnescaped(b, raw)
	return closeField(b, start, len(raw))
}

// stringToken splits the JSON string at src[0] == '"' into its raw
// content and the rest after the closing quote.
func stringToken(src []byte) (raw, rest []byte, ok bool) {
	s := src[1:]
	if q := bytes.IndexByte(s, '"'); q >= 0 && bytes.IndexByte(s[:q], '\\') < 0 {
		return s[:q], s[q+1:], true
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return s[:i], s[i+1:], true
		}
	}
	return nil, src, false
}

// numberToken splits the JSON number at the start of src.
func numberToken(src []byte) (raw, rest []byte) {
	i := 0
	for i < len(src) {
		c := src[i]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			i++
			continue
		}
		break
	}
	return src[:i], src[i:]
}

// parseInt parses an integer JSON number that fits an int64; numbers
// with a fraction or an exponent, and larger ones, are not integers here
// (they become a double_value).
func parseInt(raw []byte) (int64, bool) {
	neg := len(raw) > 0 && raw[0] == '-'
	d := raw
	if neg {
		d = raw[1:]
	}
	if len(d) == 0 || len(d) > 19 {
		return 0, false
	}
	var u uint64
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	switch {
	case neg && u <= 1<<63:
		return -int64(u-1) - 1, true
	case !neg && u < 1<<63:
		return int64(u), true
	}
	return 0, false
}

// appendUnescaped appends the JSON string content raw with its escapes
// decoded; invalid UTF-8 and unpaired surrogates become U+FFFD, as
// encoding/json decodes them.
func appendUnescaped(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && n == 1 {
				dst = append(dst, "\uFFFD"...)
			} else {
				dst = append(dst, raw[i:i+n]...)
			}
			i += n
			continue
		}
		if c != '\\' || i+1 >= len(raw) {
			dst = append(dst, c)
			i++
			continue
		}
		e := raw[i+1]
		i += 2
		switch e {
		case 'n':
			dst = append(dst, '\n')
		case 't':
			dst = append(dst, '\t')
		case 'r':
			dst = append(dst, '\r')
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'u':
			r, ok := hex4(raw[i:])
			if !ok {
				dst = append(dst, "\uFFFD"...)
				continue
			}
			i += 4
			if utf16.IsSurrogate(r) {
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					if r2, ok := hex4(raw[i+2:]); ok {
						if full := utf16.DecodeRune(r, r2); full != utf8.RuneError {
							dst = utf8.AppendRune(dst, full)
							i += 6
							continue
						}
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, e)
		}
	}
	return dst
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

func skipWS(src []byte) []byte {
	for len(src) > 0 && (src[0] == ' ' || src[0] == '\t' || src[0] == '\n' || src[0] == '\r') {
		src = src[1:]
	}
	return src
}

// skipValue returns what follows the JSON value at the start of src.
func skipValue(src []byte, depth int) ([]byte, bool) {
	src = skipWS(src)
	if len(src) == 0 || depth > 10000 {
		return src, false
	}
	switch c := src[0]; c {
	case '"':
		_, rest, ok := stringToken(src)
		return rest, ok
	case '{', '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		src = skipWS(src[1:])
		if len(src) > 0 && src[0] == end {
			return src[1:], true
		}
		for {
			if c == '{' {
				var ok bool
				if len(src) == 0 || src[0] != '"' {
					return src, false
				}
				if _, src, ok = stringToken(src); !ok {
					return src, false
				}
				if src = skipWS(src); len(src) == 0 || src[0] != ':' {
					return src, false
				}
				src = src[1:]
			}
			var ok bool
			if src, ok = skipValue(src, depth+1); !ok {
				return src, false
			}
			src = skipWS(src)
			if len(src) == 0 {
				return src, false
			}
			if src[0] == end {
				return src[1:], true
			}
			if src[0] != ',' {
				return src, false
			}
			src = skipWS(src[1:])
		}
	}
	for _, lit := range [...]string{"true", "false", "null"} {
		if bytes.HasPrefix(src, []byte(lit)) {
			return src[len(lit):], true
		}
	}
	if raw, rest := numberToken(src); len(raw) > 0 {
		return rest, true
	}
	return src, false
}
