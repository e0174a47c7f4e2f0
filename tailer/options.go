package tailer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skiff-dev/skiff/buffer"
)

// Appender is where the tailer puts records: in skiff, the on-disk buffer
// (*buffer.Log satisfies it).
//
// AppendBatch appends the records in b, in order. The tailer encodes them
// straight into b's frame layout, so the buffer writes them without a
// copy; a test Appender reads them with b.Len and b.Record. It returns
// only once the records are accepted under the buffer's fsync policy and
// blocks (honouring ctx) while the buffer is full; while it blocks, the
// tailer reads nothing more. It may keep the memory b held (the buffer
// does, for the cursors that read the records from memory) if it leaves b
// other memory, and must not touch b after it returns: the tailer refills
// b at once. When ctx is cancelled the records
// may or may not have been written; the tailer then treats them as not
// appended (and may repeat them after a restart).
//
// Sync makes everything appended so far durable. The tailer calls it before
// every checkpoint write, so a checkpoint never skips past lines a crash
// could lose.
//
// The tailer imports package buffer for the Batch type alone: it is plain
// memory in the buffer's frame layout, with nothing tied to a Log. A type
// of the tailer's own would need either a copy into the buffer's layout
// (what Batch removes) or the tailer knowing that layout.
type Appender interface {
	AppendBatch(ctx context.Context, b *buffer.Batch) error
	Sync() error
}

// BlockReporter is implemented by an Appender that can tell a blocked
// buffer from a slow one (*buffer.Log does). BlockedSince returns when the
// Append in progress began to wait for space (or for a failing write)
// with nothing written since, or the zero time when appends make
// progress. A deleted file is let go unread (Options.DeletedHoldTime and
// DeletedHoldBytes) only while it reports a block: an Appender without
// it never makes the tailer drop a deleted file.
type BlockReporter interface {
	BlockedSince() time.Time
}

// Replayer lets the tailer resume exactly after the last record that
// reached the buffer, not at its last checkpoint: checkpoints are written
// once a CheckpointInterval, and without this a crash would repeat up to an
// interval of lines.
//
// Mark returns an opaque position of the buffer's current end; the tailer
// stores it in each checkpoint. Replay calls fn with every record appended
// after mark that the buffer still holds, or every record it holds when
// mark is empty (the data is valid only during fn).
type Replayer interface {
	Mark() ([]byte, error)
	Replay(ctx context.Context, mark []byte, fn func(rec []byte) error) error
}

