package sinks

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skiff-dev/skiff/internal/record"
)

// TestLatencyHistogramIsAHistogram: batches observed at once give exactly
// what a prometheus.Histogram with the same buckets gives for the same
// records observed one by one (bucket counts, count, sum), including
// records that share a collection time and latencies on bucket bounds and
// past the last one.
func TestLatencyHistogramIsAHistogram(t *testing.T) {
	labels := prometheus.Labels{"sink": "s"}
	ref := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "skiff_sink_delivery_latency_seconds", ConstLabels: labels,
		Help: "Time from a record's collection to its acknowledgement.", Buckets: latencyBuckets[:]})
	h := newLatencyHistogram(labels)
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for range 50 {
		recs := make([]record.Record, rng.IntN(300))
		var c time.Time
		for i := range recs {
			if i == 0 || rng.IntN(4) == 0 { // runs of equal collection times
				switch rng.IntN(3) {
				case 0:
					c = now.Add(-time.Duration(rng.Int64N(int64(2 * time.Hour))))
				case 1:
					c = now.Add(-time.Duration(latencyBuckets[rng.IntN(len(latencyBuckets))] * float64(time.Second)))
				default:
					c = now.Add(-time.Duration(rng.Int64N(int64(20 * time.Millisecond))))
				}
			}
			recs[i].Collected = c
			ref.Observe(now.Sub(c).Seconds())
		}
		h.observeSince(now, recs)
	}
	type summary struct {
		count   uint64
		sum     float64
		buckets []string
	}
	gather := func(c prometheus.Collector) summary {
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(c)
		fams, err := reg.Gather()
		if err != nil || len(fams) != 1 || len(fams[0].GetMetric()) != 1 {
			t.Fatalf("gather: %v, %v", fams, err)
		}
		hist := fams[0].GetMetric()[0].GetHistogram()
		out := summary{count: hist.GetSampleCount(), sum: hist.GetSampleSum()}
		for _, b := range hist.GetBucket() {
			out.buckets = append(out.buckets, b.String())
		}
		return out
	}
	got, want := gather(h), gather(ref)
	if got.count != want.count || math.Abs(got.sum-want.sum) > 1e-9*want.sum || !slices.Equal(got.buckets, want.buckets) {
		t.Fatalf("histogram %+v, want %+v", got, want)
	}
}
