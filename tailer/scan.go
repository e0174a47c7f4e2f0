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
		t.adopt(fd.path, fd.pattern, key)
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
// files start at the head.
func (t *Tailer) adopt(path string, pattern int, key fileKey) *follower {
	file, err := t.openFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			t.m.errors.WithLabelValues("vanished").Inc()
			return nil
		}
		t.problem(path, errKind(err), err)
		return nil
	}
	st, err := file.Stat()
	if err != nil {
		_ = file.Close() // read-only: nothing to lose
		t.problem(path, errKind(err), err)
		return nil
	}
	if k := keyOf(st); k != key {
		// Replaced between the scan and the open: the next scan sees it.
		_ = file.Close()
		t.needScan = true
		return nil
	}
	now := time.Now()
	f := newFollower(key, path, pattern, file, now)
	head, err := f.head(int(min(st.Size(), fpLen)))
	if err != nil {
		_ = file.Close()
		t.problem(path, errKind(err), err)
		return nil
	}
	f.fp = head
	f.size = st.Size()
	if e, ok := t.saved[key]; ok {
		delete(t.saved, key)
		lt := lostTail{dir: filepath.Dir(path), key: key, fp: e.FP, off: e.Offset, source: e.Source,
			inLong: e.InLong, pattern: pattern}
		if lt.source == 0 {
			lt.source = sourceID(key, e.FP)
		}
		switch {
		case !fpMatch(e.FP, head):
			t.log.Info("file replaced while skiff was stopped (truncated and rewritten, or inode reused); reading it from the start", "path", path)
			t.m.rotations.WithLabelValues("inode_reuse").Inc()
			t.recoverFromCopy(lt)
		case st.Size() < e.Offset:
			t.log.Warn("file truncated while skiff was stopped; reading it from the start", "path", path,
				"checkpoint", e.Offset, "size", st.Size())
			t.m.truncations.Inc()
			t.recoverFromCopy(lt)
		default:
			f.off, f.committed = e.Offset, e.Offset
			f.inLong, f.committedInLong = e.InLong, e.InLong
			if e.Source != 0 {
				f.source, f.haveSource = e.Source, true
			}
			t.resumed(f, head, st.Size())
		}
	} else if !t.initialed && t.o.ReadFrom == "tail" {
		f.off, f.committed = st.Size(), st.Size()
		t.m.dropped.WithLabelValues("read_from_tail").Add(float64(st.Size()))
	} else {
		t.resumed(f, head, st.Size())
	}
	f.seen = f.off
	f.dirty, f.check = true, true
	t.filesMu.Lock()
	t.files[key] = f
	t.filesMu.Unlock()
	t.byPath[path] = f
	t.ckDirty = true
	t.log.Debug("following file", "path", path, "offset", f.off)
	return f
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
			f := t.adopt(p, pattern, key)
			if f != nil && f.off == e.Offset {
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
