package tailer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// checkpoint makes the appended records durable and then records how far
// each file is covered by them. A failed Sync leaves the old checkpoint in
// place: lines may repeat after a restart, none are skipped.
func (t *Tailer) checkpoint() {
	if !t.ckDirty {
		return
	}
	// The mark is taken before the offsets: records appended in between
	// are then both covered by an offset and replayed, which is harmless;
	// the other order could miss them on replay and repeat them.
	var mark []byte
	if t.o.Replayer != nil {
		m, err := t.o.Replayer.Mark()
		if err != nil {
			t.checkpointFailed("checkpoint", fmt.Errorf("mark buffer end: %w", err))
			return
		}
		mark = m
	}
	entries := make([]ckEntry, 0, len(t.files))
	for _, f := range t.files {
		entries = append(entries, ckEntry{Dev: f.key.dev, Ino: f.key.ino, FP: f.fp, Source: f.sourceFor(),
			Offset: f.committed, InLong: f.committedInLong, Path: f.path,
			Tail: bytes.Clone(f.guard), TailAt: f.guardAt})
	}
	// Entries are snapshotted before Sync, so Sync covers all they claim.
	if err := t.app.Sync(); err != nil {
		t.checkpointFailed("sync", fmt.Errorf("sync buffer before checkpoint: %w", err))
		return
	}
	if err := saveCheckpoints(t.o.DataDir, entries, mark); err != nil {
		t.checkpointFailed("checkpoint", err)
		return
	}
	if t.ckFailing {
		t.ckFailing = false
		t.log.Info("checkpoints are written again")
	}
	t.ckDirty = false
	for _, f := range t.files {
		f.idSaved = true
	}
}

// checkpointFailed counts a failed checkpoint and logs it at most once a
// minute: it is retried every interval.
func (t *Tailer) checkpointFailed(kind string, err error) {
	t.m.errors.WithLabelValues(kind).Inc()
	if !t.ckFailing || time.Since(t.ckLogged) >= time.Minute {
		t.log.Error("checkpoint not written; lines since the last one will be read again after a restart", "err", err)
		t.ckLogged = time.Now()
	}
	t.ckFailing = true
}

// finish runs after the loop: everything read but not appended is read
// again, unterminated last lines are shipped, and the checkpoints are
// written after a Sync.
func (t *Tailer) finish(ctx context.Context) error {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	t.batch.reset()
	var err error
	for _, f := range t.files {
		// Anything not committed is read again: the Append that was cut
		// short may or may not have stored it.
		f.setOff(f.committed)
		f.inLong = f.committedInLong
		f.ml.pending = false
	}
	for _, f := range t.files {
		f.mu.Lock()
		released := f.released
		f.mu.Unlock()
		if released {
			// Read into memory but not appended: gone with the file.
			f.mu.Lock()
			lost := f.readHi - f.committed
			f.mu.Unlock()
			if lost > 0 {
				t.m.dropped.WithLabelValues("deleted_unread").Add(float64(lost))
			}
			continue
		}
		// A file closed for inactivity may still end in an unterminated
		// line, or have grown since the last poll.
		if !f.isOpen() {
			if st, serr := os.Stat(f.path); serr != nil || st.Size() == f.committed || !t.reopen(f) {
				continue
			}
		}
		if err = t.drain(fctx, f); err != nil {
			break
		}
	}
	if err == nil {
		err = t.flush(fctx)
	}
	var ae *appendError
	fatal := errors.As(err, &ae) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled)
	if err != nil && !fatal {
		t.log.Warn("stopping without shipping every last line: the buffer did not take them in time", "err", err)
	}
	t.ckDirty = true
	t.checkpoint()
	for _, f := range t.files {
		if _, cerr := f.closeFile(); cerr != nil {
			t.log.Warn("close file", "path", f.path, "err", cerr)
		}
	}
	t.updateGauges()
	if fatal {
		return err
	}
	return nil
}

// drain reads f to EOF and ships its unterminated last line.
func (t *Tailer) drain(ctx context.Context, f *follower) error {
	if err := t.checkTruncation(ctx, f); err != nil {
		return t.fileErr(ctx, f, err)
	}
	for {
		eof, err := t.readChecked(ctx, f, -1)
		if err != nil {
			return t.fileErr(ctx, f, err)
		}
		if eof {
			break
		}
	}
	st, err := f.stat()
	if err != nil {
		return nil
	}
	if err := t.emitRest(ctx, f, st.Size(), !f.gone); err != nil {
		return err
	}
	return t.flushMultiline(ctx, f)
}
