package kafka

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/pierrec/lz4/v4"
	"github.com/segmentio/kafka-go/compress"
	kafkalz4 "github.com/segmentio/kafka-go/compress/lz4"
)

// TestLZ4Codec: once a Kafka sink exists, kafka-go compresses with
// lz4Codec, whose frames declare 256 KiB blocks and no content checksum
// and decode to what was written, also when a compressor is reused.
func TestLZ4Codec(t *testing.T) {
	c := startKfake(t)
	newTestKafka(t, kafkaConfig(c.ListenAddrs(), "logs"), nil)
	codec, ok := compress.Lz4.Codec().(*lz4Codec)
	if !ok {
		t.Fatalf("kafka-go's lz4 codec is %T, want *lz4Codec", compress.Lz4.Codec())
	}
	for round := range 3 { // the second and third reuse a pooled compressor
		var want, frame bytes.Buffer
		w := codec.NewWriter(&frame)
		for i := range 5000 {
			line := fmt.Appendf(nil, `{"message":"line %d of round %d","offset":%d}`+"\n", i, round, i*40)
			want.Write(line)
			if _, err := w.Write(line); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		// Frame descriptor: magic (4 bytes), FLG, BD.
		flg, bd := frame.Bytes()[4], frame.Bytes()[5]
		if flg&0x04 != 0 {
			t.Errorf("round %d: the frame has a content checksum", round)
		}
		if size := 1 << (8 + 2*int(bd>>4&7)); size != int(lz4BlockSize) {
			t.Errorf("round %d: blocks of %d bytes, want %d", round, size, int(lz4BlockSize))
		}
		got, err := io.ReadAll(lz4.NewReader(&frame))
		if err != nil || !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("round %d: decoded %d bytes (%v), want the %d written", round, len(got), err, want.Len())
		}
	}
}

// BenchmarkLZ4Codec compresses 1,000 JSON records as one record batch,
// with kafka-go's lz4 codec and with lz4Codec; it reports the compressed
// size too.
func BenchmarkLZ4Codec(b *testing.B) {
	var recs [][]byte
	var n int64
	for i := range 1000 {
		r := fmt.Appendf(nil, `{"id":"e693262e0c99c3fe-fadb8055244587e0-%d","time":"2026-11-27T12:10:59.191896424Z","path":"/var/log/app/app.log","offset":%d,"message":"10.1.7.203 - alice [27/Nov/2026:09:00:01 +0000] GET /api/v1/orders?page=%d HTTP/1.1 200 5123 https://shop.example.com/orders Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0 req=%x"}`, i, i*400, i%97, i*7919)
		recs = append(recs, r)
		n += int64(len(r))
	}
	for name, codec := range map[string]compress.Codec{"kafka-go": &kafkalz4.Codec{}, "skiff": &lz4Codec{}} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(n)
			var out countingWriter
			for b.Loop() {
				out = 0
				w := codec.NewWriter(&out)
				for _, r := range recs {
					_, _ = w.Write(r)
				}
				_ = w.Close()
			}
			b.ReportMetric(float64(out), "compressed-bytes")
		})
		// As kafka-go writes a record batch: field by field.
		b.Run(name+"/fields", func(b *testing.B) {
			b.SetBytes(n)
			var out countingWriter
			for b.Loop() {
				out = 0
				w := codec.NewWriter(&out)
				for _, r := range recs {
					for _, f := range [][]byte{r[:1], r[1:2], r[2:3], r[3:4], r[4:5], r[5:6], r[6:100], r[100:101], r[101:]} {
						_, _ = w.Write(f)
					}
					for range 4 {
						_, _ = w.Write(r[:8])
					}
				}
				_ = w.Close()
			}
		})
	}
}

type countingWriter int

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}
