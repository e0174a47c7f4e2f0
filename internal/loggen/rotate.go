package loggen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// streamWriter appends lines to one file through a buffer and rotates it.
type streamWriter struct {
	opts  *Options
	stats *streamStats
	path  string
	f     *os.File // nil for stdout
	bw    *bufio.Writer
	// size is the current file's length as written (buffer included).
	size int64
}

func (w *streamWriter) open() error {
	if w.path == "-" {
		w.bw = bufio.NewWriterSize(w.opts.Stdout, w.opts.BufferBytes)
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(w.path), 0o755); err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		return errors.Join(fmt.Errorf("stat: %w", err), f.Close())
	}
	w.f, w.size = f, fi.Size()
	if w.bw == nil {
		w.bw = bufio.NewWriterSize(f, w.opts.BufferBytes)
	} else {
		w.bw.Reset(f)
	}
	return nil
}

func (w *streamWriter) writeLine(line []byte) error {
	if rb := w.opts.RotateBytes; rb > 0 && w.size > 0 && w.size+int64(len(line)) > rb {
		if err := w.rotate(); err != nil {
			return fmt.Errorf("rotate %s: %w", w.path, err)
		}
	}
	if _, err := w.bw.Write(line); err != nil {
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	w.size += int64(len(line))
	w.stats.lines.Add(1)
	w.stats.bytes.Add(int64(len(line)))
	return nil
}

func (w *streamWriter) flush() error {
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	return nil
}

func (w *streamWriter) close() error {
	err := w.flush()
	if w.f != nil {
		if cerr := w.f.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close %s: %w", w.path, cerr))
		}
		w.f = nil
	}
	return err
}

func (w *streamWriter) rotated(n int) string { return w.path + "." + strconv.Itoa(n) }

// shift makes room for a new path.1: drops path.<Keep> and renames
// path.<n> to path.<n+1>, oldest first.
func (w *streamWriter) shift() error {
	keep := w.opts.Keep
	if keep == 0 {
		return nil
	}
	if err := os.Remove(w.rotated(keep)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for n := keep - 1; n >= 1; n-- {
		if err := os.Rename(w.rotated(n), w.rotated(n+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

func (w *streamWriter) rotate() error {
	if err := w.flush(); err != nil {
		return err
	}
	if err := w.shift(); err != nil {
		return err
	}
	switch w.opts.RotateMode {
	case RotateCopyTruncate:
		if w.opts.Keep > 0 {
			if err := copyFile(w.path, w.rotated(1)); err != nil {
				return err
			}
		}
		// The file is open with O_APPEND, so the next write lands at the
		// new end, offset 0.
		if err := w.f.Truncate(0); err != nil {
			return err
		}
		w.size = 0
	default:
		if err := w.f.Close(); err != nil {
			w.f = nil
			return err
		}
		w.f = nil
		if w.opts.Keep > 0 {
			if err := os.Rename(w.path, w.rotated(1)); err != nil {
				return err
			}
		} else if err := os.Remove(w.path); err != nil {
			return err
		}
		if err := w.open(); err != nil {
			return err
		}
	}
	w.stats.rotations.Add(1)
	return nil
}

func copyFile(from, to string) (err error) {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close() // read-only: its Close error carries nothing
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		return errors.Join(err, dst.Close())
	}
	return dst.Close()
}
