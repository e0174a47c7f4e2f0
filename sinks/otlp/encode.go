package otlp

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"slices"
	"sort"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/skiff-dev/skiff/internal/otlpwire"
	"github.com/skiff-dev/skiff/internal/record"
)

// Attribute names (OpenTelemetry semantic conventions, and skiff's own
// under skiff.* where the conventions have none). docs/OTLP.md has the
// whole mapping.
const (
	attrPodName      = "k8s.pod.name"
	attrNamespace    = "k8s.namespace.name"
	attrPodUID       = "k8s.pod.uid"
	attrNodeName     = "k8s.node.name"
	attrFilePath     = "log.file.path"
	attrFileName     = "log.file.name"
	attrRecordUID    = "log.record.uid"
	attrPartial      = "skiff.partial"
	attrOffset       = "skiff.offset"
	attrMessageBytes = "skiff.message_bytes"
)

// attr is one string attribute.
type attr struct{ key, value string }

// mapping is what encoding needs from the configuration, built once per
// sink and read-only afterwards.
type mapping struct {
	ids *record.Encoder
	// resAttrs are the resource attributes of the records skiff made
	// itself (tailed lines, ingested JSON and text): the pod identity,
	// then SKIFF_FIELDS sorted by key, a field replacing a pod attribute
	// of the same name. resource is their Resource message.
	resAttrs []attr
	resource []byte
	// sevKey is the member of a JSON body holding the level (nil: none).
	sevKey  []byte
	numbers numberScheme
}

func newMapping(ids *record.Encoder, sevField string, numbers numberScheme) *mapping {
	m := &mapping{ids: ids, numbers: numbers}
	if sevField != "" {
		m.sevKey = []byte(sevField)
	}
	fields := ids.Fields()
	k := ids.Kubernetes()
	for _, a := range []attr{{attrPodName, k.Pod}, {attrNamespace, k.Namespace}, {attrPodUID, k.PodUID}, {attrNodeName, k.Node}} {
		if _, ok := fields[a.key]; a.value != "" && !ok {
			m.resAttrs = append(m.resAttrs, a)
		}
	}
	keys := make([]string, 0, len(fields))
	for key := range fields {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		m.resAttrs = append(m.resAttrs, attr{key, fields[key]})
	}
	for _, a := range m.resAttrs {
		m.resource = appendStringKV(m.resource, otlpwire.ResourceAttributes, string(appendValidUTF8(nil, []byte(a.key))), appendValidUTF8(nil, []byte(a.value)))
	}
	return m
}

// rgroup is a resource group of a batch: the records of one resource.
type rgroup struct {
	rep  int32 // a record of the group; -1: the resource of skiff's own records
	hint int   // estimated encoded size
}

// sgroup is a scope group: the records of one scope of one resource.
type sgroup struct {
	rg   int32 // its rgroup
	rep  int32 // a record of the group; -1: skiff's own (no scope)
	n    int32 // records
	at   int32 // where its records start in batch.order
	hint int
}

// batch encodes one request. It keeps its buffers between requests (in
// the sink's pool), so that encoding allocates nothing per record once the
// buffers have grown to the batch size. A batch is used by one goroutine
// at a time.
type batch struct {
	m   *mapping
	buf []byte // the request body
	tmp []byte // scratch: a record ID, a string made valid UTF-8

	parts  []record.OTLPParts // per record of OriginOTLP
	group  []int32            // per record: its sgroup
	rgs    []rgroup
	sgs    []sgroup
	sorder []int32 // sgroups in request order (grouped by rgroup)
	order  []int32 // record indices, grouped
	rkeys  map[uint64]int32
	skeys  map[uint64]int32
	seed   maphash.Seed
}

func newBatch(m *mapping) *batch {
	return &batch{m: m, rkeys: map[uint64]int32{}, skeys: map[uint64]int32{}, seed: maphash.MakeSeed()}
}

// estimate is a record's likely encoded size, for the length prefixes.
func estimate(r *record.Record) int {
	return len(r.Message) + 2*len(r.Path) + len(r.OTLP) + 96
}

