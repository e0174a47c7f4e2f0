package sinks

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/skiff-dev/skiff/internal/record"
)

// DefaultDeadLetterMaxBytes bounds the dead-letter directory when
// DeadLetterOptions.MaxBytes is 0.
const DefaultDeadLetterMaxBytes = 64 << 20

// DeadLetterOptions configure a DeadLetter.
type DeadLetterOptions struct {
	// Dir holds the dead-letter files, e.g. $SKIFF_DATA_DIR/deadletter.
	// It is created if missing.
	Dir string
	// MaxBytes bounds the files' total size; the oldest files are deleted
	// (and their records counted as dropped) to make room. 0 means
	// DefaultDeadLetterMaxBytes.
	MaxBytes int64
	// Encoder renders the records; nil means an Encoder with no instance,
	// pod or static fields.
	Encoder *record.Encoder
	// Registerer and Logger; nil means no metrics and no logs.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// DeadLetter keeps records that a destination rejected for good, as NDJSON
// files in one directory: each Write makes one file
//
//	<UTC time>-<seq>-<sink>-<records>.ndjson
//
// whose lines are the records' JSON form with a "dead_letter" object
// ({"sink","reason","time"}) added. A file is written to a temporary name,
// fsynced, renamed and the directory fsynced, so after a crash it is
// either whole or absent. The total size is bounded by MaxBytes, oldest
// files first. DeadLetter implements DeadLetters and is safe for
// concurrent use.
type DeadLetter struct {
	o   DeadLetterOptions
	log *slog.Logger

	records *prometheus.CounterVec
	dropped prometheus.Counter
	size    prometheus.Gauge

	mu     sync.Mutex
	opened bool     // the directory exists and files/total reflect it
	files  []dlFile // existing files, oldest first
	total  int64    // sum of files' sizes
	seq    uint64   // makes names unique within one nanosecond
}

type dlFile struct {
	name    string
	size    int64
	records int
}

var _ DeadLetters = (*DeadLetter)(nil)

// NewDeadLetter returns a DeadLetter for o. It does no I/O: the directory
// is created and its existing files counted on the first Write (where an
// error fails that Write). A metrics registration error is logged.
func NewDeadLetter(o DeadLetterOptions) *DeadLetter {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultDeadLetterMaxBytes
	}
	if o.Encoder == nil {
		o.Encoder = record.NewEncoder("", record.Kubernetes{}, nil)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	d := &DeadLetter{
		o:   o,
		log: o.Logger,
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "skiff_sink_dead_letter_records_total",
			Help: "Records a destination rejected for good, written to the dead-letter directory."}, []string{"sink"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "skiff_dead_letter_dropped_records_total",
			Help: "Dead-lettered records deleted (oldest first) to keep the directory within its bound."}),
		size: prometheus.NewGauge(prometheus.GaugeOpts{Name: "skiff_dead_letter_bytes",
			Help: "Bytes in dead-letter files."}),
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{d.records, d.dropped, d.size} {
			if err := o.Registerer.Register(c); err != nil {
				d.log.Error("register dead-letter metrics", "err", err)
			}
		}
	}
	return d
}

// OpenDeadLetter is NewDeadLetter followed by the directory set-up that
// the first Write would do, so that a bad directory fails at start.
func OpenDeadLetter(o DeadLetterOptions) (*DeadLetter, error) {
	d := NewDeadLetter(o)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.open(); err != nil {
		return nil, err
	}
	return d, nil
}

// open creates the directory and takes stock of the files already there
// (from earlier runs), deleting leftover temporary files. Callers hold mu.
func (d *DeadLetter) open() error {
	if d.opened {
		return nil
	}
	o := d.o
	if err := os.MkdirAll(o.Dir, 0o700); err != nil { // dead letters are log content: skiff's user alone
		return fmt.Errorf("create dead-letter dir: %w", err)
	}
	ents, err := os.ReadDir(o.Dir)
	if err != nil {
		return fmt.Errorf("read dead-letter dir: %w", err)
	}
	var files []dlFile
	var total int64
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".tmp-") {
			if err := os.Remove(filepath.Join(o.Dir, name)); err != nil {
				return fmt.Errorf("remove dead-letter temp file: %w", err)
			}
			continue
		}
		n, ok := parseDeadLetterName(name)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return fmt.Errorf("stat dead-letter file: %w", err)
		}
		files = append(files, dlFile{name: name, size: info.Size(), records: n})
		total += info.Size()
	}
	slices.SortFunc(files, func(a, b dlFile) int { return strings.Compare(a.name, b.name) })
	d.files, d.total, d.opened = files, total, true
	d.size.Set(float64(d.total))
	return nil
}

