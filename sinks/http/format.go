package http

import (
	"encoding/json"
	"path"
	"strconv"

	"github.com/skiff-dev/skiff/internal/config"
	"github.com/skiff-dev/skiff/internal/record"
)

// bodyFormat renders a batch as one request body.
type bodyFormat interface {
	contentType() string
	encode(dst []byte, recs []record.Record) []byte
}

func newBodyFormat(cfg *config.HTTP, enc *record.Encoder) (bodyFormat, error) {
	switch cfg.Format {
	case config.FormatJSON:
		return jsonFormat{enc}, nil
	case config.FormatLoki:
		return newLokiFormat(cfg, enc)
	case config.FormatElasticsearch:
		return esFormat{enc: enc, action: []byte(`{"create":{"_index":` + string(record.AppendString(nil, []byte(cfg.ESIndex))) + `,"_id":`)}, nil
	}
	return ndjsonFormat{enc}, nil
}

// ndjsonFormat is one skiff JSON record per line.
type ndjsonFormat struct{ enc *record.Encoder }

func (ndjsonFormat) contentType() string { return "application/x-ndjson" }

func (f ndjsonFormat) encode(dst []byte, recs []record.Record) []byte {
	var c record.FileParts
	return f.encodeWith(dst, recs, &c)
}

func (f ndjsonFormat) encodeWith(dst []byte, recs []record.Record, c *record.FileParts) []byte {
	for i := range recs {
		dst = f.enc.AppendJSONWith(dst, &recs[i], c)
		dst = append(dst, '\n')
	}
	return dst
}

// jsonFormat is one JSON array of records per request.
type jsonFormat struct{ enc *record.Encoder }

func (jsonFormat) contentType() string { return "application/json" }

func (f jsonFormat) encode(dst []byte, recs []record.Record) []byte {
	dst = append(dst, '[')
	for i := range recs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = f.enc.AppendJSON(dst, &recs[i])
	}
	return append(dst, ']')
}

// esFormat is the Elasticsearch _bulk API: a create action with the
// record ID as _id (so that a retried record is refused as a duplicate,
// 409, instead of indexed twice) followed by the record.
type esFormat struct {
	enc    *record.Encoder
	action []byte // `{"create":{"_index":"…","_id":`
}

func (esFormat) contentType() string { return "application/x-ndjson" }

func (f esFormat) encode(dst []byte, recs []record.Record) []byte {
	var c record.FileParts
	return f.encodeWith(dst, recs, &c)
}

func (f esFormat) encodeWith(dst []byte, recs []record.Record, c *record.FileParts) []byte {
	for i := range recs {
		dst = append(dst, f.action...)
		dst = append(dst, '"')
		dst = f.enc.AppendIDWith(dst, &recs[i], c) // instance, hex and digits: nothing to escape
		dst = append(dst, "\"}}\n"...)
		dst = f.enc.AppendJSONWith(dst, &recs[i], c)
		dst = append(dst, '\n')
	}
	return dst
}

// esBulkResponse is the part of a _bulk response skiff reads. Items are in
// request order, one per action.
type esBulkResponse struct {
	Errors bool                    `json:"errors"`
	Items  []map[string]esBulkItem `json:"items"`
}

type esBulkItem struct {
	Status int `json:"status"`
	Error  struct {
		Type   string `json:"type"`
		Reason string `json:"reason"`
	} `json:"error"`
}

// lokiFormat is the Loki push API in JSON:
//
//	{"streams":[{"stream":{"label":"value",…},"values":[["<unix ns>","<line>"],…]},…]}
//
// Records are grouped into streams by their label values; only labels
// from the path vary between records, the others are the same for all.
type lokiFormat struct {
	enc     *record.Encoder
	json    bool     // the line is skiff's JSON record, not the message
	static  []byte   // `"a":"b","c":"d"` of the labels that never vary
	dynamic []string // label names taken from the path, in order
	sources []string // "path" or "filename", parallel to dynamic
}