// groupRecords groups recs by resource and then scope, keeping the first
// appearance order of groups and the order of records within each. It
// reports false when every record is skiff's own (one group, in order).
func (e *batch) groupRecords(recs []record.Record) bool {
	otlp := false
	for i := range recs {
		if recs[i].Origin == record.OriginOTLP {
			otlp = true
			break
		}
	}
	if !otlp {
		return false
	}
	e.parts = slices.Grow(e.parts[:0], len(recs))[:len(recs)]
	e.group = slices.Grow(e.group[:0], len(recs))[:len(recs)]
	e.rgs, e.sgs = e.rgs[:0], e.sgs[:0]
	clear(e.rkeys)
	clear(e.skeys)
	own := int32(-1) // the sgroup of skiff's own records
	for i := range recs {
		r := &recs[i]
		p := &e.parts[i]
		*p = record.OTLPParts{}
		if r.Origin == record.OriginOTLP {
			_ = p.Decode(r.OTLP) // bytes that do not decode go out as far as they were read
		}
		var sg int32
		if r.Origin != record.OriginOTLP {
			if own < 0 {
				e.rgs = append(e.rgs, rgroup{rep: -1})
				e.sgs = append(e.sgs, sgroup{rg: int32(len(e.rgs) - 1), rep: -1})
				own = int32(len(e.sgs) - 1)
			}
			sg = own
		} else {
			rg := e.findGroup(e.rkeys, len(e.rgs), e.hash2(-1, p.Resource, p.ResourceSchemaURL), func(g int32) bool {
				q := &e.parts[e.rgs[g].rep]
				return e.rgs[g].rep >= 0 && bytes.Equal(q.Resource, p.Resource) && bytes.Equal(q.ResourceSchemaURL, p.ResourceSchemaURL)
			})
			if rg == int32(len(e.rgs)) {
				e.rgs = append(e.rgs, rgroup{rep: int32(i)})
			}
			sg = e.findGroup(e.skeys, len(e.sgs), e.hash2(rg, p.Scope, p.ScopeSchemaURL), func(g int32) bool {
				s := &e.sgs[g]
				if s.rg != rg || s.rep < 0 {
					return false
				}
				q := &e.parts[s.rep]
				return bytes.Equal(q.Scope, p.Scope) && bytes.Equal(q.ScopeSchemaURL, p.ScopeSchemaURL)
			})
			if sg == int32(len(e.sgs)) {
				e.sgs = append(e.sgs, sgroup{rg: rg, rep: int32(i)})
			}
		}
		e.group[i] = sg
		e.sgs[sg].n++
		h := estimate(r)
		e.sgs[sg].hint += h
		e.rgs[e.sgs[sg].rg].hint += h
	}
	e.sorder = e.sorder[:0]
	for i := range e.sgs {
		e.sorder = append(e.sorder, int32(i))
	}
	slices.SortStableFunc(e.sorder, func(a, b int32) int { return int(e.sgs[a].rg - e.sgs[b].rg) })
	at := int32(0)
	for _, g := range e.sorder {
		e.sgs[g].at, at = at, at+e.sgs[g].n
		e.sgs[g].n = 0 // counts again while placing
	}
	e.order = slices.Grow(e.order[:0], len(recs))[:len(recs)]
	for i, g := range e.group {
		s := &e.sgs[g]
		e.order[s.at+s.n] = int32(i)
		s.n++
	}
	return true
}

// findGroup returns the group with key h that same confirms, or n (a new
// group, remembered under h unless another group holds h).
func (e *batch) findGroup(keys map[uint64]int32, n int, h uint64, same func(int32) bool) int32 {
	if g, ok := keys[h]; ok {
		if same(g) {
			return g
		}
		for g := range int32(n) { // a hash collision: look at every group
			if same(g) {
				return g
			}
		}
		return int32(n)
	}
	keys[h] = int32(n)
	return int32(n)
}

func (e *batch) hash2(rg int32, a, b []byte) uint64 {
	var h maphash.Hash
	h.SetSeed(e.seed)
	h.WriteByte(byte(rg))
	h.WriteByte(byte(rg >> 8))
	h.WriteByte(byte(rg >> 16))
	h.WriteByte(byte(rg >> 24))
	h.Write(a)
	h.WriteByte(0xff)
	h.Write(b)
	return h.Sum64()
}

// encodeProto renders recs as an ExportLogsServiceRequest in e.buf.
func (e *batch) encodeProto(recs []record.Record) []byte {
	b := e.buf[:0]
	if !e.groupRecords(recs) {
		hint := len(e.m.resource)
		for i := range recs {
			hint += estimate(&recs[i])
		}
		b, rl := openField(b, otlpwire.RequestResourceLogs, hint)
		if len(e.m.resource) > 0 {
			b = appendBytesField(b, otlpwire.ResourceLogsResource, e.m.resource)
		}
		b, sl := openField(b, otlpwire.ResourceLogsScopeLogs, hint)
		for i := range recs {
			b = e.appendLogRecord(b, &recs[i])
		}
		b = closeField(b, sl, hint)
		e.buf = closeField(b, rl, hint)
		return e.buf
	}
	for k := 0; k < len(e.sorder); {
		rg := &e.rgs[e.sgs[e.sorder[k]].rg]
		var rl int
		b, rl = openField(b, otlpwire.RequestResourceLogs, rg.hint)
		var res, resURL []byte
		if rg.rep < 0 {
			res = e.m.resource
		} else {
			res, resURL = e.parts[rg.rep].Resource, e.parts[rg.rep].ResourceSchemaURL
		}
		if len(res) > 0 {
			b = appendBytesField(b, otlpwire.ResourceLogsResource, res)
		}
		for first := e.sgs[e.sorder[k]].rg; k < len(e.sorder) && e.sgs[e.sorder[k]].rg == first; k++ {
			sg := &e.sgs[e.sorder[k]]
			var sl int
			b, sl = openField(b, otlpwire.ResourceLogsScopeLogs, sg.hint)
			var p *record.OTLPParts
			if sg.rep >= 0 {
				p = &e.parts[sg.rep]
				if len(p.Scope) > 0 {
					b = appendBytesField(b, otlpwire.ScopeLogsScope, p.Scope)
				}
			}
			for _, i := range e.order[sg.at : sg.at+sg.n] {
				if recs[i].Origin == record.OriginOTLP {
					b = appendPassThrough(b, &recs[i], &e.parts[i])
				} else {
					b = e.appendLogRecord(b, &recs[i])
				}
			}
			if p != nil && len(p.ScopeSchemaURL) > 0 {
				b = appendBytesField(b, otlpwire.ScopeLogsSchemaURL, p.ScopeSchemaURL)
			}
			b = closeField(b, sl, sg.hint)
		}
		if len(resURL) > 0 {
			b = appendBytesField(b, otlpwire.ResourceLogsSchemaURL, resURL)
		}
		b = closeField(b, rl, rg.hint)
	}
	e.buf = b
	return b
}

