package buffer

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Drop reasons, the values of the reason label of
// skiff_buffer_dropped_records_total.
const (
	reasonBufferFull = "buffer_full" // when_full dropped them
	reasonCorrupt    = "corrupt"     // skipped over a corrupt region
)

// Where a cursor read records from, the values of the source label of
// skiff_buffer_read_records_total (the index of Cursor.read).
const (
	sourceMemory = iota // the hot window
	sourceDisk          // a segment file
)

var sourceNames = [...]string{sourceMemory: "memory", sourceDisk: "disk"}

// metrics are the buffer's instruments. Gauges derived from the state
// (bytes, records, lag...) are computed at scrape time by the Log's
// collector so that they can never drift from the state.
type metrics struct {
	reg prometheus.Registerer

	dropped       *prometheus.CounterVec // sink, reason
	corrupt       prometheus.Counter
	corruptBytes  prometheus.Counter
	truncated     prometheus.Counter
	recovery      *prometheus.CounterVec // event
	abandoned     prometheus.Counter
	fsync         prometheus.Histogram
	blocked       *prometheus.CounterVec // reason
	appended      prometheus.Counter
	appendedBytes prometheus.Counter
	read          *prometheus.CounterVec // sink, source

	collectors []prometheus.Collector
}

var (
	descBytes    = prometheus.NewDesc("skiff_buffer_bytes", "Bytes of segment files on disk, in whole 4 KiB blocks.", nil, nil)
	descMax      = prometheus.NewDesc("skiff_buffer_max_bytes", "Bound on skiff_buffer_bytes (SKIFF_BUFFER_MAX_BYTES).", nil, nil)
	descRecords  = prometheus.NewDesc("skiff_buffer_records", "Records retained in the buffer.", nil, nil)
	descSegments = prometheus.NewDesc("skiff_buffer_segments", "Segment files in the buffer.", nil, nil)
	descUsage    = prometheus.NewDesc("skiff_buffer_usage_ratio", "skiff_buffer_bytes divided by the bound.", nil, nil)
	descDiskErr  = prometheus.NewDesc("skiff_buffer_disk_error", "1 while writes fail (disk full, read-only volume, I/O error) and appends wait.", nil, nil)
	descBlocked  = prometheus.NewDesc("skiff_buffer_append_blocked", "1 while an append waits for space under when_full=block.", nil, nil)
	descLagRecs  = prometheus.NewDesc("skiff_buffer_cursor_lag_records", "Records between a sink's committed cursor and the end of the buffer.", []string{"sink"}, nil)
	descLagBytes = prometheus.NewDesc("skiff_buffer_cursor_lag_bytes", "Bytes between a sink's committed cursor and the end of the buffer.", []string{"sink"}, nil)
)

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		reg: reg,
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skiff_buffer_dropped_records_total",
			Help: "Records a sink will never receive, by reason (buffer_full: when_full dropped them; corrupt: skipped a corrupt region, counted once per region).",
		}, []string{"sink", "reason"}),
		corrupt: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skiff_buffer_corrupt_records_total",
			Help: "Corrupt regions found in segments and skipped by resynchronising on the next valid frame; each holds at least one record (how many cannot be known).",
		}),
		corruptBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skiff_buffer_corrupt_bytes_total",
			Help: "Bytes skipped in corrupt regions of segments.",
		}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skiff_buffer_truncated_bytes_total",
			Help: "Bytes of torn tail cut off the last segment at open.",
		}),
		recovery: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skiff_buffer_recovery_events_total",
			Help: "Repairs made at open: torn_tail, quarantined_segment, removed_temp, cursor_reset, cursor_clamped, cursor_removed.",
		}, []string{"event"}),
		abandoned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skiff_buffer_abandoned_records_total",
			Help: "Records that cursors of removed sinks had not yet committed when they were dropped at open.",
		}),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "skiff_buffer_fsync_duration_seconds",
			Help:    "Time taken by fdatasync of segment files.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9),
		}),
		blocked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skiff_buffer_append_blocked_seconds_total",
			Help: "Time Append spent waiting, by reason (full: the bound under when_full=block; disk_error: writes failing).",
		}, []string{"reason"}),
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skiff_buffer_appended_records_total",
			Help: "Records appended to the buffer.",
		}),
		appendedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skiff_buffer_appended_bytes_total",
			Help: "Bytes appended to the buffer, frames included.",
		}),
		read: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skiff_buffer_read_records_total",
			Help: "Records a sink's cursor read, by source (memory: from the hot window of batches appended last; disk: from a segment file).",
		}, []string{"sink", "source"}),
	}
	return m
}

// register registers the instruments and the state collector c on the
// Registerer, if any.
func (m *metrics) register(c prometheus.Collector) error {
	if m.reg == nil {
		return nil
	}
	m.collectors = []prometheus.Collector{m.dropped, m.corrupt, m.corruptBytes, m.truncated, m.recovery,
		m.abandoned, m.fsync, m.blocked, m.appended, m.appendedBytes, m.read, c}
	for i, col := range m.collectors {
		if err := m.reg.Register(col); err != nil {
			for _, done := range m.collectors[:i] {
				m.reg.Unregister(done)
			}
			m.collectors = nil
			return err
		}
	}
	return nil
}

// unregister undoes register so that the directory can be opened again
// with the same Registerer.
func (m *metrics) unregister() {
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
	m.collectors = nil
}

// stateCollector reports gauges computed from the Log's state at scrape.
type stateCollector struct{ l *Log }

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBytes, descMax, descRecords, descSegments, descUsage, descDiskErr, descBlocked, descLagRecs, descLagBytes} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.l.Stats()
	g := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	g(descBytes, float64(s.Bytes))
	g(descMax, float64(s.MaxBytes))
	g(descRecords, float64(s.Records))
	g(descSegments, float64(s.Segments))
	g(descUsage, s.UsageRatio)
	diskErr := 0.0
	if c.l.Err() != nil {
		diskErr = 1
	}
	g(descDiskErr, diskErr)
	blocked := 0.0
	if s.Blocked {
		blocked = 1
	}
	g(descBlocked, blocked)
	for _, cu := range c.l.cursorList() {
		r, b := cu.Lag()
		g(descLagRecs, float64(r), cu.name)
		g(descLagBytes, float64(b), cu.name)
	}
}
