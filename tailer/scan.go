package tailer

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// problem logs an unusable path once per kind and counts every occurrence.
func (t *Tailer) problem(path, kind string, err error) {
	t.m.errors.WithLabelValues(kind).Inc()
	if t.problems[path] == kind {
		return
	}
	t.problems[path] = kind
	t.log.Warn("cannot follow file", "path", path, "kind", kind, "err", err)
}

// rescan walks the globs, watches their directories, adopts new files and
// marks followers whose files left the globs.
func (t *Tailer) rescan() {
	t.needScan = false
	t.lastScan = time.Now()
	res := t.match.scan(func(p scanProblem) { t.problem(p.path, p.kind, p.err) })
	t.watchDirs(res.dirs)
	seen := make(map[fileKey]bool, len(res.files))
	for _, fd := range res.files {
		key := keyOf(fd.info)
		if seen[key] {
			continue // a symlink or hard link to a file already followed
		}
		seen[key] = true
		delete(t.problems, fd.path)
		if f := t.files[key]; f != nil && !f.isOpen() && f.path != fd.path && !t.sameHead(fd.path, f.fp) {
			// A closed file's inode now names other content under another
			// name: the old file was deleted and its inode reused (a
			// rotation's new copy often gets the inode the deleted oldest
			// copy freed). Without this check the new file would be taken
			// for the old one and skipped.
			t.m.rotations.WithLabelValues("inode_reuse").Inc()
			t.forget(f)
		}
		if f := t.files[key]; f != nil {
			f.missed = 0
			if f.path != fd.path {
				if st, err := os.Stat(f.path); err != nil || keyOf(st) != key {
					delete(t.byPath, f.path)
					f.setPath(fd.path)
					t.byPath[fd.path] = f
				}
			}
			f.pattern = fd.pattern
			if f.gone && !f.deleted {
				f.gone, f.successor = false, false
			}
			continue
		}
		_, _ = t.adopt(fd.path, fd.pattern, key)
	}
	for key, f := range t.files {
		if seen[key] {
			continue
		}
		if !f.isOpen() {
			// Idle and not found: nothing unread to save. But a directory
			// listing is not atomic with renames (app.log.3 -> app.log.4
			// during the walk can be listed under neither name), so only
			// a second miss in a row forgets it; forgetting too early
			// would read it again from its head when it reappears.
			if f.missed++; f.missed >= 2 {
				t.forget(f)
			}
			continue
		}
		if !f.gone {
			f.gone = true
			kind := "rename"
			if st, err := f.stat(); err == nil && nlinkOf(st) == 0 {
				kind = "delete"
				f.deleted = true
			}
			t.m.rotations.WithLabelValues(kind).Inc()
			t.log.Info("file rotated away; reading it to its end", "path", f.path, "kind", kind)
		}
		if !f.successor {
			if st, err := os.Stat(f.path); err == nil && keyOf(st) != key && st.Size() > 0 {
				f.successor = true
			}
		}
		f.dirty, f.check = true, true
	}
	if !t.initialed {
		t.recoverOrphans()
		for _, e := range t.saved {
			// Rotated out of the globs (or deleted) while skiff was
			// stopped, and not found next to its old path either.
			t.m.lostFiles.Inc()
			t.log.Warn("checkpointed file not found at start; lines written to it after the last stop are lost (keep rotated names inside SKIFF_PATHS)",
				"path", e.Path, "offset", e.Offset)
		}
		t.saved = nil
	}
	t.updateGauges()
}

// adopt starts following the file at path. Its checkpoint, if any, says
// where to resume; otherwise the first scan honours ReadFrom and later
// files start at the head. It reports whether the file resumed its
// checkpoint's generation.
func (t *Tailer) adopt(path string, pattern int, key fileKey) (*follower, bool) {
	file, err := t.openFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			t.m.errors.WithLabelValues("vanished").Inc()
			return nil, false
		}
		t.problem(path, errKind(err), err)
		return nil, false
	}
	st, err := file.Stat()
	if err != nil {
		_ = file.Close() // read-only: nothing to lose
		t.problem(path, errKind(err), err)
		return nil, false
	}
	if k := keyOf(st); k != key {
		// Replaced between the scan and the open: the next scan sees it.
		_ = file.Close()
		t.needScan = true
		return nil, false
	}
	now := time.Now()
	f := newFollower(key, path, pattern, file, now)
	head, err := f.head(int(min(st.Size(), fpLen)))
	if err != nil {
		_ = file.Close()
		t.problem(path, errKind(err), err)
		return nil, false
	}
	f.fp = head
	f.size = st.Size()
	f.newGeneration()
	same := false
	if e, ok := t.saved[key]; ok {
		delete(t.saved, key)
		same = t.resume(f, e, head, st.Size())
	} else if !t.initialed && t.o.ReadFrom == "tail" {
		f.off, f.committed = st.Size(), st.Size()
		t.m.dropped.WithLabelValues("read_from_tail").Add(float64(st.Size()))
	}
	f.seen = f.off
	f.dirty, f.check = true, true
	t.filesMu.Lock()
	t.files[key] = f
	t.filesMu.Unlock()
	t.byPath[path] = f
	t.ckDirty = true
	t.log.Debug("following file", "path", path, "offset", f.off)
	return f, same
}

