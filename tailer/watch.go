package tailer

import (
	"context"
	"errors"
	"io/fs"
	"runtime"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watch is the tailer's one inotify instance: directory watches only (as
// fsnotify advises), never one per file.
type watch struct {
	w    *fsnotify.Watcher
	dirs map[string]bool
}

// events is what the pump goroutine hands to Run: coalesced, so a burst of
// writes costs one wake-up and a blocked Run never makes the kernel queue
// overflow.
type events struct {
	paths    map[string]struct{} // files written to
	scan     bool                // something was created, removed or renamed
	overflow bool                // inotify dropped events: switch to rescans
	all      bool                // read every open file (after a ReadDelay)
}

// startWatcher creates the watcher, or switches to rescans alone.
func (t *Tailer) startWatcher() {
	w, err := t.o.NewWatcher()
	if err != nil {
		t.fallback("create inotify watcher", err)
		return
	}
	t.w = &watch{w: w, dirs: map[string]bool{}}
}

// fallback closes the watcher for good: from now on the periodic rescan
// and polls find every change.
func (t *Tailer) fallback(why string, err error) {
	t.log.Warn("inotify unavailable, rescanning every scan interval instead", "why", why, "err", err, "scan_interval", t.o.ScanInterval)
	t.m.inotifyFallbk.Set(1)
	t.m.errors.WithLabelValues("inotify").Inc()
	if t.w != nil {
		if cerr := t.w.w.Close(); cerr != nil {
			t.log.Debug("close watcher", "err", cerr)
		}
		t.w = nil
	}
}

// watchDirs makes the watched set equal to dirs.
func (t *Tailer) watchDirs(dirs []string) {
	if t.w == nil {
		return
	}
	want := make(map[string]bool, len(dirs))
	for _, d := range dirs {
		want[d] = true
		if t.w.dirs[d] {
			continue
		}
		if err := t.w.w.Add(d); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed since the scan; a later scan sees it again
			}
			if errors.Is(err, fs.ErrPermission) {
				t.problem(d, "permission", err) // that directory alone is left to the rescan
				continue
			}
			// ENOSPC (the watch limit), a closed or broken watcher: the
			// watch set is now incomplete, so trust rescans alone.
			t.fallback("watch "+d, err)
			return
		}
		t.w.dirs[d] = true
	}
	for d := range t.w.dirs {
		if !want[d] {
			_ = t.w.w.Remove(d) // the directory is usually gone already
			delete(t.w.dirs, d)
		}
	}
}

// pump moves watcher events into t.ev until ctx is done or the watcher is
// closed.
//
// With a ReadDelay it wakes Run at most about once per delay: after the
// first event of a quiet moment it stops receiving for the delay, so that
// fsnotify's reader, blocked on the unbuffered Events channel, leaves the
// inotify file alone and the kernel queues what the writes cause (an
// application writing a line at a time would otherwise wake skiff, twice
// over, per line); then it takes what is queued (drainEvents) and wakes Run
// to read every open file, whether an event named it or not, so that an
// event left in the queue cannot hold back the lines it stands for: it
// only starts the next round early.
func (t *Tailer) pump(ctx context.Context, w *fsnotify.Watcher) {
	var delay *time.Timer
	if t.o.ReadDelay > 0 {
		delay = time.NewTimer(time.Hour)
		delay.Stop()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			t.note(ev)
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			t.noteErr(err)
		}
		if delay != nil {
			delay.Reset(t.o.ReadDelay)
			select {
			case <-ctx.Done():
				return
			case <-delay.C:
			}
			if !t.drainEvents(w) {
				return
			}
			t.evMu.Lock()
			t.ev.all = true
			t.evMu.Unlock()
		}
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}

// drainEvents takes the events fsnotify has ready without waiting for new
// ones, for at most a ReadDelay, and reports false once the watcher is
// closed. fsnotify's reader hands over one event per channel send, so it
// must run between two receives: Gosched lets it (a receive has just made
// it runnable), and two misses in a row mean it found the inotify file
// empty and went back to waiting. Stopping early is harmless (see pump).
func (t *Tailer) drainEvents(w *fsnotify.Watcher) bool {
	stop := time.Now().Add(t.o.ReadDelay)
	for misses, n := 0, 0; misses < 2; n++ {
		if n%64 == 63 && time.Now().After(stop) {
			break
		}
		runtime.Gosched()
		select {
		case ev, ok := <-w.Events:
			if !ok {
				return false
			}
			t.note(ev)
			misses = 0
		case err, ok := <-w.Errors:
			if !ok {
				return false
			}
			t.noteErr(err)
			misses = 0
		default:
			misses++
		}
	}
	return true
}

