package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/skiff-dev/skiff/internal/config"
	"github.com/skiff-dev/skiff/internal/record"
	"github.com/skiff-dev/skiff/sinks"
	"github.com/skiff-dev/skiff/sinks/internal/loglimit"
)

var _ sinks.Sink = (*Sink)(nil)

// writer is what the sink needs from its producer (the WriteMessages of
// kafka-go's Writer, which the producer replaces), so that unit tests can
// script broker answers.
type writer interface {
	WriteMessages(ctx context.Context, msgs ...kafkago.Message) error
	Close() error
}

// Message headers every record carries, so that consumers can deduplicate
// (kafka-go has no idempotent producer) and trace a message to its file.
const (
	HeaderID   = "skiff-id"
	HeaderPath = "skiff-path"
)

// Dead-letter reasons used by the Kafka sink, besides reasonTopicUnresolved
// and reasonInvalidTopic.
const (
	reasonTooLarge     = "message_too_large"
	reasonInvalid      = "invalid_record"
	reasonTimestamp    = "invalid_timestamp"
	reasonUnknownTopic = "unknown_topic"
)

const (
	// batchOverhead is kept free under MESSAGE_MAX_BYTES: the v2
	// record batch header (61 bytes) and slack for kafka-go's estimate.
	batchOverhead = 1024
	// maxUnknownTopics bounds the missing topics remembered.
	maxUnknownTopics = 10000
)

// Sink is a sink that produces each record as one Kafka message: the value
// is the record's JSON form, the headers skiff-id and skiff-path carry its ID
// and source path, the key is chosen by KEY and the topic by TOPIC.
//
// It is built on github.com/segmentio/kafka-go with safe settings: every
// write waits for ACKS (all in-sync replicas by default), is synchronous,
// goes out at once (the delivery loop already batches), and is tried once
// (the loop retries with backoff). A record the broker can never take is
// isolated by splitting its batch and is written to the dead letters; the
// rest of the batch is delivered.
//
// Send and Close are safe for concurrent use.
type Sink struct {
	name string
	enc  *record.Encoder
	dead sinks.DeadLetters
	log  *slog.Logger
	m    *metrics

	topic               *topicTemplate
	key                 *fieldRef // nil: messages have no key
	maxMessageBytes     int64     // largest request's messages as kafka-go sizes them (messageSize)
	recordOverhead      int       // bytes of JSON and ID around a record's line and path
	timeout             time.Duration
	unknownTopicTimeout time.Duration
	now                 func() time.Time

	// w is shared by concurrent Sends; each makes its own requests.
	w writer
	// probe writes the pieces of a split batch. Holding probeMu while using
	// it means its requests carry only the records given, so a rejection of
	// a lone record is conclusive.
	probeMu   sync.Mutex
	probe     writer
	transport *kafkago.Transport

	unknownMu sync.Mutex
	// unknown maps a topic found missing to when it was first found
	// missing; an entry goes when a write to the topic succeeds.
	unknown map[string]time.Time

	logMu sync.Mutex
	// deadLog limits the dead-letter warnings to one per reason and
	// loglimit.Every; guarded by logMu.
	deadLog map[string]*loglimit.Limiter

	// attempts recycles the buffers of Sends (*attempt).
	attempts sync.Pool

	closeOnce sync.Once
	closeErr  error
}

