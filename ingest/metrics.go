package ingest

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Endpoints, the endpoint label of the metrics.
const (
	endpointOTLP  = "otlp"  // /v1/logs
	endpointJSON  = "json"  // /v1/json
	endpointText  = "text"  // /v1/text
	endpointOther = "other" // any other path
)

type metrics struct {
	requests        *prometheus.CounterVec // endpoint, code
	records         *prometheus.CounterVec // endpoint
	bytes           *prometheus.CounterVec // endpoint
	rejected        *prometheus.CounterVec // endpoint, reason
	rejectedRecords *prometheus.CounterVec // endpoint
	filtered        *prometheus.CounterVec // endpoint
	ack             *prometheus.HistogramVec
	inFlight        prometheus.Gauge
	codeStrings     map[int]string
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skiff_ingest_requests_total",
			Help: "Requests answered, by `endpoint` (otlp, json, text, other) and HTTP status `code`.",
		}, []string{"endpoint", "code"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skiff_ingest_records_total",
			Help: "Records of acknowledged requests appended to the buffer, by `endpoint`.",
		}, []string{"endpoint"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skiff_ingest_received_bytes_total",
			Help: "Request body bytes read, after decompression, by `endpoint`.",
		}, []string{"endpoint"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skiff_ingest_rejected_requests_total",
			Help: "Requests refused, nothing of them appended, by `endpoint` and `reason` (malformed, unsupported_media_type, too_large, unauthorized, method_not_allowed, not_found, busy, buffer_full, write_error, shutting_down, client_gone, timeout).",
		}, []string{"endpoint", "reason"}),
		rejectedRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skiff_ingest_rejected_records_total",
			Help: "OTLP log records refused alone (invalid trace or span ID) while the rest of their request was appended (partial_success), by `endpoint`.",
		}, []string{"endpoint"}),
		filtered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skiff_ingest_filtered_records_total",
			Help: "Records of acknowledged requests that the filters dropped, by `endpoint`.",
		}, []string{"endpoint"}),
		ack: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "skiff_ingest_ack_duration_seconds",
			Help:    "Time from a request's headers to its acknowledgement (records in the buffer), by `endpoint`.",
			Buckets: prometheus.ExponentialBuckets(0.00025, 2, 15),
		}, []string{"endpoint"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "skiff_ingest_requests_in_flight",
			Help: "Requests being read, decoded or appended, or waiting for a slot.",
		}),
		codeStrings: map[int]string{},
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.records, m.bytes, m.rejected, m.rejectedRecords, m.filtered, m.ack, m.inFlight} {
			reg.MustRegister(c)
		}
	}
	// Every status the server answers, so that no request formats one.
	for _, code := range []int{200, 400, 401, 404, 405, 408, 413, 415, 429, 499, 500, 503} {
		m.codeStrings[code] = strconv.Itoa(code)
	}
	return m
}

func (m *metrics) code(c int) string {
	if s, ok := m.codeStrings[c]; ok {
		return s
	}
	return strconv.Itoa(c)
}