// resume sets f, a file found at start, to continue where checkpoint e
// left its identity, when it is still the same content generation: its
// first bytes, its size and the bytes before the checkpointed position
// (e.Tail) are as they were, and so are the bytes of the last record the
// buffer holds for it. Otherwise f is new contents (truncated and
// rewritten, or a new file on a reused inode): it keeps the new
// generation adopt gave it, is read from its start, and the old contents'
// unread end is looked for in a copy.
func (t *Tailer) resume(f *follower, e ckEntry, head []byte, size int64) bool {
	src := e.Source
	if src == 0 {
		src = legacySource(f.key, head) // written by a version before generations
	}
	why := ""
	switch {
	case !fpMatch(e.FP, head):
		why = "first bytes changed"
	case size < max(e.Offset, e.TailAt):
		why = "shorter than the checkpoint"
	case !hasAt(f.file, e.Tail, e.TailAt):
		why = "bytes before the checkpoint changed"
	}
	if why == "" {
		fresh := f.source
		f.off, f.committed = e.Offset, e.Offset
		f.inLong, f.committedInLong = e.InLong, e.InLong
		f.source, f.idSaved = src, e.Source != 0
		f.guard, f.guardAt = append(f.guard[:0], e.Tail...), e.TailAt
		if t.resumed(f, size) {
			return true
		}
		why = "the last record the buffer holds for it is no longer there"
		f.off, f.committed, f.inLong, f.committedInLong = 0, 0, false, false
		f.source, f.idSaved = fresh, false
		f.guard, f.guardAt = f.guard[:0], 0
	}
	t.log.Info("file replaced or rewritten while skiff was stopped; reading it from the start as new contents",
		"path", f.path, "why", why, "checkpoint", e.Offset, "size", size)
	if why == "first bytes changed" {
		t.m.rotations.WithLabelValues("inode_reuse").Inc()
	} else {
		t.m.truncations.Inc()
	}
	lfp := e.FP
	lsrc := e.Source
	if lsrc == 0 {
		lsrc = legacySource(f.key, e.FP)
	}
	t.recoverFromCopy(lostTail{dir: filepath.Dir(f.path), key: f.key, fp: lfp, off: e.Offset, source: lsrc,
		inLong: e.InLong, pattern: f.pattern, guard: e.Tail, guardAt: e.TailAt})
	return false
}

// recoverOrphans looks for files that were being read to their end when
// skiff stopped and have since left the globs (app.log renamed to
// app.log.1): the directory of their last path is searched for their
// inode, and a match with the same first bytes is read to its end.
func (t *Tailer) recoverOrphans() {
	for key, e := range t.saved {
		dir := filepath.Dir(e.Path)
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, de := range ents {
			if !de.Type().IsRegular() {
				continue
			}
			p := filepath.Join(dir, de.Name())
			if t.match.excluded(p) {
				continue
			}
			info, err := de.Info()
			if err != nil || keyOf(info) != key {
				continue
			}
			if info.Size() <= e.Offset {
				delete(t.saved, key) // found, and nothing left to read
				break
			}
			pattern := max(t.match.match(e.Path), 0)
			f, same := t.adopt(p, pattern, key)
			if same {
				f.gone = true
				t.log.Info("reading rotated file left unfinished at the last stop", "path", p, "offset", e.Offset)
			} else if f != nil {
				t.forget(f) // not the same file after all
			}
			break
		}
	}
}

// updateGauges recomputes the file gauges and the lag per pattern.
func (t *Tailer) updateGauges() {
	open, deleted := 0, 0
	lag := make([]int64, len(t.match.patterns))
	for _, f := range t.files {
		if f.isOpen() {
			open++
			if f.deleted {
				deleted++
			}
		}
		if d := f.size - f.committed; d > 0 && f.pattern < len(lag) {
			lag[f.pattern] += d
		}
	}
	t.m.filesWatched.Set(float64(len(t.files)))
	t.m.filesOpen.Set(float64(open))
	t.m.deletedOpen.Set(float64(deleted))
	for i, p := range t.match.patterns {
		t.m.lag.WithLabelValues(p.glob).Set(float64(lag[i]))
	}
}

// sameHead reports whether the file at path starts with fp.
func (t *Tailer) sameHead(path string, fp []byte) bool {
	file, err := t.openFile(path)
	if err != nil {
		return true // cannot tell: keep what we know
	}
	defer file.Close()
	head := make([]byte, len(fp))
	n, _ := file.ReadAt(head, 0)
	return fpMatch(fp, head[:n])
}