// New returns a Kafka sink named name (the `sink` label and the
// dead-letter sink name). It validates cfg, reads the TLS and SASL files,
// and starts no goroutine and no connection: those begin with the first
// Send.
func New(name string, cfg config.Kafka, d sinks.Deps) (*Sink, error) {
	prefix := config.Sink{Name: name}.Prefix()
	if ps := cfg.Validate(prefix); len(ps) > 0 {
		return nil, fmt.Errorf("kafka sink %s: %w", name, errors.Join(ps...))
	}
	if d.Encoder == nil || d.DeadLetters == nil {
		return nil, fmt.Errorf("kafka sink %s: an encoder and a dead-letter store are required", name)
	}
	installLZ4()
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	topic, err := newTopicTemplate(cfg.Topic, d.Encoder)
	if err != nil {
		return nil, fmt.Errorf("kafka sink %s: %w", name, err)
	}
	k := &Sink{
		name:                name,
		enc:                 d.Encoder,
		dead:                d.DeadLetters,
		log:                 log,
		topic:               topic,
		maxMessageBytes:     int64(cfg.MessageMaxBytes) - batchOverhead,
		recordOverhead:      recordOverheadOf(d.Encoder),
		timeout:             cfg.Timeout,
		unknownTopicTimeout: cfg.UnknownTopicTimeout,
		now:                 time.Now,
		unknown:             map[string]time.Time{},
		deadLog:             map[string]*loglimit.Limiter{},
	}
	var balancer kafkago.Balancer = &kafkago.RoundRobin{}
	if cfg.Key != "none" {
		path, _ := config.ParseField(cfg.Key) // validated above
		ref := newFieldRef(path, d.Encoder)
		k.key = &ref
		// The Java client's partitioner, so that other producers keyed
		// alike land on the same partitions.
		balancer = kafkago.Murmur2Balancer{}
	}
	if k.transport, err = newTransport(&cfg, topic.fixed, d.Secrets); err != nil {
		return nil, fmt.Errorf("kafka sink %s: %w", name, err)
	}
	if cfg.TLSEnabled() && cfg.TLSInsecureSkipVerify {
		log.Warn("KAFKA TLS CERTIFICATE VERIFICATION IS OFF: anyone between skiff and the brokers can read and change the logs and steal the SASL password",
			"variable", prefix+"TLS_INSECURE_SKIP_VERIFY")
	}
	if cfg.SASLMechanism == "plain" && !cfg.TLSEnabled() {
		log.Warn("kafka SASL PLAIN without TLS sends the password in clear text", "variable", prefix+"TLS")
	}
	if cfg.Acks == "none" {
		log.Warn("kafka acks=none: the brokers acknowledge nothing, so records lost in flight are not retried", "variable", prefix+"ACKS")
	}
	brokers := make([]string, len(cfg.Brokers))
	for i, b := range cfg.Brokers {
		brokers[i] = strings.TrimSpace(b)
	}
	k.m = newMetrics(d.Registerer, name)
	rt := &meteredTransport{next: k.transport, m: k.m}
	addr := kafkago.TCP(brokers...)
	newWriter := func() writer {
		// One attempt: the delivery loop retries with backoff and
		// jitter, counts the errors and opens its circuit breaker.
		return newProducer(addr, rt, cfg.Timeout, balancer, acks[cfg.Acks], compression[cfg.Compression], k.maxMessageBytes)
	}
	k.w, k.probe = newWriter(), newWriter()
	return k, nil
}

// LoopOptions are the delivery-loop options cfg sets for sink name;
// the caller adds StallTimeout, Registerer and Logger.
func LoopOptions(name string, cfg config.Kafka) sinks.LoopOptions {
	o := sinks.LoopOptions{
		Name:                  name,
		MaxRecords:            cfg.BatchMaxRecords,
		MaxBytes:              int(cfg.BatchMaxBytes),
		Linger:                cfg.Linger,
		Concurrency:           cfg.Concurrency,
		BackoffMin:            cfg.BackoffMin,
		BackoffMax:            cfg.BackoffMax,
		BackoffFirstMinuteMax: cfg.BackoffFirstMinuteMax,
		BreakerFailures:       cfg.BreakerFailures,
	}
	if cfg.BreakerFailures == 0 {
		o.BreakerFailures = -1 // 0 disables it in our configuration
	}
	return o
}

var acks = map[string]kafkago.RequiredAcks{"all": kafkago.RequireAll, "one": kafkago.RequireOne, "none": kafkago.RequireNone}

var compression = map[string]kafkago.Compression{
	"none": 0, "gzip": kafkago.Gzip, "snappy": kafkago.Snappy, "lz4": kafkago.Lz4, "zstd": kafkago.Zstd,
}