// Options configures a Tailer. Zero values mean the documented defaults.
type Options struct {
	// Paths are absolute globs of the files to follow; ** matches any
	// number of directories. Required.
	Paths []string
	// Exclude are globs never to read. A pattern without "/" matches the
	// base name (so "*.gz" excludes /logs/a.log.1.gz); with "/" it matches
	// the whole path.
	Exclude []string
	// DataDir holds the checkpoint file. Required.
	DataDir string
	// FollowSymlinks reads files that match the globs through a symbolic
	// link, provided the link's target lies inside a base directory of
	// Paths (the part of a pattern before its first glob character). Off
	// (the default), symlinks are not read: the application container
	// writes the log volume and could otherwise point skiff at any file
	// skiff may read. Either way a file is opened with O_NOFOLLOW and
	// refused if what was opened lies outside every base directory.
	FollowSymlinks bool
	// ReadFrom is where to start a file with no checkpoint that is found
	// by the first scan: "head" (default) or "tail". Files appearing later
	// are always read from the head.
	ReadFrom string
	// PartialFlush ships a file's unterminated last line after the file has
	// not grown for this long (default 1s): as a record marked
	// record.FlagPartial (and FlagMore), whose continuation, when the
	// writer completes the line, follows at its own offset, also marked
	// partial. Without it a last line written without "\n" would wait
	// until the file is rotated or skiff stops.
	PartialFlush time.Duration
	// MaxLineBytes bounds a record's message (default 1 MiB); longer lines
	// are split into pieces marked record.FlagPartial. It also bounds a
	// joined multiline record.
	MaxLineBytes int
	// ScanInterval is the period of the rescan that backs up inotify and
	// replaces it when inotify is unavailable (default 5s).
	ScanInterval time.Duration
	// CloseInactive closes a file that has not grown for this long
	// (default 5m); it is reopened when it changes.
	CloseInactive time.Duration
	// DeletedHoldTime and DeletedHoldBytes bound how long a deleted file is
	// kept open while the Appender reports itself blocked (BlockReporter:
	// buffer full, or its writes failing): once it has been blocked this
	// long since the file was found deleted, or this many of the file's
	// bytes are unread (after the buffer has been blocked for a second, or
	// DeletedHoldTime if shorter), the file is released and its unread bytes
	// counted as dropped (reason="deleted_unread"). A slow Append is not a
	// block. Defaults 5m and 64 MiB.
	DeletedHoldTime  time.Duration
	DeletedHoldBytes int64
	// ParseJSON marks lines that are JSON objects with record.FlagJSON.
	ParseJSON bool
	// TimeField, with ParseJSON, names the top-level field holding the
	// event time: an RFC 3339 string, or epoch seconds or milliseconds.
	TimeField string
	// MultilineStart, when set, is the pattern of a line that begins a
	// record; other lines are joined (with "\n") to the record before them.
	MultilineStart *regexp.Regexp
	// MultilineMaxLines bounds the lines in one joined record (default 500).
	MultilineMaxLines int
	// MultilineTimeout ships a pending joined record when no line has been
	// added to it for this long (default 1s).
	MultilineTimeout time.Duration
	// Filter, when set, drops lines and redacts secrets before records are
	// appended (SKIFF_DROP, SKIFF_KEEP, SKIFF_REDACT); nil ships every
	// line as read. It sees each record as built: a joined multiline
	// record whole, a long line piece by piece.
	Filter Filter
	// CheckpointInterval is the period of checkpoint writes (default 1s).
	CheckpointInterval time.Duration
	// ReadDelay is how long the tailer waits, after inotify reports a
	// change, before it reads: the lines written meanwhile are read,
	// appended and shipped together, and the events they cause wait in the
	// kernel's queue instead of waking skiff one by one. A quiet file's
	// first line is read ReadDelay late; a busy tailer does not wait. Zero
	// reads at once.
	ReadDelay time.Duration
	// Registerer receives the tailer's metrics; nil means none.
	Registerer prometheus.Registerer
	// Logger receives the tailer's logs; nil means none.
	Logger *slog.Logger
	// Replayer, when set, is read at start to resume after the records
	// appended since the last checkpoint (in skiff: the buffer).
	Replayer Replayer
	// NewWatcher creates the inotify watcher; nil means fsnotify.NewWatcher.
	// When it fails, the tailer works by rescanning alone.
	NewWatcher func() (*fsnotify.Watcher, error)
}

const (
	defaultMaxLineBytes       = 1 << 20
	defaultScanInterval       = 5 * time.Second
	defaultCloseInactive      = 5 * time.Minute
	defaultDeletedHoldTime    = 5 * time.Minute
	defaultDeletedHoldBytes   = 64 << 20
	defaultMultilineMaxLines  = 500
	defaultMultilineTimeout   = time.Second
	defaultPartialFlush       = time.Second
	defaultCheckpointInterval = time.Second
)

// withDefaults returns o with zero values replaced by defaults, or an error
// naming every invalid field.
func (o Options) withDefaults() (Options, error) {
	var errs []error
	if len(o.Paths) == 0 {
		errs = append(errs, errors.New("no paths"))
	}
	if o.DataDir == "" {
		errs = append(errs, errors.New("no data dir"))
	}
	switch o.ReadFrom {
	case "":
		o.ReadFrom = "head"
	case "head", "tail":
	default:
		errs = append(errs, fmt.Errorf("read from %q: want head or tail", o.ReadFrom))
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = defaultMaxLineBytes
	}
	if o.ScanInterval <= 0 {
		o.ScanInterval = defaultScanInterval
	}
	if o.CloseInactive <= 0 {
		o.CloseInactive = defaultCloseInactive
	}
	if o.DeletedHoldTime <= 0 {
		o.DeletedHoldTime = defaultDeletedHoldTime
	}
	if o.DeletedHoldBytes <= 0 {
		o.DeletedHoldBytes = defaultDeletedHoldBytes
	}
	if o.MultilineMaxLines <= 0 {
		o.MultilineMaxLines = defaultMultilineMaxLines
	}
	if o.PartialFlush <= 0 {
		o.PartialFlush = defaultPartialFlush
	}
	if o.MultilineTimeout <= 0 {
		o.MultilineTimeout = defaultMultilineTimeout
	}
	if o.CheckpointInterval <= 0 {
		o.CheckpointInterval = defaultCheckpointInterval
	}
	o.ReadDelay = max(o.ReadDelay, 0)
	if o.NewWatcher == nil {
		o.NewWatcher = fsnotify.NewWatcher
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, errors.Join(errs...)
}
