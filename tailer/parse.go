package tailer

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// jsonObject reports whether msg is one JSON object (surrounding white
// space allowed) that the encoder can embed as is, and returns it trimmed.
// The first-byte test keeps the cost for plain-text lines near zero.
func jsonObject(msg []byte) ([]byte, bool) {
	m := bytes.TrimSpace(msg)
	if len(m) < 2 || m[0] != '{' || m[len(m)-1] != '}' {
		return msg, false
	}
	if !json.Valid(m) || !utf8.Valid(m) {
		return msg, false
	}
	return m, true
}

// eventTime returns the time in field key of obj, a valid JSON object: an
// RFC 3339 string, or a number of seconds (or milliseconds, for values
// above 1e11) since the epoch. It returns the zero time when the field is
// absent or not a time.
func eventTime(obj []byte, key string) time.Time {
	v := topLevelField(obj, key)
	if len(v) == 0 {
		return time.Time{}
	}
	if v[0] == '"' {
		s := v[1 : len(v)-1]
		if bytes.IndexByte(s, '\\') >= 0 {
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339Nano, string(s))
		if err != nil {
			return time.Time{}
		}
		return t
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || f <= 0 || math.IsInf(f, 0) {
		return time.Time{}
	}
	if f > 1e11 {
		ms := math.Floor(f)
		return time.UnixMilli(int64(ms)).Add(time.Duration((f - ms) * 1e6))
	}
	sec := math.Floor(f)
	return time.Unix(int64(sec), int64((f-sec)*1e9))
}

// topLevelField returns the raw value of key in obj, a valid JSON object,
// or nil. Keys with escapes never match.
func topLevelField(obj []byte, key string) []byte {
	i := skipWS(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return nil
	}
	i++
	for {
		i = skipWS(obj, i)
		if i >= len(obj) || obj[i] != '"' {
			return nil
		}
		ke := skipString(obj, i)
		k := obj[i+1 : ke-1]
		i = skipWS(obj, ke)
		if i >= len(obj) || obj[i] != ':' {
			return nil
		}
		i = skipWS(obj, i+1)
		ve := skipValue(obj, i)
		if string(k) == key {
			return obj[i:ve]
		}
		i = skipWS(obj, ve)
		if i >= len(obj) || obj[i] != ',' {
			return nil
		}
		i++
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// skipValue returns the index after the value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = skipString(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
			j++
		}
		return j
	}
}