// Send makes one delivery attempt of b.Records, within the sink's TIMEOUT.
//
// It returns nil when every record was acknowledged or dead-lettered.
// Otherwise it shrinks b.Records to the records not delivered, in order,
// and returns a *SendError. A cancelled ctx fails the attempt, but kafka-go
// may still write the messages afterwards: they are sent again (duplicates,
// never losses). Records whose topic does not exist are retried (kind auth)
// and, with a templated TOPIC, dead-lettered once the topic has been
// missing for UNKNOWN_TOPIC_TIMEOUT.
func (k *Sink) Send(ctx context.Context, b *sinks.Batch) error {
	if len(b.Records) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()

	a := k.prepare(b.Records)
	k.writeAll(ctx, k.w, a, a.indexes(recPending))
	if p := a.indexes(recPoison); len(p) > 0 {
		k.isolate(ctx, a, p)
	}
	k.settleMissing(a)
	k.writeDeadLetters(a)
	if a.misrouted() {
		// kafka-go routes by metadata it refreshes only every metadataTTL
		// and keeps its connections to a broker that restarted: start
		// afresh, so that the retry asks the cluster where the partitions
		// are now. Writes in flight keep the pool they hold.
		k.transport.CloseIdleConnections()
	}
	err := a.finish(b)
	if ctx.Err() == nil {
		// kafka-go returns before a batch completes only on ctx.
		k.release(a)
	}
	return err
}

// Close waits for produce requests in flight and closes the connections.
// Send must not be called after Close.
func (k *Sink) Close() error {
	k.closeOnce.Do(func() {
		err := errors.Join(k.w.Close(), k.probe.Close())
		k.transport.CloseIdleConnections()
		k.m.unregister()
		if err != nil {
			k.closeErr = fmt.Errorf("close kafka writer: %w", err)
		}
	})
	return k.closeErr
}

type recState uint8

const (
	recPending recState = iota // not delivered; err says why
	recDone                    // acknowledged by the broker or dead-lettered
	recPoison                  // rejected with its whole batch for a per-record reason
	recMissing                 // its topic does not exist
	recDead                    // to be dead-lettered for reason
)

// attempt is the state of one Send: per record, its message and
// where it stands. Concurrent writes of topic groups touch disjoint indexes.
type attempt struct {
	recs   []record.Record
	msgs   []kafkago.Message
	st     []recState
	err    []error
	reason []string
	bytes  []int64 // message bytes counted when acknowledged

	headers []kafkago.Header // two per message
	arena   []byte           // values, IDs and paths of all messages
	parts   record.FileParts // of the records' JSON, for the last file seen
}

// prepare renders every record's message, and marks for the dead letters
// the records that no broker could take.
func (k *Sink) prepare(recs []record.Record) *attempt {
	n := len(recs)
	a, _ := k.attempts.Get().(*attempt)
	if a == nil {
		a = &attempt{}
	}
	a.recs = recs
	a.msgs = resize(a.msgs, n)
	a.st = resize(a.st, n)
	a.err = resize(a.err, n)
	a.reason = resize(a.reason, n)
	a.bytes = resize(a.bytes, n)
	a.headers = resize(a.headers, 2*n)
	size := 0
	for i := range recs {
		// JSON escaping rarely grows a line by more than an eighth.
		size += k.recordOverhead + len(recs[i].Message) + len(recs[i].Message)/8 + 3*len(recs[i].Path)
	}
	// One buffer for all values, IDs and paths, recycled only when no
	// write was abandoned (see release).
	arena := a.arena[:0]
	if cap(arena) < size {
		arena = make([]byte, 0, size)
	}
	for i := range recs {
		r := &recs[i]
		a.st[i], a.err[i], a.reason[i] = recPending, nil, ""
		start := len(arena)
		arena = k.enc.AppendJSONWith(arena, r, &a.parts)
		value := arena[start:len(arena):len(arena)]
		start = len(arena)
		arena = k.enc.AppendIDWith(arena, r, &a.parts)
		id := arena[start:len(arena):len(arena)]
		start = len(arena)
		arena = append(arena, r.Path...)
		path := arena[start:len(arena):len(arena)]

		rf := recordFields{rec: r, value: value}
		topic, reason := k.topic.render(&rf)
		var key []byte
		if k.key != nil {
			if len(k.key.path) == 1 && k.key.path[0] == "path" {
				key = path
			} else if v, ok := k.key.resolve(&rf); ok {
				key = []byte(v)
			}
		}
		h := a.headers[2*i : 2*i+2 : 2*i+2]
		h[0] = kafkago.Header{Key: HeaderID, Value: id}
		h[1] = kafkago.Header{Key: HeaderPath, Value: path}
		a.msgs[i] = kafkago.Message{Topic: topic, Key: key, Value: value, Headers: h, Time: r.Time()}
		a.bytes[i] = int64(len(key) + len(value) + len(id) + len(path) + len(HeaderID) + len(HeaderPath))
		switch {
		case reason != "":
			a.st[i], a.reason[i] = recDead, reason
		case messageSize(&a.msgs[i]) > k.maxMessageBytes:
			a.st[i], a.reason[i] = recDead, reasonTooLarge
		}
	}
	a.arena = arena
	return a
}

