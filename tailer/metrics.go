package tailer

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the tailer's Prometheus collectors. Labels name a glob
// pattern or a reason, never a file path.
type metrics struct {
	linesRead     prometheus.Counter
	bytesRead     prometheus.Counter
	filesWatched  prometheus.Gauge
	filesOpen     prometheus.Gauge
	deletedOpen   prometheus.Gauge
	lag           *prometheus.GaugeVec
	rotations     *prometheus.CounterVec
	truncations   prometheus.Counter
	dropped       *prometheus.CounterVec
	errors        *prometheus.CounterVec
	inotifyFallbk prometheus.Gauge
	lostFiles     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		linesRead: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skiff_tailer_lines_read_total", Help: "Records the tailer appended to the buffer.",
		}),
		bytesRead: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skiff_tailer_bytes_read_total", Help: "File bytes covered by appended records (and by lines a filter dropped), terminators included.",
		}),
		filesWatched: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "skiff_tailer_files_watched", Help: "Files (identities) the tailer follows, open or idle.",
		}),
		filesOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "skiff_tailer_files_open", Help: "Files the tailer holds open.",
		}),
		deletedOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "skiff_tailer_files_deleted_open", Help: "Deleted files still held open to be read to their end.",
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "skiff_tailer_lag_bytes", Help: "File bytes not yet checkpointed, per SKIFF_PATHS pattern.",
		}, []string{"pattern"}),
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skiff_tailer_rotations_total", Help: "Files rotated away (kind=rename|delete) or replaced under the same inode (kind=inode_reuse).",
		}, []string{"kind"}),
		truncations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skiff_tailer_truncations_total", Help: "Files found shorter than the read position or rewritten (copytruncate); reading restarted at 0.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skiff_tailer_dropped_bytes_total", Help: "File bytes never shipped, by reason.",
		}, []string{"reason"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skiff_tailer_errors_total", Help: "Problems the tailer handled and carried on from, by kind.",
		}, []string{"kind"}),
		lostFiles: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skiff_tailer_lost_files_total", Help: "Checkpointed files not found at start (rotated out of SKIFF_PATHS or deleted while skiff was stopped): lines written to them after the last stop, if any, were not read.",
		}),
		inotifyFallbk: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "skiff_tailer_inotify_fallback", Help: "1 while inotify is unavailable and rescans alone find changes.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.linesRead, m.bytesRead, m.filesWatched, m.filesOpen,
		m.deletedOpen, m.lag, m.rotations, m.truncations, m.dropped, m.errors, m.inotifyFallbk, m.lostFiles} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}