// appendPassThrough appends the log record of an OTLP record as it was
// received.
func appendPassThrough(b []byte, r *record.Record, p *record.OTLPParts) []byte {
	hint := len(p.Log) + len(r.Message) + len(p.Body) + 8
	b, lr := openField(b, otlpwire.ScopeLogsLogRecords, hint)
	b = p.AppendLogRecord(b, r.Message)
	return closeField(b, lr, hint)
}

// appendLogRecord appends the LogRecord of one of skiff's own records
// (docs/OTLP.md, "Mapping").
func (e *batch) appendLogRecord(b []byte, r *record.Record) []byte {
	hint := estimate(r)
	b, lr := openField(b, otlpwire.ScopeLogsLogRecords, hint)
	if !r.EventTime.IsZero() {
		b = append(b, byte(otlpwire.LogTime)<<3|byte(protowire.Fixed64Type))
		b = binary.LittleEndian.AppendUint64(b, uint64(r.EventTime.UnixNano()))
	}
	b = append(b, byte(otlpwire.LogObservedTime)<<3|byte(protowire.Fixed64Type))
	b = binary.LittleEndian.AppendUint64(b, uint64(r.Collected.UnixNano()))

	valid := utf8.Valid(r.Message)
	var j jsonBody
	body := false
	if r.Flags&record.FlagJSON != 0 {
		j = jsonBody{sevKey: e.m.sevKey, checkUTF8: !valid}
		mark := len(b)
		nb, bs := openField(b, otlpwire.LogBody, len(r.Message))
		nb, rest, ok := j.appendValue(nb, r.Message, 0)
		if ok && len(skipWS(rest)) == 0 {
			b, body = closeField(nb, bs, len(r.Message)), true
		} else {
			b, j = nb[:mark], jsonBody{} // not JSON after all: the line as a string
		}
	}
	if !body {
		msg := r.Message
		if !valid {
			e.tmp = appendValidUTF8(e.tmp[:0], msg)
			msg = e.tmp
		}
		b = append(b, tag(otlpwire.LogBody))
		b = appendVarint(b, uint64(1+protowire.SizeBytes(len(msg))))
		b = appendBytesField(b, otlpwire.AnyString, msg)
	}

	if len(r.Path) > 0 {
		path := r.Path
		if !utf8.Valid(path) {
			e.tmp = appendValidUTF8(e.tmp[:0], path)
			path = e.tmp
		}
		b = appendStringAttr(b, kvFilePath, path)
		name := path
		if i := bytes.LastIndexByte(name, '/'); i >= 0 && i < len(name)-1 {
			name = name[i+1:]
		}
		b = appendStringAttr(b, kvFileName, name)
	}
	e.tmp = e.m.ids.AppendID(e.tmp[:0], r) // the instance, hex digits and digits: valid UTF-8
	b = appendStringAttr(b, kvRecordUID, e.tmp)
	if r.Flags&record.FlagPartial != 0 {
		b = appendVarintKV(b, otlpwire.LogAttributes, attrPartial, otlpwire.AnyBool, 1)
		b = appendVarintKV(b, otlpwire.LogAttributes, attrOffset, otlpwire.AnyInt, uint64(r.Offset))
	}
	if !valid && !body {
		b = appendBytesKV(b, otlpwire.LogAttributes, attrMessageBytes, r.Message)
	}

	if j.sev != nil {
		text := j.sev
		if j.sevStr && (bytes.IndexByte(text, '\\') >= 0 || !utf8.Valid(text)) {
			e.tmp = appendUnescaped(e.tmp[:0], text)
			text = e.tmp
		}
		if n := severityNumber(text, e.m.numbers); n > 0 {
			b = append(b, byte(otlpwire.LogSeverityNumber)<<3)
			b = appendVarint(b, uint64(n))
		}
		b = appendBytesField(b, otlpwire.LogSeverityText, text)
	}
	return closeField(b, lr, hint)
}
