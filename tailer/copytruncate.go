package tailer

import (
	"bytes"
	"os"
	"path/filepath"
	"time"
)

// lostTail describes the unread end of a file identity whose file was
// truncated (copytruncate): its fingerprint and how far it was read.
type lostTail struct {
	dir     string  // where to look for the copy
	key     fileKey // the truncated file itself, never its own copy
	fp      []byte
	off     int64
	source  uint64
	inLong  bool
	pattern int
	guard   []byte // the bytes before guardAt, as read from the old contents
	guardAt int64
}

// hasAt reports whether file holds b just before offset at.
func hasAt(file *os.File, b []byte, at int64) bool {
	if len(b) == 0 {
		return true
	}
	got := make([]byte, len(b))
	n, _ := file.ReadAt(got, at-int64(len(b)))
	return n == len(b) && bytes.Equal(got, b)
}

// recoverFromCopy narrows copytruncate's loss: the bytes written to a file
// after skiff last read it and before it was truncated are still in the
// copy (app.log.1) that logrotate made. A file in the same directory whose
// first bytes equal the old fingerprint and that is longer than the read
// position is that copy; it is followed from the old position to its end,
// under the old identity's Source, then released. Only the lines written
// between the copy and the truncation remain lost (logrotate's own window).
func (t *Tailer) recoverFromCopy(lt lostTail) {
	if len(lt.fp) == 0 || lt.off == 0 {
		return
	}
	ents, err := os.ReadDir(lt.dir)
	if err != nil {
		return
	}
	for _, de := range ents {
		if !de.Type().IsRegular() {
			continue
		}
		info, err := de.Info()
		if err != nil || info.Size() <= lt.off {
			continue
		}
		key := keyOf(info)
		if key == lt.key || t.files[key] != nil {
			continue
		}
		p := filepath.Join(lt.dir, de.Name())
		file, err := t.openFile(p)
		if err != nil {
			continue
		}
		head := make([]byte, len(lt.fp))
		n, _ := file.ReadAt(head, 0)
		if n != len(lt.fp) || !bytes.Equal(head, lt.fp) || !hasAt(file, lt.guard, lt.guardAt) {
			_ = file.Close() // read-only: nothing to lose
			continue
		}
		c := newFollower(key, p, lt.pattern, file, time.Now())
		c.fp = bytes.Clone(lt.fp)
		// The old generation's identity: the copy holds its bytes.
		c.source, c.idSaved = lt.source, false
		c.guard, c.guardAt = append(make([]byte, 0, 2*guardLen), lt.guard...), lt.guardAt
		c.off, c.committed, c.seen = lt.off, lt.off, lt.off
		c.inLong, c.committedInLong = lt.inLong, lt.inLong
		c.size = info.Size()
		c.gone, c.successor = true, true
		c.dirty, c.check = true, true
		t.filesMu.Lock()
		t.files[key] = c
		t.filesMu.Unlock()
		t.byPath[p] = c
		t.ckDirty = true
		t.log.Info("reading the unread end of a truncated file from its copy", "copy", p, "offset", lt.off, "size", info.Size())
		return
	}
}