func newLokiFormat(cfg *config.HTTP, enc *record.Encoder) (*lokiFormat, error) {
	f := &lokiFormat{enc: enc, json: cfg.LokiLine == "json"}
	kube, fields := encoderStatics(enc)
	for _, l := range cfg.LokiLabels {
		name, src, err := config.ParseLokiLabel(l)
		if err != nil {
			return nil, err
		}
		var v string
		switch {
		case src == "path" || src == "filename":
			f.dynamic = append(f.dynamic, name)
			f.sources = append(f.sources, src)
			continue
		case len(src) > 7 && src[:7] == "static:":
			v = src[7:]
		case len(src) > 11 && src[:11] == "kubernetes.":
			v = kube[src[11:]]
		case len(src) > 7 && src[:7] == "fields.":
			v = fields[src[7:]]
		}
		if v == "" {
			continue // Loki drops empty labels anyway
		}
		if len(f.static) > 0 {
			f.static = append(f.static, ',')
		}
		f.static = record.AppendString(f.static, []byte(name))
		f.static = append(f.static, ':')
		f.static = record.AppendString(f.static, []byte(v))
	}
	if len(f.static) == 0 && len(f.dynamic) == 0 {
		f.static = []byte(`"job":"skiff"`) // a stream needs at least one label
	}
	return f, nil
}

// encoderStatics recovers the pod identity and static fields an Encoder
// adds to every record, by rendering an empty record.
func encoderStatics(enc *record.Encoder) (kube, fields map[string]string) {
	var v struct {
		Kubernetes map[string]string `json:"kubernetes"`
		Fields     map[string]string `json:"fields"`
	}
	_ = json.Unmarshal(enc.AppendJSON(nil, &record.Record{}), &v) // our own encoder's output always parses
	return v.Kubernetes, v.Fields
}

func (*lokiFormat) contentType() string { return "application/json" }

func (f *lokiFormat) encode(dst []byte, recs []record.Record) []byte {
	dst = append(dst, `{"streams":[`...)
	if len(f.dynamic) == 0 {
		dst = f.stream(dst, nil, recs, nil)
		return append(dst, "]}"...)
	}
	// Group by path, keeping first-seen order of streams and record order
	// within each.
	var order []string
	groups := map[string][]int{}
	for i := range recs {
		p := string(recs[i].Path)
		if _, ok := groups[p]; !ok {
			order = append(order, p)
		}
		groups[p] = append(groups[p], i)
	}
	for n, p := range order {
		if n > 0 {
			dst = append(dst, ',')
		}
		dst = f.stream(dst, []byte(p), recs, groups[p])
	}
	return append(dst, "]}"...)
}

// stream appends one stream holding recs[idx] (all of recs when idx is
// nil), labelled from path.
func (f *lokiFormat) stream(dst, path_ []byte, recs []record.Record, idx []int) []byte {
	dst = append(dst, `{"stream":{`...)
	dst = append(dst, f.static...)
	for i, name := range f.dynamic {
		v := path_
		if f.sources[i] == "filename" && len(path_) > 0 { // records of the ingest endpoints have no path
			v = []byte(path.Base(string(path_)))
		}
		if len(v) == 0 {
			continue
		}
		if len(dst) > 0 && dst[len(dst)-1] != '{' {
			dst = append(dst, ',')
		}
		dst = record.AppendString(dst, []byte(name))
		dst = append(dst, ':')
		dst = record.AppendString(dst, v)
	}
	dst = append(dst, `},"values":[`...)
	n := len(recs)
	if idx != nil {
		n = len(idx)
	}
	for k := 0; k < n; k++ {
		i := k
		if idx != nil {
			i = idx[k]
		}
		if k > 0 {
			dst = append(dst, ',')
		}
		r := &recs[i]
		dst = append(dst, `["`...)
		dst = strconv.AppendInt(dst, r.Time().UnixNano(), 10)
		dst = append(dst, `",`...)
		if f.json {
			dst = record.AppendString(dst, f.enc.AppendJSON(nil, r))
		} else {
			dst = record.AppendString(dst, r.Message)
		}
		dst = append(dst, ']')
	}
	return append(dst, "]}"...)
}
