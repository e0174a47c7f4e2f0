// Command loggen writes test log lines for skiff's demo, end-to-end tests
// and benchmarks: at a set rate or as fast as it can, to one or more files,
// optionally rotating them, with a stream id, sequence number and checksum
// in every line so that a checker can find lost, duplicated and corrupted
// lines.
//
// Line format (see internal/loggen for the full definition):
//
//	plain: [ts=<time> ]stream=<id> seq=<n> crc=<8hex>[ <padding>]
//	json:  {["ts":"<time>",]"stream":"<id>","seq":<n>,"crc":"<8hex>","pad":"<padding>"}
//
// seq starts at 1 in each stream; crc is the CRC-32C of "<id> <n> <padding>".
//
// Usage:
//
//	loggen -out /var/log/app/app.log -rate 100 -format json
//	loggen -out /tmp/x.log -streams 4 -lines 1000000 -size 200 -rate 0
//	loggen -out /tmp/x.log -rate 1000 -rotate-bytes 10MiB -keep 3 -rotate-mode copytruncate
//
// With -streams N > 1, stream i writes to the -out path with "{n}" replaced
// by i, or with "-i" inserted before the extension (app.log → app-0.log).
// Stream ids are <-id><i>. -rate is per stream.
//
// On exit (all lines written, -duration passed, or SIGINT/SIGTERM) loggen
// flushes every file and prints one summary line per stream to stderr:
//
//	loggen: stream=s0 path=/tmp/x.log lines=1000000 bytes=201000000 rotations=0
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/skiff-dev/skiff/internal/config"
	"github.com/skiff-dev/skiff/internal/loggen"
)

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("loggen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		out        = fs.String("out", "-", `file to append to, or "-" for stdout`)
		streams    = fs.Int("streams", 1, "number of streams, each its own file")
		id         = fs.String("id", "s", "stream id prefix; stream i is <id><i>")
		format     = fs.String("format", "plain", "plain or json")
		size       = fs.Int("size", 100, "line length in bytes without the newline (at least the header, ~40 bytes)")
		rate       = fs.Float64("rate", 10, "lines per second per stream; 0 = as fast as possible")
		lines      = fs.Uint64("lines", 0, "lines per stream, then exit; 0 = no limit")
		duration   = fs.Duration("duration", 0, "run this long, then exit; 0 = no limit")
		ts         = fs.Bool("ts", true, "add a ts field (UTC, nanoseconds) to every line")
		rotBytes   = fs.String("rotate-bytes", "0", "rotate a file before it grows past this size (e.g. 10MiB); 0 = never")
		keep       = fs.Int("keep", 5, "rotated files to keep (path.1 … path.N); 0 unlinks a rotated file")
		rotMode    = fs.String("rotate-mode", "rename", "rename or copytruncate")
		bufferSize = fs.Int("buffer-bytes", 256<<10, "write buffer per stream")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "loggen: unexpected arguments %q\n", fs.Args())
		return 2
	}
	opts, err := options(*out, *streams, *id, *format, *rotBytes, *rotMode)
	if err != nil {
		fmt.Fprintf(stderr, "loggen: %v\n", err)
		return 2
	}
	opts.Size, opts.Rate, opts.Lines, opts.Duration = *size, *rate, *lines, *duration
	opts.Timestamp, opts.Keep, opts.BufferBytes = *ts, *keep, *bufferSize
	g, err := loggen.New(opts)
	if err != nil {
		fmt.Fprintf(stderr, "loggen: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	err = g.Run(ctx)
	elapsed := time.Since(start)
	for _, s := range g.Stats() {
		fmt.Fprintf(stderr, "loggen: stream=%s path=%s lines=%d bytes=%d rotations=%d lines_per_second=%.0f\n",
			s.Stream.ID, s.Stream.Path, s.Lines, s.Bytes, s.Rotations, float64(s.Lines)/elapsed.Seconds())
	}
	if err != nil {
		fmt.Fprintf(stderr, "loggen: %v\n", err)
		return 1
	}
	return 0
}

func options(out string, streams int, id, format, rotBytes, rotMode string) (loggen.Options, error) {
	var o loggen.Options
	f, err := loggen.ParseFormat(format)
	if err != nil {
		return o, err
	}
	rb, err := config.ParseSize(rotBytes)
	if err != nil {
		return o, fmt.Errorf("-rotate-bytes: %w", err)
	}
	rm, err := loggen.ParseRotateMode(rotMode)
	if err != nil {
		return o, err
	}
	if streams < 1 {
		return o, fmt.Errorf("-streams %d: need at least 1", streams)
	}
	if streams > 1 && out == "-" {
		return o, fmt.Errorf("-streams %d: only one stream can write to stdout", streams)
	}
	o.Format, o.RotateBytes, o.RotateMode = f, int64(rb), rm
	for i := range streams {
		o.Streams = append(o.Streams, loggen.Stream{ID: id + strconv.Itoa(i), Path: streamPath(out, streams, i)})
	}
	return o, nil
}

// streamPath is out for a single stream; otherwise out with "{n}"
// replaced by i, or "-i" inserted before the extension.
func streamPath(out string, streams, i int) string {
	if streams == 1 || out == "-" {
		return strings.ReplaceAll(out, "{n}", "0")
	}
	n := strconv.Itoa(i)
	if strings.Contains(out, "{n}") {
		return strings.ReplaceAll(out, "{n}", n)
	}
	ext := filepath.Ext(out)
	return strings.TrimSuffix(out, ext) + "-" + n + ext
}
