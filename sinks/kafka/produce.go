package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"
)

// producer is the sink's writer: kafka-go's Client, one produce request
// per partition (and per BATCH_BYTES of it) of each WriteMessages call,
// all in flight at once, routed to the partition leaders by kafka-go's
// Transport, which keeps the connections and the cluster metadata.
//
// It replaces kafka-go's Writer, which the profile of a bulk run showed
// spending more CPU on its own bookkeeping than on encoding: it asks the
// transport for the topic's metadata for every message (a Client, a
// request and a topic slice allocated each time), gives every partition
// batch a slice of BatchSize messages (1,000 Message values, ~150 KB, for
// the third of a batch each partition gets), a timer and a goroutine, and
// copies every Message into it. The delivery loop batches already, so the
// Writer's batching across calls bought nothing: the producer sends what
// one call brings, which also means a request never carries records of
// another Send (what isolating a refused record needs).
//
// WriteMessages has the Writer's contract as the sink uses it: nil when
// every message was acknowledged; a kafkago.WriteErrors, index-aligned
// with msgs, when some partition's request failed; any other error (the
// topic's metadata could not be had, or names an error) for all of them.
type producer struct {
	client   *kafkago.Client
	balancer kafkago.Balancer
	acks     kafkago.RequiredAcks
	codec    kafkago.Compression
	// maxBytes bounds the messages of one request, as kafka-go sizes
	// them (messageSize): the Writer's BatchBytes.
	maxBytes int64

	// calls recycles the per-call state (*produceCall).
	calls sync.Pool
}

var _ writer = (*producer)(nil)

// produceCall is the state of one WriteMessages call.
type produceCall struct {
	parts    []int     // 0..n-1, for the balancer
	byPart   [][]int32 // message indexes per partition
	requests []produceRequest
	errs     []error // per request
}

// produceRequest is one request: messages idx of one partition.
type produceRequest struct {
	partition int
	idx       []int32
}

func newProducer(addr net.Addr, rt kafkago.RoundTripper, timeout time.Duration, balancer kafkago.Balancer,
	acks kafkago.RequiredAcks, codec kafkago.Compression, maxBytes int64) *producer {
	return &producer{
		client:   &kafkago.Client{Addr: addr, Transport: rt, Timeout: timeout},
		balancer: balancer,
		acks:     acks,
		codec:    codec,
		maxBytes: maxBytes,
	}
}

// WriteMessages writes msgs, which must all be for one topic.
func (p *producer) WriteMessages(ctx context.Context, msgs ...kafkago.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	topic := msgs[0].Topic
	for i := range msgs {
		if msgs[i].Topic != topic {
			return errors.New("kafka producer: one topic per call")
		}
		if messageSize(&msgs[i]) > p.maxBytes {
			return fmt.Errorf("kafka producer: message %d: %w", i, kafkago.MessageSizeTooLarge)
		}
	}
	n, err := p.partitions(ctx, topic)
	if err != nil {
		return err
	}
	c, _ := p.calls.Get().(*produceCall)
	if c == nil {
		c = &produceCall{}
	}
	defer p.calls.Put(c)
	c.plan(msgs, n, p.balancer, p.maxBytes)

	var wg sync.WaitGroup
	for r := range c.requests {
		if r == len(c.requests)-1 {
			c.errs[r] = p.produce(ctx, topic, msgs, &c.requests[r]) // this goroutine sends one
			break
		}
		wg.Go(func() { c.errs[r] = p.produce(ctx, topic, msgs, &c.requests[r]) })
	}
	wg.Wait()
	var werr kafkago.WriteErrors
	for r := range c.requests {
		if c.errs[r] == nil {
			continue
		}
		if werr == nil {
			werr = make(kafkago.WriteErrors, len(msgs))
		}
		for _, i := range c.requests[r].idx {
			werr[i] = c.errs[r]
		}
	}
	if werr != nil {
		return werr
	}
	return nil
}