// release recycles a's buffers. It must be called only when every write
// of the attempt ran to its end: after a write abandoned on a cancelled
// ctx, kafka-go may still read the messages.
func (k *Sink) release(a *attempt) {
	a.recs = nil
	if cap(a.arena) > 16<<20 {
		return // a rare huge batch: let it go rather than pin it
	}
	k.attempts.Put(a)
}

// resize returns s with length n, reusing its array when large enough.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// recordOverheadOf is what the JSON form and the ID of a record add to
// its line and path, plus room for a long offset and partial flag.
func recordOverheadOf(enc *record.Encoder) int {
	var zero record.Record
	return len(enc.AppendJSON(nil, &zero)) + len(enc.AppendID(nil, &zero)) + 64
}

// messageSize is kafka-go's estimate of a message's size, which its
// Writer compared with BatchBytes (and then failed the whole call); the
// producer cuts requests by it.
func messageSize(m *kafkago.Message) int64 {
	n := int64(4+1+1+8) + 4 + int64(len(m.Key)) + 4 + int64(len(m.Value))
	n += varintLen(len(m.Headers))
	for _, h := range m.Headers {
		n += varintLen(len(h.Key)) + int64(len(h.Key)) + varintLen(len(h.Value)) + int64(len(h.Value))
	}
	return n
}

// varintLen is the length of n as a zig-zag varint.
func varintLen(n int) int64 {
	u := uint64(n) << 1
	l := int64(1)
	for u >= 0x80 {
		u >>= 7
		l++
	}
	return l
}

func (a *attempt) indexes(s recState) []int {
	var idx []int
	for i, st := range a.st {
		if st == s {
			idx = append(idx, i)
		}
	}
	return idx
}

// writeAll writes the records idx through w, one WriteMessages call per
// topic (kafka-go fails a whole call when one topic is missing), the calls
// concurrent, and settles each record by its outcome.
func (k *Sink) writeAll(ctx context.Context, w writer, a *attempt, idx []int) {
	if len(idx) == 0 {
		return
	}
	var groups [][]int
	if k.topic.fixed != "" {
		groups = [][]int{idx}
	} else {
		byTopic := map[string]int{}
		for _, i := range idx {
			g, ok := byTopic[a.msgs[i].Topic]
			if !ok {
				g = len(groups)
				byTopic[a.msgs[i].Topic] = g
				groups = append(groups, nil)
			}
			groups[g] = append(groups[g], i)
		}
	}
	if len(groups) == 1 {
		k.writeGroup(ctx, w, a, groups[0])
		return
	}
	var wg sync.WaitGroup
	for _, g := range groups {
		wg.Go(func() { k.writeGroup(ctx, w, a, g) })
	}
	wg.Wait()
}

func (k *Sink) writeGroup(ctx context.Context, w writer, a *attempt, idx []int) {
	var msgs []kafkago.Message
	if len(idx) == len(a.msgs) {
		msgs = a.msgs // the common case: the whole batch, one topic
	} else {
		msgs = make([]kafkago.Message, len(idx))
		for j, i := range idx {
			msgs[j] = a.msgs[i]
		}
	}
	err := w.WriteMessages(ctx, msgs...)
	var werr kafkago.WriteErrors
	perMessage := errors.As(err, &werr) && len(werr) == len(idx)
	for j, i := range idx {
		e := err
		if perMessage {
			e = werr[j]
		}
		k.settle(a, i, e)
	}
}

