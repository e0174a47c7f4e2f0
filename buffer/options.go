package buffer

import (
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Fsync policies (Options.Fsync).
const (
	FsyncInterval = "interval" // fsync at most every FsyncInterval (Run does it)
	FsyncBatch    = "batch"    // Append returns after its batch is fsynced
	FsyncNever    = "never"    // only sealing a segment fsyncs
)

// Full policies (Options.WhenFull).
const (
	WhenFullBlock      = "block"       // Append waits for space
	WhenFullDropOldest = "drop_oldest" // lagging cursors skip the oldest segment
	WhenFullDropNewest = "drop_newest" // records that do not fit are refused
)

// Defaults for zero Options fields.
const (
	DefaultMaxBytes      = 256 << 20
	DefaultFsyncInterval = time.Second
	maxSegmentBytes      = 64 << 20
	minSegmentBytes      = 4 << 10
)

// Options configures a Log. The zero value of every field but Dir is usable.
type Options struct {
	// Dir holds the segments and cursor files; it is created if missing.
	Dir string
	// MaxBytes bounds the bytes of segment files on disk (counted in whole
	// 4 KiB blocks). Zero means DefaultMaxBytes.
	MaxBytes int64
	// SegmentBytes is the size at which a segment is sealed and a new one
	// started. Zero means min(64 MiB, MaxBytes/8). It must be at most
	// MaxBytes/2 so that the oldest segment can always be dropped.
	SegmentBytes int64
	// Fsync is FsyncInterval (default), FsyncBatch or FsyncNever.
	Fsync string
	// FsyncInterval is the longest time between fsyncs under FsyncInterval;
	// zero means DefaultFsyncInterval.
	FsyncInterval time.Duration
	// WhenFull is WhenFullBlock (default), WhenFullDropOldest or
	// WhenFullDropNewest.
	WhenFull string
	// HotBytes bounds the hot window: the batches appended last, kept in
	// memory for the cursors that keep up, which read them from there
	// instead of from disk (a batch goes once every cursor has read it, and
	// the oldest go while the window holds more than HotBytes; a batch
	// larger than half of it is not kept). Zero means DefaultHotBytes;
	// negative turns the window off.
	HotBytes int64
	// Cursors names the cursors (one per sink). Cursor files for other names
	// are deleted at Open, their backlog logged and counted. Names match
	// [A-Za-z0-9_-]{1,64}.
	Cursors []string
	// Registerer receives the buffer's metrics; nil means none.
	Registerer prometheus.Registerer
	// Logger receives the buffer's events; nil means discard.
	Logger *slog.Logger
}

var cursorName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// withDefaults returns o with zero fields defaulted, or an error naming
// the first invalid field.
func (o Options) withDefaults() (Options, error) {
	if o.Dir == "" {
		return o, fmt.Errorf("options: Dir is empty")
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.SegmentBytes == 0 {
		o.SegmentBytes = min(maxSegmentBytes, o.MaxBytes/8)
	}
	o.SegmentBytes = max(o.SegmentBytes, minSegmentBytes)
	if o.SegmentBytes > o.MaxBytes/2 {
		return o, fmt.Errorf("options: SegmentBytes %d is more than half of MaxBytes %d", o.SegmentBytes, o.MaxBytes)
	}
	switch o.Fsync {
	case "":
		o.Fsync = FsyncInterval
	case FsyncInterval, FsyncBatch, FsyncNever:
	default:
		return o, fmt.Errorf("options: Fsync %q is not interval, batch or never", o.Fsync)
	}
	if o.HotBytes == 0 {
		o.HotBytes = DefaultHotBytes
	}
	if o.FsyncInterval <= 0 {
		o.FsyncInterval = DefaultFsyncInterval
	}
	switch o.WhenFull {
	case "":
		o.WhenFull = WhenFullBlock
	case WhenFullBlock, WhenFullDropOldest, WhenFullDropNewest:
	default:
		return o, fmt.Errorf("options: WhenFull %q is not block, drop_oldest or drop_newest", o.WhenFull)
	}
	seen := map[string]bool{}
	for _, n := range o.Cursors {
		if !cursorName.MatchString(n) {
			return o, fmt.Errorf("options: cursor name %q does not match %s", n, cursorName)
		}
		if seen[n] {
			return o, fmt.Errorf("options: cursor name %q given twice", n)
		}
		seen[n] = true
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// recordSlack is how far a record may exceed a quarter of the bound: the
// metadata around a line of a quarter of it (SKIFF_MAX_LINE_BYTES accepts
// that much), which is times, offsets and a path (at most PATH_MAX, 4 KiB),
// with room to spare.
const recordSlack = 64 << 10

// maxRecordBytes is the largest payload Append accepts: a quarter of the
// bound plus recordSlack. Such a record gets a segment of its own, and with
// MaxBytes at least 1 MiB that segment is under half of the bound, as every
// segment is (SegmentBytes), so that the buffer can always make room for
// it by deleting delivered segments.
func (o Options) maxRecordBytes() int64 {
	return o.MaxBytes/4 + recordSlack
}