// plan assigns msgs to n partitions and cuts each partition's share into
// requests of at most maxBytes.
func (c *produceCall) plan(msgs []kafkago.Message, n int, balancer kafkago.Balancer, maxBytes int64) {
	for len(c.parts) < n {
		c.parts = append(c.parts, len(c.parts))
	}
	for len(c.byPart) < n {
		c.byPart = append(c.byPart, nil)
	}
	parts, byPart := c.parts[:n], c.byPart[:n]
	for i := range byPart {
		byPart[i] = byPart[i][:0]
	}
	for i := range msgs {
		part := balancer.Balance(msgs[i], parts...)
		if part < 0 || part >= n {
			part = 0
		}
		byPart[part] = append(byPart[part], int32(i))
	}
	c.requests = c.requests[:0]
	for part, idx := range byPart {
		for len(idx) > 0 {
			k, size := 0, int64(0)
			for k < len(idx) {
				s := messageSize(&msgs[idx[k]])
				if k > 0 && size+s > maxBytes {
					break
				}
				size += s
				k++
			}
			c.requests = append(c.requests, produceRequest{partition: part, idx: idx[:k:k]})
			idx = idx[k:]
		}
	}
	c.errs = resize(c.errs, len(c.requests))
	clear(c.errs)
}

// produce sends one request and returns its outcome.
func (p *producer) produce(ctx context.Context, topic string, msgs []kafkago.Message, r *produceRequest) error {
	recs := &messageRecords{msgs: msgs, idx: r.idx}
	resp, err := p.client.Produce(ctx, &kafkago.ProduceRequest{
		Topic:        topic,
		Partition:    r.partition,
		RequiredAcks: p.acks,
		Compression:  p.codec,
		Records:      recs,
	})
	switch {
	case err != nil:
		return err
	case resp == nil: // RequireNone: no answer
		return nil
	case resp.Error != nil:
		return resp.Error
	}
	for _, e := range resp.RecordErrors {
		return e
	}
	return nil
}

// partitions returns the number of partitions of topic, asking the
// transport for its metadata (meteredTransport answers from its cache
// most of the time), as the Writer does.
func (p *producer) partitions(ctx context.Context, topic string) (int, error) {
	resp, err := p.client.Transport.RoundTrip(ctx, p.client.Addr, &metadataAPI.Request{TopicNames: []string{topic}})
	if err != nil {
		return 0, err
	}
	for _, t := range resp.(*metadataAPI.Response).Topics {
		if t.Name == topic {
			if t.ErrorCode != 0 {
				return 0, kafkago.Error(t.ErrorCode)
			}
			if len(t.Partitions) == 0 {
				return 0, kafkago.UnknownTopicOrPartition
			}
			return len(t.Partitions), nil
		}
	}
	return 0, kafkago.UnknownTopicOrPartition
}

// Close has nothing to wait for: WriteMessages returns only once its
// requests are done. The transport's connections are the sink's to close.
func (p *producer) Close() error { return nil }

// messageRecords reads msgs[idx] as the records of one produce request.
type messageRecords struct {
	msgs   []kafkago.Message
	idx    []int32
	next   int
	record kafkago.Record
	key    bytesReadCloser
	value  bytesReadCloser
}

func (r *messageRecords) ReadRecord() (*kafkago.Record, error) {
	if r.next >= len(r.idx) {
		return nil, io.EOF
	}
	m := &r.msgs[r.idx[r.next]]
	r.next++
	r.record = kafkago.Record{Time: m.Time, Headers: m.Headers}
	if m.Key != nil {
		r.key.Reset(m.Key)
		r.record.Key = &r.key
	}
	if m.Value != nil {
		r.value.Reset(m.Value)
		r.record.Value = &r.value
	}
	return &r.record, nil
}

type bytesReadCloser struct{ bytes.Reader }

func (*bytesReadCloser) Close() error { return nil }
