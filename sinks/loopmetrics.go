package sinks

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// loopMetrics are one delivery loop's metrics, each with a constant sink
// label so that every loop registers its own collectors on the shared
// registry.
type loopMetrics struct {
	records prometheus.Counter
	bytes   prometheus.Counter
	errors  *prometheus.CounterVec
	retries prometheus.Counter
	corrupt prometheus.Counter
	latency *latencyHistogram
	sampled []prometheus.Collector
	all     []prometheus.Collector
}

// gaugeValues are the gauges derived from loop state, sampled at scrape.
type gaugeValues struct {
	inFlight, circuit, oldest, auth, stalled, config float64
}

func newLoopMetrics(sink string, sample func() gaugeValues) loopMetrics {
	cl := prometheus.Labels{"sink": sink}
	m := loopMetrics{
		records: prometheus.NewCounter(prometheus.CounterOpts{Name: "skiff_sink_records_delivered_total", ConstLabels: cl,
			Help: "Records acknowledged by the destination or dead-lettered."}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "skiff_sink_bytes_delivered_total", ConstLabels: cl,
			Help: "Message bytes (input line bytes) of the delivered records."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "skiff_sink_errors_total", ConstLabels: cl,
			Help: "Failed delivery attempts by kind: network, timeout, server, throttled, auth, config, rejected."}, []string{"kind"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Name: "skiff_sink_retries_total", ConstLabels: cl,
			Help: "Delivery attempts that failed and will be retried after backoff."}),
		corrupt: prometheus.NewCounter(prometheus.CounterOpts{Name: "skiff_sink_dropped_records_total", ConstLabels: prometheus.Labels{"sink": sink, "reason": "corrupt"},
			Help: helpDropped}),
		latency: newLatencyHistogram(cl),
	}
	gauge := func(name, help string, f func(gaugeValues) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: cl},
			func() float64 { return f(sample()) })
	}
	m.sampled = []prometheus.Collector{
		gauge("skiff_sink_requests_in_flight", "Delivery attempts in progress.",
			func(v gaugeValues) float64 { return v.inFlight }),
		gauge("skiff_sink_circuit_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
			func(v gaugeValues) float64 { return v.circuit }),
		gauge("skiff_sink_oldest_undelivered_age_seconds", "Age of the oldest record read and not yet delivered; 0 when none.",
			func(v gaugeValues) float64 { return v.oldest }),
		gauge("skiff_sink_auth_failing", "1 while the destination answers 401, 403 or 404: credentials or URL are wrong (alert on it).",
			func(v gaugeValues) float64 { return v.auth }),
		gauge("skiff_sink_stalled", "1 while records are outstanding and nothing was delivered for the stall timeout.",
			func(v gaugeValues) float64 { return v.stalled }),
		gauge("skiff_sink_config_failing", "1 while the destination refuses every record of a request for the same reason: a configuration error such as a bad index or label set (alert on it).",
			func(v gaugeValues) float64 { return v.config }),
	}
	m.all = append([]prometheus.Collector{m.records, m.bytes, m.errors, m.retries, m.corrupt, m.latency}, m.sampled...)
	return m
}

func (m loopMetrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	var errs []error
	for _, c := range m.all {
		errs = append(errs, reg.Register(c))
	}
	return errors.Join(errs...)
}

// helpDropped is the help of skiff_sink_dropped_records_total, shared by
// every collector of that name (the registry insists they agree).
const helpDropped = "Records skipped without being delivered, by reason: corrupt (undecodable), rejected (refused, with no dead-letter store)."

// NewDroppedCounter returns the skiff_sink_dropped_records_total counter of
// sink for reason, for a sink that counts records it gives up on itself
// (the loop counts the corrupt ones). The caller registers it.
func NewDroppedCounter(sink, reason string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: "skiff_sink_dropped_records_total",
		ConstLabels: prometheus.Labels{"sink": sink, "reason": reason}, Help: helpDropped})
}