// settle records the outcome e of writing record i.
func (k *Sink) settle(a *attempt, i int, e error) {
	switch {
	case e == nil:
		a.st[i], a.err[i] = recDone, nil
		k.m.messageBytes.Add(float64(a.bytes[i]))
	case poisonReason(e) != "":
		a.st[i], a.err[i] = recPoison, e
	case errors.Is(e, kafkago.UnknownTopicOrPartition):
		a.st[i], a.err[i] = recMissing, e
	case errors.Is(e, kafkago.InvalidTopic) && k.topic.templated:
		a.st[i], a.reason[i] = recDead, reasonInvalidTopic
	default:
		a.st[i], a.err[i] = recPending, e
	}
}

// poisonReason returns the dead-letter reason when e says that a record of
// the batch can never be written, "" otherwise.
func poisonReason(e error) string {
	var ke kafkago.Error
	if !errors.As(e, &ke) {
		return ""
	}
	switch ke {
	case kafkago.MessageSizeTooLarge, kafkago.RecordListTooLarge, kafkago.InvalidMessageSize:
		return reasonTooLarge
	case kafkago.InvalidMessage, kafkago.InvalidRecord:
		return reasonInvalid
	case kafkago.InvalidTimestamp:
		return reasonTimestamp
	}
	return ""
}

// isolate finds, by halving, which of the records idx (rejected with their
// batch) the broker refuses on their own, delivering the others on the way.
// A record is dead-lettered only when a request holding it alone is
// rejected, so an innocent record is never dead-lettered for a neighbour.
func (k *Sink) isolate(ctx context.Context, a *attempt, idx []int) {
	k.probeMu.Lock()
	defer k.probeMu.Unlock()
	// The shared writer rejected idx together already: split at once.
	queue := [][]int{idx}
	if len(idx) > 1 {
		queue = [][]int{idx[:len(idx)/2], idx[len(idx)/2:]}
	}
	for len(queue) > 0 {
		set := queue[0]
		queue = queue[1:]
		if err := ctx.Err(); err != nil {
			for _, i := range set {
				a.st[i], a.err[i] = recPending, fmt.Errorf("isolate a rejected record: %w", err)
			}
			continue
		}
		k.m.isolationWrites.Inc()
		k.writeAll(ctx, k.probe, a, set)
		var rejected []int
		for _, i := range set {
			if a.st[i] == recPoison {
				rejected = append(rejected, i)
			}
		}
		switch len(rejected) {
		case 0:
		case 1:
			// A batch's error is shared by all its records: one rejected
			// record was alone in its request.
			i := rejected[0]
			a.st[i], a.reason[i] = recDead, poisonReason(a.err[i])
		default:
			h := len(rejected) / 2
			queue = append(queue, rejected[:h], rejected[h:])
		}
	}
}

// settleMissing decides about records whose topic does not exist: retried,
// or dead-lettered when the TOPIC is templated and the topic has been
// missing for UNKNOWN_TOPIC_TIMEOUT. It forgets topics written to.
func (k *Sink) settleMissing(a *attempt) {
	missing := a.indexes(recMissing)
	k.unknownMu.Lock()
	defer k.unknownMu.Unlock()
	if len(missing) == 0 && len(k.unknown) == 0 {
		return
	}
	for i, st := range a.st {
		if st == recDone {
			delete(k.unknown, a.msgs[i].Topic)
		}
	}
	now := k.now()
	if len(k.unknown) > maxUnknownTopics {
		// Bounds memory against a field with endless values; the cost is
		// waiting UNKNOWN_TOPIC_TIMEOUT again for topics still missing.
		clear(k.unknown)
	}
	for _, i := range missing {
		topic := a.msgs[i].Topic
		first, ok := k.unknown[topic]
		if !ok {
			first = now
			k.unknown[topic] = now
		}
		if k.topic.templated && now.Sub(first) >= k.unknownTopicTimeout {
			a.st[i], a.reason[i] = recDead, reasonUnknownTopic
			continue
		}
		a.st[i] = recPending
		a.err[i] = fmt.Errorf("topic %s: %w", topic, a.err[i])
	}
	k.m.unknownTopics.Set(float64(len(k.unknown)))
}