// note records one watcher event for Run.
func (t *Tailer) note(ev fsnotify.Event) {
	t.evMu.Lock()
	defer t.evMu.Unlock()
	if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		t.ev.scan = true
	}
	if ev.Has(fsnotify.Write) || ev.Has(fsnotify.Create) {
		t.ev.paths[ev.Name] = struct{}{}
	}
}

// noteErr records a watcher error for Run: an overflow switches to
// rescans, any error asks for one.
func (t *Tailer) noteErr(err error) {
	t.evMu.Lock()
	if errors.Is(err, fsnotify.ErrEventOverflow) {
		t.ev.overflow = true
	}
	t.ev.scan = true
	t.evMu.Unlock()
	if !errors.Is(err, fsnotify.ErrEventOverflow) {
		t.log.Warn("inotify error", "err", err)
		t.m.errors.WithLabelValues("inotify").Inc()
	}
}

// takeEvents returns and clears the pending events.
func (t *Tailer) takeEvents() events {
	t.evMu.Lock()
	defer t.evMu.Unlock()
	e := t.ev
	t.ev = events{paths: map[string]struct{}{}}
	if len(e.paths) == 0 {
		// Reuse the empty map rather than keep allocating.
		t.ev.paths = e.paths
		e.paths = nil
	}
	return e
}

// janitor releases deleted files held open too long while the Appender
// is blocked. It runs beside Run's loop because that loop is the one
// blocked. Without a BlockReporter it is not started: nothing tells a full
// buffer from a slow one, and a deleted file is then read to its end
// however long that takes.
func (t *Tailer) janitor(ctx context.Context, br BlockReporter) {
	period := min(t.o.DeletedHoldTime/4, time.Second)
	period = max(period, 10*time.Millisecond)
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		since := br.BlockedSince()
		if since.IsZero() {
			continue
		}
		t.filesMu.Lock()
		fs := make([]*follower, 0, len(t.files))
		for _, f := range t.files {
			fs = append(fs, f)
		}
		t.filesMu.Unlock()
		for _, f := range fs {
			t.maybeReleaseDeleted(f, since)
		}
	}
}

// blockedGrace is the least time the Appender must have been blocked
// before DeletedHoldBytes lets a deleted file go: a buffer that blocks
// for a moment (a segment being freed) costs no data.
const blockedGrace = time.Second

// holdExpired reports whether a deleted file with unread bytes may be let
// go, now, while the Appender has been blocked since since; seen is when
// the file was first found deleted during a block. Time counts from the
// later of the two: a file deleted during a long block gets the full
// hold time, and a block that ended and began again starts the clock anew.
func holdExpired(o *Options, since, seen, now time.Time, unread int64) bool {
	blocked := now.Sub(since)
	if held := now.Sub(later(since, seen)); held >= o.DeletedHoldTime {
		return true
	}
	return unread >= o.DeletedHoldBytes && blocked >= min(blockedGrace, o.DeletedHoldTime)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (t *Tailer) maybeReleaseDeleted(f *follower, since time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.file == nil {
		return
	}
	st, err := f.file.Stat()
	if err != nil || nlinkOf(st) > 0 {
		return
	}
	now := time.Now()
	if f.deletedSeen.IsZero() {
		f.deletedSeen = now
	}
	// Bytes already read into memory still ship once Append returns.
	unread := st.Size() - max(f.off, f.readHi)
	if !holdExpired(&t.o, since, f.deletedSeen, now, unread) {
		return
	}
	if unread > 0 {
		t.m.dropped.WithLabelValues("deleted_unread").Add(float64(unread))
	}
	if err := f.file.Close(); err != nil {
		t.log.Warn("close deleted file", "path", f.path, "err", err)
	}
	f.file = nil
	f.released = true
	t.log.Warn("released a deleted file while the buffer is blocked; its unread bytes are lost",
		"path", f.path, "unread_bytes", unread, "blocked", now.Sub(since).Round(time.Millisecond))
}
