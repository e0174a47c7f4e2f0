package kafka

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Kafka-specific metrics of one sink, curried with its
// `sink` label. Delivery counts, errors by kind and retries are the delivery
// loop's.
type metrics struct {
	requests        prometheus.Counter
	requestSeconds  prometheus.Observer
	errors          *prometheus.CounterVec // by `error`
	throttleSeconds prometheus.Counter
	messageBytes    prometheus.Counter
	deadLetters     *prometheus.CounterVec // by `reason`
	isolationWrites prometheus.Counter
	unknownTopics   prometheus.Gauge

	unregister func()
}

func newMetrics(reg prometheus.Registerer, sink string) *metrics {
	l := prometheus.Labels{"sink": sink}
	var cleanups []func()
	counter := func(name, help string) prometheus.Counter {
		v := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"sink"}))
		cleanups = append(cleanups, func() { v.DeletePartialMatch(l) })
		return v.With(l)
	}
	counterVec := func(name, help, label string) *prometheus.CounterVec {
		v := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"sink", label}))
		cleanups = append(cleanups, func() { v.DeletePartialMatch(l) })
		return v.MustCurryWith(l)
	}
	hist := register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "skiff_sink_kafka_produce_seconds",
		Help:    "Duration of produce requests (one per partition batch), from send to acknowledgement.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9),
	}, []string{"sink"}))
	cleanups = append(cleanups, func() { hist.DeletePartialMatch(l) })
	gauge := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "skiff_sink_kafka_unknown_topics",
		Help: "Topics of a templated TOPIC that were found missing and not yet seen again.",
	}, []string{"sink"}))
	cleanups = append(cleanups, func() { gauge.DeletePartialMatch(l) })

	m := &metrics{
		requests:        counter("skiff_sink_kafka_produce_requests_total", "Produce requests sent to brokers (one per partition batch)."),
		requestSeconds:  hist.With(l),
		errors:          counterVec("skiff_sink_kafka_produce_errors_total", "Produce requests that failed, by broker error (snake-case Sink error name) or transport.", "error"),
		throttleSeconds: counter("skiff_sink_kafka_throttle_seconds_total", "Time brokers asked the producer to back off for quota."),
		messageBytes:    counter("skiff_sink_kafka_message_bytes_total", "Bytes of key, value and headers of messages the brokers acknowledged (before compression)."),
		deadLetters:     counterVec("skiff_sink_kafka_dead_lettered_records_total", "Records written to the dead-letter file instead of Sink, by reason.", "reason"),
		isolationWrites: counter("skiff_sink_kafka_isolation_writes_total", "Writes of a split batch made to isolate records the broker rejects."),
		unknownTopics:   gauge.With(l),
	}
	m.unregister = func() {
		for _, c := range cleanups {
			c()
		}
	}
	return m
}

// register registers c on reg, or returns the collector already registered
// under the same description (several Kafka sinks share the metric
// families). A nil reg registers nothing.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // a programming error: conflicting metric definitions
	}
	return c
}
