package e2e

// The reference shippers of the bulk benchmark (bench_test.go): what a
// bare loop with no buffer, no checkpoints and no fsync achieves on the
// same files, the same destination and the same machine, so that skiff's
// figures can be read as a ratio to it. They are written for the
// benchmark and not shipped.
//
// A reference shipper runs as its own process (this test binary started
// again with refShipEnv set: TestMain runs it instead of the tests), so
// that its CPU and memory are measured as skiff's are, apart from the
// receiving server and the broker. It reads the files matched by
// REF_PATHS one after the other with 256 KiB reads, renders every line as
// skiff's JSON record (the same encoder, with the record's ID, time, path
// and offset), and ships it:
//
//   - http: ndjson bodies of at most 2,000 records or 1 MiB of lines (the
//     HTTP sink's defaults) POSTed to REF_HTTP_URL, two requests in
//     flight (its default CONCURRENCY), each body built in memory;
//   - kafka: one message per record through a franz-go producer with its
//     default settings but lz4 (acks=all, idempotent, its own batching
//     and pipelining), to the topic REF_KAFKA_TOPIC at REF_KAFKA_BROKERS,
//     the record ID and path in the skiff-id and skiff-path headers.
//
// When every line is shipped it writes "done" to stderr and waits to be
// killed, so that the benchmark reads its CPU and peak RSS from /proc as
// it does skiff's.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skiff-dev/skiff/internal/record"
)

// refShipEnv names the reference shipper TestMain runs instead of the
// tests (http or kafka).
const refShipEnv = "SKIFF_BENCH_REF"

const (
	refReadBytes   = 256 << 10
	refMaxRecords  = 2000
	refMaxBytes    = 1 << 20
	refConcurrency = 2
)

// runRefShipper is the reference shipper's main; it returns the exit code.
func runRefShipper(kind string) int {
	err := func() error {
		files, err := filepath.Glob(os.Getenv("REF_PATHS"))
		if err != nil {
			return err
		}
		sort.Strings(files)
		enc := record.NewEncoder("0123456789abcdef", record.Kubernetes{}, nil)
		ctx := context.Background()
		switch kind {
		case "http":
			return refHTTP(ctx, files, enc, os.Getenv("REF_HTTP_URL"))
		case "kafka":
			return refKafka(ctx, files, enc, strings.Split(os.Getenv("REF_KAFKA_BROKERS"), ","), os.Getenv("REF_KAFKA_TOPIC"))
		}
		return fmt.Errorf("unknown reference shipper %q", kind)
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "reference shipper:", err)
		return 1
	}
	fmt.Fprintln(os.Stderr, "done")
	select {} // until the benchmark kills it, having read /proc
}

// refLines calls fn for every line of every file, in order, with a record
// (Message and Path valid during the call only).
func refLines(files []string, fn func(r *record.Record) error) error {
	buf := make([]byte, refReadBytes)
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		h := fnv.New64a()
		h.Write([]byte(name))
		r := record.Record{Source: h.Sum64(), Path: []byte(name)}
		var off int64
		have := 0
		for {
			n, rerr := f.Read(buf[have:])
			have += n
			r.Collected = time.Now()
			data := buf[:have]
			for {
				i := bytes.IndexByte(data, '\n')
				if i < 0 {
					break
				}
				r.Offset, r.End, r.Message = off, off+int64(i)+1, data[:i]
				if err := fn(&r); err != nil {
					f.Close()
					return err
				}
				off += int64(i) + 1
				data = data[i+1:]
			}
			have = copy(buf, data)
			if errors.Is(rerr, io.EOF) {
				break
			}
			if rerr != nil {
				f.Close()
				return rerr
			}
		}
		f.Close()
	}
	return nil
}

// refHTTP is the bare tail → HTTP loop.
func refHTTP(ctx context.Context, files []string, enc *record.Encoder, url string) error {
	bodies := make(chan []byte, refConcurrency)
	free := make(chan []byte, refConcurrency+1)
	for range refConcurrency + 1 {
		free <- make([]byte, 0, 2*refMaxBytes)
	}
	var wg sync.WaitGroup
	errs := make(chan error, refConcurrency)
	for range refConcurrency {
		wg.Go(func() {
			for body := range bodies {
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
				if err == nil {
					req.Header.Set("Content-Type", "application/x-ndjson")
					var resp *http.Response
					if resp, err = http.DefaultClient.Do(req); err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							err = fmt.Errorf("POST: %s", resp.Status)
						}
					}
				}
				if err != nil {
					errs <- err
					return
				}
				free <- body[:0]
			}
		})
	}
	body := <-free
	n, size := 0, 0
	flush := func() error {
		select {
		case err := <-errs:
			return err
		case bodies <- body:
		}
		body, n, size = <-free, 0, 0
		return nil
	}
	err := refLines(files, func(r *record.Record) error {
		body = enc.AppendJSON(body, r)
		body = append(body, '\n')
		n, size = n+1, size+len(r.Message)
		if n < refMaxRecords && size < refMaxBytes {
			return nil
		}
		return flush()
	})
	if err == nil && n > 0 {
		err = flush()
	}
	close(bodies)
	wg.Wait()
	if err == nil && len(errs) > 0 {
		err = <-errs
	}
	return err
}

// refKafka is the bare franz-go producer.
func refKafka(ctx context.Context, files []string, enc *record.Encoder, brokers []string, topic string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(kgo.Lz4Compression()), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		return err
	}
	defer cl.Close()
	// Values, IDs and paths go into 1 MiB arenas (the garbage collector
	// frees one once franz-go is done with all its records); the records
	// themselves are recycled once acknowledged.
	var (
		mu      sync.Mutex
		pool    []*kgo.Record
		failure error
	)
	done := func(r *kgo.Record, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil && failure == nil {
			failure = err
		}
		*r = kgo.Record{Headers: r.Headers[:0]}
		pool = append(pool, r)
	}
	var arena []byte
	err = refLines(files, func(r *record.Record) error {
		if cap(arena)-len(arena) < 4<<10 {
			arena = make([]byte, 0, 1<<20)
		}
		start := len(arena)
		arena = enc.AppendJSON(arena, r)
		value := arena[start:len(arena):len(arena)]
		start = len(arena)
		arena = enc.AppendID(arena, r)
		id := arena[start:len(arena):len(arena)]
		start = len(arena)
		arena = append(arena, r.Path...)
		path := arena[start:len(arena):len(arena)]
		mu.Lock()
		var kr *kgo.Record
		if k := len(pool); k > 0 {
			kr, pool = pool[k-1], pool[:k-1]
		} else {
			kr = &kgo.Record{}
		}
		failed := failure
		mu.Unlock()
		if failed != nil {
			return failed
		}
		kr.Value = value
		kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: "skiff-id", Value: id}, kgo.RecordHeader{Key: "skiff-path", Value: path})
		kr.Timestamp = r.Collected
		cl.Produce(ctx, kr, done)
		return nil
	})
	if ferr := cl.Flush(ctx); err == nil {
		err = ferr
	}
	mu.Lock()
	defer mu.Unlock()
	if err == nil {
		err = failure
	}
	return err
}