// parseDeadLetterName returns the record count in a dead-letter file name.
func parseDeadLetterName(name string) (int, bool) {
	base, ok := strings.CutSuffix(name, ".ndjson")
	if !ok {
		return 0, false
	}
	i := strings.LastIndexByte(base, '-')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(base[i+1:])
	return n, err == nil && n >= 0
}

// Write stores recs, rejected by sink for reason, in a new file. If the
// file alone is larger than the bound, the records are counted as dropped
// and logged instead. It returns an error only when the file could not be
// written durably; then nothing of it remains.
func (d *DeadLetter) Write(sink, reason string, recs []record.Record) error {
	if len(recs) == 0 {
		return nil
	}
	now := time.Now().UTC()
	meta, err := json.Marshal(struct {
		Sink   string `json:"sink"`
		Reason string `json:"reason"`
		Time   string `json:"time"`
	}{sink, reason, string(record.AppendTime(nil, now))})
	if err != nil {
		return fmt.Errorf("encode dead-letter metadata: %w", err)
	}
	var buf []byte
	for i := range recs {
		buf = d.o.Encoder.AppendJSON(buf, &recs[i])
		buf = buf[:len(buf)-1] // reopen the object
		buf = append(buf, `,"dead_letter":`...)
		buf = append(buf, meta...)
		buf = append(buf, "}\n"...)
	}
	size := int64(len(buf))

	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.open(); err != nil {
		return err
	}
	if size > d.o.MaxBytes {
		d.dropped.Add(float64(len(recs)))
		d.log.Error("dead letters larger than the dead-letter bound dropped", "sink", sink,
			"records", len(recs), "bytes", size, "max_bytes", d.o.MaxBytes)
		return nil
	}
	if err := d.makeRoom(size); err != nil {
		return err
	}
	d.seq++
	name := fmt.Sprintf("%s-%06d-%s-%d.ndjson", now.Format("20060102T150405.000000000Z"), d.seq%1e6, fileSafe(sink), len(recs))
	if err := writeFileSync(d.o.Dir, name, buf); err != nil {
		return fmt.Errorf("write dead letters: %w", err)
	}
	d.files = append(d.files, dlFile{name: name, size: size, records: len(recs)})
	d.total += size
	d.size.Set(float64(d.total))
	d.records.WithLabelValues(sink).Add(float64(len(recs)))
	d.log.Warn("records dead-lettered", "sink", sink, "records", len(recs), "file", name)
	// A destination's reason may quote the records (Elasticsearch does):
	// it is in the file, and in the log at debug level only.
	d.log.Debug("dead-letter reason", "sink", sink, "file", name, "reason", reason)
	return nil
}

// makeRoom deletes the oldest files until size more bytes fit. Callers
// hold mu.
func (d *DeadLetter) makeRoom(size int64) error {
	removed := false
	for len(d.files) > 0 && d.total+size > d.o.MaxBytes {
		f := d.files[0]
		if err := os.Remove(filepath.Join(d.o.Dir, f.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("delete oldest dead letters: %w", err)
		}
		d.files = d.files[1:]
		d.total -= f.size
		d.dropped.Add(float64(f.records))
		d.log.Warn("dead-letter bound reached: oldest dead letters deleted", "file", f.name, "records", f.records)
		removed = true
	}
	if removed {
		d.size.Set(float64(d.total))
		if err := syncDir(d.o.Dir); err != nil {
			return fmt.Errorf("delete oldest dead letters: %w", err)
		}
	}
	return nil
}

// writeFileSync writes data to dir/name durably: a temporary file, fsync,
// rename, directory fsync.
func writeFileSync(dir, name string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name()) // best effort: the error being returned matters more
		}
	}()
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("fsync dir: %w", err)
	}
	return f.Close()
}

// fileSafe keeps a sink name usable inside a file name whatever the
// caller passes (names from SKIFF_SINKS are already [a-z0-9_]).
func fileSafe(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}
