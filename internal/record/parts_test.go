package record

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestAppendJSONWith: rendering with the file's parts cached gives the
// same bytes as AppendJSON (and AppendIDWith as AppendID) for records of
// many files, paths that need escaping, are invalid UTF-8 or too long to
// cache, records of the ingest endpoints, JSON, partial and event-time
// records, in an order that changes file often and not at all.
func TestAppendJSONWith(t *testing.T) {
	paths := [][]byte{
		[]byte("/var/log/app/app.log"), []byte(`/var/log/"quoted"\dir/a.log`), []byte("/var/log/\xff\xfebad.log"),
		[]byte("/var/log/ünïcode\u2028.log"), []byte("/" + strings.Repeat("long/", 60) + "x.log"), nil,
	}
	for _, enc := range []*Encoder{
		NewEncoder("0123456789abcdef", Kubernetes{Pod: "web-1", Namespace: "shop"}, map[string]string{"team": "pay"}),
		NewEncoder("", Kubernetes{}, nil),
		NewEncoder(strings.Repeat("i", 100), Kubernetes{}, nil), // an instance too long to cache
	} {
		rng := rand.New(rand.NewPCG(1, 2))
		var c FileParts
		for i := range 5000 {
			r := sample()
			p := rng.IntN(len(paths))
			if i%100 < 50 {
				p = 0 // long runs of one file
			}
			r.Path, r.Source, r.Offset = paths[p], uint64(p)*0x9e3779b97f4a7c15, rng.Int64N(1<<40)
			switch rng.IntN(8) {
			case 0:
				r.Origin, r.Path = OriginJSON, nil
			case 1:
				r.Flags, r.Message = FlagJSON, []byte(`{"a":1}`)
			case 2:
				r.Flags = FlagPartial
			case 3:
				r.EventTime = time.Unix(1700000000, int64(i))
			case 4:
				r.Source++ // same path, another file (rotated)
			}
			if got, want := enc.AppendJSONWith(nil, &r, &c), enc.AppendJSON(nil, &r); !bytes.Equal(got, want) {
				t.Fatalf("record %d:\n got %s\nwant %s", i, got, want)
			}
			if got, want := enc.AppendIDWith(nil, &r, &c), enc.AppendID(nil, &r); !bytes.Equal(got, want) {
				t.Fatalf("record %d: ID %s, want %s", i, got, want)
			}
		}
	}
}

// BenchmarkAppendJSONWith is BenchmarkAppendJSON with the file's parts
// cached, as the sinks render a batch.
func BenchmarkAppendJSONWith(b *testing.B) {
	enc := NewEncoder("0123456789abcdef", Kubernetes{Pod: "web-1", Namespace: "shop"}, map[string]string{"container": "app"})
	r := sample()
	r.Message = bytes.Repeat([]byte("a"), 200)
	buf := make([]byte, 0, 1024)
	var c FileParts
	b.SetBytes(int64(len(r.Message)))
	for b.Loop() {
		buf = enc.AppendJSONWith(buf[:0], &r, &c)
	}
}
