package record

import (
	"encoding/binary"
	"encoding/json"
	"maps"
	"sort"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Kubernetes is the pod identity that the Downward API gives a sidecar.
type Kubernetes struct {
	Pod       string `json:"pod,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	PodUID    string `json:"pod_uid,omitempty"`
	Node      string `json:"node,omitempty"`
}

func (k Kubernetes) empty() bool { return k == Kubernetes{} }

// Encoder renders records as skiff's JSON form:
//
//	{"id":…,"time":…,"path":…,"offset":…,"message":…,"kubernetes":{…},"fields":{…}}
//
// The parts that are the same for every record are rendered once by
// NewEncoder. An Encoder is safe for concurrent use.
type Encoder struct {
	instance string // prefix of every record ID
	tail     []byte // `,"kubernetes":…,"fields":…}` pre-rendered
	kube     Kubernetes
	fields   map[string]string // a copy of NewEncoder's
}

// NewEncoder returns an Encoder for records of one skiff instance. instance
// makes IDs unique across pods (the pod UID, or the random instance ID kept
// in the data dir); kube and fields are added to every record.
func NewEncoder(instance string, kube Kubernetes, fields map[string]string) *Encoder {
	e := &Encoder{instance: instance, kube: kube, fields: maps.Clone(fields)}
	if !kube.empty() {
		b, _ := json.Marshal(kube) // a struct of strings cannot fail
		e.tail = append(e.tail, `,"kubernetes":`...)
		e.tail = append(e.tail, b...)
	}
	if len(fields) > 0 {
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		e.tail = append(e.tail, `,"fields":{`...)
		for i, k := range keys {
			if i > 0 {
				e.tail = append(e.tail, ',')
			}
			e.tail, _ = appendString(e.tail, []byte(k))
			e.tail = append(e.tail, ':')
			e.tail, _ = appendString(e.tail, []byte(fields[k]))
		}
		e.tail = append(e.tail, '}')
	}
	e.tail = append(e.tail, '}')
	return e
}

// Kubernetes returns the pod identity the Encoder adds to every record
// (for sinks that render it in their own form, such as OTLP resource
// attributes).
func (e *Encoder) Kubernetes() Kubernetes { return e.kube }

// Fields returns a copy of the static fields the Encoder adds to every
// record.
func (e *Encoder) Fields() map[string]string { return maps.Clone(e.fields) }

// AppendID appends r's stable ID: the same every time this line is
// delivered, and distinct across instances, files and offsets.
func (e *Encoder) AppendID(dst []byte, r *Record) []byte {
	dst = append(dst, e.instance...)
	dst = append(dst, '-')
	dst = appendHex16(dst, r.Source)
	dst = append(dst, '-')
	return strconv.AppendInt(dst, r.Offset, 10)
}

// ID returns r's stable ID as a string.
func (e *Encoder) ID(r *Record) string { return string(e.AppendID(nil, r)) }

// AppendJSON appends r's JSON form (without a trailing newline) to dst.
// It allocates only when dst has no room.
//
// A tailed record has "path" and "offset"; a record of the ingest endpoints
// has "source" (its Origin) instead, and an OTLP record the members of its
// log record (README's "Record format" lists them).
func (e *Encoder) AppendJSON(dst []byte, r *Record) []byte {
	dst = append(dst, `{"id":"`...)
	dst = e.AppendID(dst, r)
	dst = append(dst, `","time":"`...)
	dst = AppendTime(dst, r.Time())
	if r.Origin != OriginFile {
		dst = append(dst, `","source":"`...)
		dst = append(dst, r.Origin.String()...)
		dst = append(dst, '"')
		if r.Origin == OriginOTLP {
			dst = appendOTLPJSON(dst, r)
		} else {
			dst = appendBody(dst, r)
		}
		return append(dst, e.tail...)
	}
	dst = append(dst, `","path":`...)
	dst, _ = appendString(dst, r.Path)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendInt(dst, r.Offset, 10)
	dst = appendBody(dst, r)
	return append(dst, e.tail...)
}

// appendBody appends the message (or JSON object) and the partial flag.
func appendBody(dst []byte, r *Record) []byte {
	if r.Flags&FlagJSON != 0 {
		dst = append(dst, `,"json":`...)
		dst = append(dst, r.Message...)
	} else {
		dst = appendMessage(dst, r.Message)
	}
	if r.Flags&FlagPartial != 0 {
		dst = append(dst, `,"partial":true`...)
	}
	if r.Flags&FlagRedacted != 0 {
		dst = append(dst, `,"redacted":true`...)
	}
	return dst
}

// AppendTime appends t in UTC as RFC 3339 with all nine fractional digits
// (2006-01-02T15:04:05.000000000Z), so that records sort as strings and the
// precision is visible. It is hand-written, and the date part is cached
// per second, because formatting the time was a tenth of the cost of
// encoding a record.
func AppendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	sec := t.Unix()
	c := timeCache.Load()
	if c == nil || c.sec != sec {
		if year := t.Year(); year < 0 || year > 9999 {
			return t.AppendFormat(dst, "2006-01-02T15:04:05.000000000Z07:00")
		}
		c = &secondPrefix{sec: sec}
		appendPrefix(c.prefix[:0], t)
		timeCache.Store(c)
	}
	dst = append(dst, c.prefix[:]...)
	dst = appendDigits(dst, t.Nanosecond(), 9)
	return append(dst, 'Z')
}

// appendTimeUncached is AppendTime without the cache, for a second time
// in a record (an OTLP observed time) that would otherwise evict the
// prefix every record shares.
func appendTimeUncached(dst []byte, t time.Time) []byte {
	t = t.UTC()
	if year := t.Year(); year < 0 || year > 9999 {
		return t.AppendFormat(dst, "2006-01-02T15:04:05.000000000Z07:00")
	}
	dst = appendPrefix(dst, t)
	dst = appendDigits(dst, t.Nanosecond(), 9)
	return append(dst, 'Z')
}

// appendPrefix appends "2006-01-02T15:04:05." for t, a UTC time.
func appendPrefix(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	hour, min, s := t.Clock()
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, min, 2)
	b = append(b, ':')
	b = appendDigits(b, s, 2)
	return append(b, '.')
}

