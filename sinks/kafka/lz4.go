package kafka

import (
	"io"
	"sync"

	"github.com/pierrec/lz4/v4"
	"github.com/segmentio/kafka-go/compress"
	kafkalz4 "github.com/segmentio/kafka-go/compress/lz4"
)

// lz4Codec is kafka-go's lz4 codec writing 256 KiB blocks without a
// content checksum. kafka-go's uses the lz4 package's defaults: 4 MiB
// blocks, so that every compressor in flight holds a 4 MiB input and a
// 4 MiB output buffer (and keeps them in a pool after), although LZ4
// matches reach back only 64 KiB; and an xxHash of the whole content,
// which the record batch's own CRC-32C already covers. Measured on 1,000
// JSON records: 30% less CPU (no xxHash), output 1.6% larger (block
// starts), and the end-to-end Kafka run's peak RSS 66-75 -> 43-44 MiB.
// Consumers read these frames like any other: the block size and the
// checksum flag are in the frame descriptor (the Java client writes
// 64 KiB blocks without a content checksum).
type lz4Codec struct {
	writers sync.Pool // *lz4.Writer, options kept across Reset
}

// installLZ4 makes kafka-go use lz4Codec for COMPRESSION=lz4. kafka-go
// looks codecs up in a package-level table; skiff is its only user in the
// process, and the frames stay standard LZ4 frames any consumer reads.
var installLZ4 = sync.OnceFunc(func() {
	compress.Codecs[compress.Lz4] = &lz4Codec{}
})

// lz4BlockSize is the size of the blocks lz4Codec writes.
const lz4BlockSize = lz4.Block256Kb

func (c *lz4Codec) Code() int8   { return int8(compress.Lz4) }
func (c *lz4Codec) Name() string { return "lz4" }

// NewReader is kafka-go's: skiff only produces.
func (c *lz4Codec) NewReader(r io.Reader) io.ReadCloser {
	return (&kafkalz4.Codec{}).NewReader(r)
}

func (c *lz4Codec) NewWriter(w io.Writer) io.WriteCloser {
	z, _ := c.writers.Get().(*lz4.Writer)
	if z == nil {
		z = lz4.NewWriter(w)
		// Valid options cannot fail.
		_ = z.Apply(lz4.BlockSizeOption(lz4BlockSize), lz4.ChecksumOption(false))
	} else {
		z.Reset(w)
	}
	return &lz4Writer{z: z, pool: &c.writers, buf: lz4Stage.Get().(*[]byte)}
}

// lz4StageBytes is how much lz4Writer gathers before handing it to the
// compressor.
const lz4StageBytes = 32 << 10

var lz4Stage = sync.Pool{New: func() any { b := make([]byte, 0, lz4StageBytes); return &b }}

// lz4Writer gathers kafka-go's writes before they reach the compressor,
// and returns its compressor to the pool on Close. kafka-go encodes a
// record batch field by field, about 16 writes per record (lengths,
// varints, key, value, each header's key and value), and each write to
// the lz4 package's Writer costs a state check, a deferred call and a
// copy: a third of the compression's CPU. Appending to a slice first
// costs a copy alone.
type lz4Writer struct {
	z    *lz4.Writer
	pool *sync.Pool
	buf  *[]byte
}

func (w *lz4Writer) Write(p []byte) (int, error) {
	b := *w.buf
	if len(b)+len(p) <= cap(b) {
		*w.buf = append(b, p...)
		return len(p), nil
	}
	if err := w.flush(); err != nil {
		return 0, err
	}
	if len(p) >= cap(b) {
		return w.z.Write(p)
	}
	*w.buf = append((*w.buf)[:0], p...)
	return len(p), nil
}

// flush hands what was gathered to the compressor.
func (w *lz4Writer) flush() error {
	if len(*w.buf) == 0 {
		return nil
	}
	_, err := w.z.Write(*w.buf)
	*w.buf = (*w.buf)[:0]
	return err
}

func (w *lz4Writer) Close() error {
	if w.z == nil {
		return nil
	}
	err := w.flush()
	if cerr := w.z.Close(); err == nil {
		err = cerr
	}
	w.z.Reset(nil)
	w.pool.Put(w.z)
	w.z = nil
	lz4Stage.Put(w.buf)
	w.buf = nil
	return err
}