// writeDeadLetters hands the records marked dead to the dead-letter store,
// one call per reason. Records it fails to take stay undelivered.
func (k *Sink) writeDeadLetters(a *attempt) {
	dead := a.indexes(recDead)
	if len(dead) == 0 {
		return
	}
	var reasons []string
	byReason := map[string][]int{}
	for _, i := range dead {
		r := a.reason[i]
		if _, ok := byReason[r]; !ok {
			reasons = append(reasons, r)
		}
		byReason[r] = append(byReason[r], i)
	}
	for _, reason := range reasons {
		idx := byReason[reason]
		recs := make([]record.Record, len(idx))
		for j, i := range idx {
			recs[j] = a.recs[i]
		}
		if err := k.dead.Write(k.name, reason, recs); err != nil {
			for _, i := range idx {
				a.st[i] = recPending
				a.err[i] = &sinks.SendError{Kind: sinks.KindRejected, Err: fmt.Errorf("write dead letters (%s): %w", reason, err)}
			}
			continue
		}
		for _, i := range idx {
			a.st[i] = recDone
		}
		k.m.deadLetters.WithLabelValues(reason).Add(float64(len(idx)))
		if ok, suppressed := k.allowDeadLog(reason); ok {
			first := &a.recs[idx[0]]
			k.log.Warn("kafka: records dead-lettered", "reason", reason, "records", len(idx),
				"first_id", k.enc.ID(first), "first_path", string(first.Path), "topic", a.msgs[idx[0]].Topic,
				"logs_suppressed", suppressed)
		}
	}
}

// allowDeadLog rate-limits the dead-letter warning of reason, so that a
// stream of bad records does not flood the log (the metric counts all).
func (k *Sink) allowDeadLog(reason string) (bool, int) {
	k.logMu.Lock()
	defer k.logMu.Unlock()
	l := k.deadLog[reason]
	if l == nil {
		l = &loglimit.Limiter{Every: loglimit.Every}
		k.deadLog[reason] = l
	}
	return l.Allow(k.now())
}

// misrouted reports whether a record failed in a way that says the
// metadata or the connections are stale: a partition's leader moved, or
// a broker is gone.
func (a *attempt) misrouted() bool {
	for i, st := range a.st {
		if st != recPending || a.err[i] == nil {
			continue
		}
		var ke kafkago.Error
		if !errors.As(a.err[i], &ke) {
			return true // the connection failed
		}
		switch ke {
		case kafkago.NotLeaderForPartition, kafkago.LeaderNotAvailable, kafkago.BrokerNotAvailable,
			kafkago.ReplicaNotAvailable, kafkago.NotCoordinatorForGroup, kafkago.FencedLeaderEpoch, kafkago.UnknownLeaderEpoch:
			return true
		}
	}
	return false
}

// finish shrinks b.Records to the records not delivered and describes why.
func (a *attempt) finish(b *sinks.Batch) error {
	n := 0
	var first error
	for i := range a.recs {
		if a.st[i] == recDone {
			continue
		}
		if first == nil {
			first = a.err[i]
		}
		b.Records[n] = a.recs[i]
		n++
	}
	if n == 0 {
		return nil
	}
	total := len(b.Records)
	b.Records = b.Records[:n]
	if first == nil {
		first = errors.New("not written")
	}
	var se *sinks.SendError
	if errors.As(first, &se) {
		return &sinks.SendError{Kind: se.Kind, RetryAfter: se.RetryAfter, Err: fmt.Errorf("kafka: %d of %d records not delivered: %w", n, total, se.Err)}
	}
	return &sinks.SendError{Kind: errorKind(first), Err: fmt.Errorf("kafka: %d of %d records not delivered: %w", n, total, first)}
}