// secondPrefix is "2006-01-02T15:04:05." for one second.
type secondPrefix struct {
	sec    int64
	prefix [20]byte
}

// timeCache holds the prefix of the second most recently formatted: records
// collected together share it.
var timeCache atomic.Pointer[secondPrefix]

// appendDigits appends v zero-padded to width digits.
func appendDigits(dst []byte, v, width int) []byte {
	var buf [9]byte
	for i := width - 1; i >= 0; i-- {
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, buf[:width]...)
}

func appendHex16(dst []byte, v uint64) []byte {
	const digits = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		dst = append(dst, digits[(v>>uint(shift))&0xf])
	}
	return dst
}

// AppendString appends s as a JSON string (with quotes); invalid UTF-8
// becomes U+FFFD. Sinks use it for the JSON they build around records.
func AppendString(dst, s []byte) []byte {
	dst, _ = appendString(dst, s)
	return dst
}

// appendString appends s as a JSON string and reports whether s was valid
// UTF-8. Invalid UTF-8 becomes U+FFFD (the exact bytes travel in
// message_base64). Runs of plain ASCII are found eight bytes at a time:
// this loop is most of the cost of encoding a record.
func appendString(dst, s []byte) ([]byte, bool) {
	const hex = "0123456789abcdef"
	valid := true
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		for i+8 <= len(s) && plain8(binary.LittleEndian.Uint64(s[i:])) {
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			valid = false
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\ufffd"...)
			i++
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but break JavaScript consumers.
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"'), valid
}

// plain8 reports whether none of the eight bytes in x needs escaping or
// UTF-8 decoding: each is in 0x20..0x7f and is neither '"' nor '\\'.
func plain8(x uint64) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	hasLess := (x - lo*0x20) & ^x & hi
	quote := x ^ (lo * '"')
	bslash := x ^ (lo * '\\')
	hasQuote := (quote - lo) & ^quote & hi
	hasBslash := (bslash - lo) & ^bslash & hi
	return (x&hi)|hasLess|hasQuote|hasBslash == 0
}

// FileParts caches the parts of a tailed record's JSON form that depend
// only on its file (the instance, the source and the path), rendered once
// for consecutive records of one file instead of for every record:
//
//	{"id":"<instance>-<source>-  …offset…  ","time":"…  ","path":"…","offset":
//
// The zero value is ready; a FileParts belongs to one goroutine and one
// Encoder. Records of another origin, or with a path longer than it holds,
// are rendered as AppendJSON renders them.
type FileParts struct {
	source uint64
	ok     bool
	nPath  int // bytes of the path in raw
	nID    int // bytes of id
	nAt    int // bytes of at
	raw    [maxCachedPath]byte
	id     [24 + maxCachedInstance]byte // `{"id":"<instance>-<source>-`
	at     [24 + 6*maxCachedPath]byte   // `","path":"…","offset":`, the path escaped
}

const (
	maxCachedPath     = 256
	maxCachedInstance = 64
)

// AppendJSONWith is AppendJSON, with the file's parts from c (renewed
// when r is of another file than the record before).
func (e *Encoder) AppendJSONWith(dst []byte, r *Record, c *FileParts) []byte {
	if r.Origin != OriginFile || !c.fit(e, r) {
		return e.AppendJSON(dst, r)
	}
	dst = append(dst, c.id[:c.nID]...)
	dst = strconv.AppendInt(dst, r.Offset, 10)
	dst = append(dst, `","time":"`...)
	dst = AppendTime(dst, r.Time())
	dst = append(dst, c.at[:c.nAt]...)
	dst = strconv.AppendInt(dst, r.Offset, 10)
	dst = appendBody(dst, r)
	return append(dst, e.tail...)
}

// fit makes c hold r's file's parts and reports whether they fit.
func (c *FileParts) fit(e *Encoder, r *Record) bool {
	if c.ok && c.source == r.Source && c.nPath == len(r.Path) && string(c.raw[:c.nPath]) == string(r.Path) {
		return true
	}
	c.ok = false
	if len(r.Path) > maxCachedPath || len(e.instance) > maxCachedInstance {
		return false
	}
	id := append(c.id[:0], `{"id":"`...)
	id = append(id, e.instance...)
	id = append(id, '-')
	id = appendHex16(id, r.Source)
	id = append(id, '-')
	at := append(c.at[:0], `","path":`...)
	at, _ = appendString(at, r.Path)
	at = append(at, `,"offset":`...)
	if len(id) > len(c.id) || len(at) > len(c.at) { // cannot happen: sized for the worst case
		return false
	}
	c.nID, c.nAt = copy(c.id[:], id), copy(c.at[:], at)
	c.nPath = copy(c.raw[:], r.Path)
	c.source, c.ok = r.Source, true
	return true
}

// AppendIDWith is AppendID with the instance and source from c, which
// AppendJSONWith filled for r (or renews).
func (e *Encoder) AppendIDWith(dst []byte, r *Record, c *FileParts) []byte {
	if r.Origin != OriginFile || !c.fit(e, r) {
		return e.AppendID(dst, r)
	}
	dst = append(dst, c.id[len(`{"id":"`):c.nID]...)
	return strconv.AppendInt(dst, r.Offset, 10)
}
