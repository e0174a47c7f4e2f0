package buffer

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// cursorFS is the real file system that counts what happens to cursor
// files (fsyncs, writes, renames, directory fsyncs) and keeps, for each,
// the image its last fsync made durable, so that a test can simulate a
// power loss: every cursor file goes back to that image.
type cursorFS struct {
	osFS
	mu       sync.Mutex
	syncs    int // fsyncs of cursor files (temp files included)
	writes   int // writes to cursor files
	renames  int
	dirSyncs int
	syncErr  error             // cursor fsyncs fail with it while set
	durable  map[string][]byte // path → contents as of its last fsync
}

func newCursorFS() *cursorFS { return &cursorFS{durable: map[string][]byte{}} }

func isCursorPath(name string) bool {
	b := filepath.Base(name)
	return strings.HasSuffix(b, cursorSuffix) || strings.HasSuffix(b, cursorSuffix+tmpSuffix)
}

func (fs *cursorFS) OpenFile(name string, flag int, perm os.FileMode) (file, error) {
	f, err := fs.osFS.OpenFile(name, flag, perm)
	if err != nil || !isCursorPath(name) {
		return f, err
	}
	return &cursorFile{file: f, fs: fs, path: name}, nil
}

func (fs *cursorFS) Rename(from, to string) error {
	if err := fs.osFS.Rename(from, to); err != nil {
		return err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.renames++
	if img, ok := fs.durable[from]; ok {
		fs.durable[to] = img // replaceFile fsyncs the directory next
		delete(fs.durable, from)
	}
	return nil
}

func (fs *cursorFS) SyncDir(dir string) error {
	fs.mu.Lock()
	fs.dirSyncs++
	fs.mu.Unlock()
	return fs.osFS.SyncDir(dir)
}

func (fs *cursorFS) counts() (syncs, writes, renames, dirSyncs int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.syncs, fs.writes, fs.renames, fs.dirSyncs
}

// powerLoss simulates a power loss for the cursor files: each goes back
// to what its last fsync made durable, except that every sector written
// since (a slot) independently either stays as it was, or holds what was
// written, or is torn (its first half written, the rest as it was). The
// Log must have been closed without an fsync since (crashClose).
func (fs *cursorFS) powerLoss(t *testing.T, rng *rand.Rand) {
	t.Helper()
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for path, img := range fs.durable {
		cur, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		out := bytes.Clone(img)
		if len(cur) == len(img) && rng != nil {
			for at := 0; at < len(img); at += cursorSlotStride {
				end := min(at+cursorSlotStride, len(img))
				if bytes.Equal(cur[at:end], img[at:end]) {
					continue
				}
				switch rng.IntN(3) {
				case 1:
					copy(out[at:end], cur[at:end])
				case 2:
					copy(out[at:at+cursorSlotSize/2], cur[at:at+cursorSlotSize/2])
				}
			}
		}
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type cursorFile struct {
	file
	fs   *cursorFS
	path string
}

func (f *cursorFile) WriteAt(b []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	f.fs.writes++
	f.fs.mu.Unlock()
	return f.file.WriteAt(b, off)
}

func (f *cursorFile) Sync() error {
	f.fs.mu.Lock()
	f.fs.syncs++
	err := f.fs.syncErr
	f.fs.mu.Unlock()
	if err != nil {
		return err
	}
	if err := f.file.Sync(); err != nil {
		return err
	}
	img, err := os.ReadFile(f.path) // the temp file is open write-only
	if err != nil {
		return err
	}
	f.fs.mu.Lock()
	f.fs.durable[f.path] = img
	f.fs.mu.Unlock()
	return nil
}

// crashClose releases the Log's files and lock the way a process crash
// does: nothing is fsynced, the page cache keeps what was written.
func crashClose(l *Log) {
	l.mu.Lock()
	l.closed = true
	close(l.closedCh)
	l.mu.Unlock()
	_ = l.w.Close()
	for _, s := range l.unsynced {
		_ = s.f.Close()
	}
	for _, c := range l.cursorList() {
		c.closeFile()
		c.closeCursorFile()
	}
	l.m.unregister()
	l.unlock()
}

// readOne returns the next record of the named cursor of a reopened log.
func firstNum(t *testing.T, o Options) uint64 {
	t.Helper()
	l := testOpen(t, o)
	defer l.Close()
	c, _ := l.Cursor("a")
	recs := drain(t, c)
	if len(recs) == 0 {
		t.Fatal("nothing to read after reopening")
	}
	return recNum(recs[0].Data)
}

// TestCommitDoesNotFsync: in a steady run (appends, reads, a commit per
// batch, Run fsyncing every interval) commits write the cursor file in
// place and never fsync it, rename or fsync the directory; the cursor
// files are fsynced once per interval (and by Sync and Close), under
// interval and batch alike. It fails if the cursor goes back to being
// fsynced per commit.
func TestCommitDoesNotFsync(t *testing.T) {
	for _, fsync := range []string{FsyncInterval, FsyncBatch} {
		t.Run(fsync, func(t *testing.T) {
			dir := t.TempDir()
			synctest.Test(t, func(t *testing.T) {
				fs := newCursorFS()
				l := testOpenFS(t, Options{Dir: dir, Fsync: fsync, FsyncInterval: time.Second, Cursors: []string{"a"}}, fs)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error)
				go func() { done <- l.Run(ctx) }()
				c, _ := l.Cursor("a")
				syncs0, writes0, renames0, dirs0 := fs.counts()
				const commits = 300 // 10 ms apart: three intervals
				for i := range commits {
					appendN(t, l, uint64(10*i), 10, 10, 200)
					recs := drain(t, c)
					if err := c.Commit(recs[len(recs)-1].Pos); err != nil {
						t.Fatal(err)
					}
					time.Sleep(10 * time.Millisecond)
					synctest.Wait()
				}
				syncs, writes, renames, dirs := fs.counts()
				if got := syncs - syncs0; got < 2 || got > 4 {
					t.Errorf("%d cursor fsyncs for %d commits over 3 s, want one per interval (2-4)", got, commits)
				}
				if got := writes - writes0; got != commits {
					t.Errorf("%d cursor writes for %d commits", got, commits)
				}
				if renames != renames0 {
					t.Errorf("%d renames during commits", renames-renames0)
				}
				if dirs != dirs0 { // no segment rolls: 600 KB in all
					t.Errorf("%d directory fsyncs during commits", dirs-dirs0)
				}
				cancel()
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				// Close fsyncs what the last interval left.
				appendN(t, l, 10*commits, 1, 1, 200)
				recs := drain(t, c)
				if err := c.Commit(recs[0].Pos); err != nil {
					t.Fatal(err)
				}
				s1, _, _, _ := fs.counts()
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				if s2, _, _, _ := fs.counts(); s2 != s1+1 {
					t.Errorf("Close made %d cursor fsyncs, want 1", s2-s1)
				}
			})
		})
	}
}

// TestSyncFsyncsCursorsOnlyWhenDirty: Sync fsyncs a cursor file once after
// commits and not again until another commit; under never nothing is
// fsynced.
func TestSyncFsyncsCursorsOnlyWhenDirty(t *testing.T) {
	for fsync, want := range map[string]int{FsyncInterval: 1, FsyncNever: 0} {
		t.Run(fsync, func(t *testing.T) {
			fs := newCursorFS()
			l := testOpenFS(t, Options{Dir: t.TempDir(), Fsync: fsync, Cursors: []string{"a"}}, fs)
			defer l.Close()
			c, _ := l.Cursor("a")
			appendN(t, l, 0, 10, 1, 100)
			s0, _, _, _ := fs.counts()
			for _, r := range drain(t, c) {
				if err := c.Commit(r.Pos); err != nil {
					t.Fatal(err)
				}
			}
			for range 3 {
				if err := l.Sync(); err != nil {
					t.Fatal(err)
				}
			}
			if s, _, _, _ := fs.counts(); s-s0 != want {
				t.Fatalf("%d cursor fsyncs, want %d", s-s0, want)
			}
		})
	}
}

// TestTornCursorWriteFallsBack: a commit written in place but torn by a
// power loss (its slot fails its CRC) makes the cursor fall back to the
// position of the last fsync, never to the oldest record; an intact one
// is kept. Commits since the last fsync all go to the slot that does not
// hold it.
func TestTornCursorWriteFallsBack(t *testing.T) {
	cases := map[string]struct {
		tear bool
		want uint64 // first record read after reopening
	}{
		"torn":   {true, 5},
		"intact": {false, 8},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			o := Options{Dir: dir, Cursors: []string{"a"}}
			fs := newCursorFS()
			l := testOpenFS(t, o, fs)
			appendN(t, l, 0, 10, 10, 100)
			c, _ := l.Cursor("a")
			recs := drain(t, c)
			if err := c.Commit(recs[4].Pos); err != nil { // up to record 4
				t.Fatal(err)
			}
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			for _, i := range []int{5, 6, 7} { // three commits, one slot
				if err := c.Commit(recs[i].Pos); err != nil {
					t.Fatal(err)
				}
			}
			crashClose(l)
			path := filepath.Join(dir, "a"+cursorSuffix)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			st, err := decodeCursor(b)
			// Generation 1 at Open, 2 for record 4, then 3, 4, 5.
			if err != nil || st.pos != recs[7].Pos || st.gen != 5 {
				t.Fatalf("cursor file holds %+v (%v), want generation 5 at record 7", st, err)
			}
			if tc.tear {
				// The sector of the newest slot half written: its second
				// half still holds what was there before.
				at := slotOffset(st.slot)
				for i := at + cursorSlotSize/2; i < at+cursorSlotSize; i++ {
					b[i] = 0
				}
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := firstNum(t, o); got != tc.want {
				t.Fatalf("resumed at record %d, want %d", got, tc.want)
			}
		})
	}
}

// TestCursorV1Upgrade: a version-1 cursor file (as the previous release
// wrote it) is read once at Open, its position kept, and the file replaced
// by a version-2 one; a version-1 reader sees that file as a newer version,
// not as damage.
func TestCursorV1Upgrade(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir, Cursors: []string{"a"}}
	l := testOpen(t, o)
	appendN(t, l, 0, 10, 10, 100)
	c, _ := l.Cursor("a")
	recs := drain(t, c)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "a"+cursorSuffix)
	if err := os.WriteFile(path, encodeCursorV1(recs[3].Pos), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := firstNum(t, o); got != 4 {
		t.Fatalf("resumed at record %d, want 4", got)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := decodeCursor(b)
	if err != nil || st.version != cursorFileVersion || st.pos != recs[3].Pos {
		t.Fatalf("after Open the file holds %+v (%v), want version 2 at record 3", st, err)
	}
	var ve *VersionError
	if err := decodeAsV1Release(b); !errors.As(err, &ve) || ve.Version != 2 {
		t.Fatalf("a version-1 reader gets %v, want a version error", err)
	}
}

// decodeAsV1Release is what the release that wrote version 1 did with a
// cursor file: read (at most) its first 4096 bytes, check the magic and
// that the last 4 bytes read are a CRC-32C of the rest, then the version.
func decodeAsV1Release(file []byte) error {
	b := file[:min(len(file), 4096)]
	if len(b) < 10 || [4]byte(b[0:4]) != cursorMagic {
		return errBadCursor
	}
	n := len(b) - 4
	if crc32.Checksum(b[:n], castagnoli) != binary.LittleEndian.Uint32(b[n:]) {
		return errBadCursor
	}
	if v := binary.LittleEndian.Uint16(b[4:6]); v != 1 {
		if v > 1 {
			return &VersionError{Version: v, Supported: 1}
		}
		return errBadCursor
	}
	return nil
}

// TestCursorSyncFailureWritesAgain: a failed fsync of a cursor file fails
// Sync; the next Sync writes the slot again before it fsyncs, and the
// position is then durable.
func TestCursorSyncFailureWritesAgain(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir, Cursors: []string{"a"}}
	fs := newCursorFS()
	l := testOpenFS(t, o, fs)
	appendN(t, l, 0, 10, 10, 100)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	c, _ := l.Cursor("a")
	recs := drain(t, c)
	if err := c.Commit(recs[6].Pos); err != nil {
		t.Fatal(err)
	}
	fs.mu.Lock()
	fs.syncErr = syscall.EIO
	fs.mu.Unlock()
	if err := l.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync: %v, want EIO", err)
	}
	fs.mu.Lock()
	fs.syncErr = nil
	fs.mu.Unlock()
	_, w0, _, _ := fs.counts()
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, w, _, _ := fs.counts(); w != w0+1 {
		t.Fatalf("%d writes before the fsync that follows a failed one, want 1", w-w0)
	}
	crashClose(l)
	fs.powerLoss(t, nil)
	if got := firstNum(t, o); got != 7 {
		t.Fatalf("resumed at record %d, want 7", got)
	}
}

// TestCursorPowerLoss: random runs of appends, reads and commits (GC
// deleting segments as cursors pass them), with a Sync now and then, cut
// by a simulated power loss that puts each cursor file back to its last
// fsync, with each slot written since kept, lost or torn at random (only
// the cursor files go back: this is about them). After
// reopening, a cursor resumes at or before the first record it had not
// committed (none it had not delivered is skipped, whatever GC deleted
// meanwhile) and at or after the position of the last Sync: the
// duplicates are at most what was committed since then.
func TestCursorPowerLoss(t *testing.T) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	for iter := range 40 {
		dir := t.TempDir()
		o := Options{Dir: dir, MaxBytes: 1 << 20, SegmentBytes: 16 << 10, Cursors: []string{"a", "b"}}
		fs := newCursorFS()
		l := testOpenFS(t, o, fs)
		ca, _ := l.Cursor("a")
		cb, _ := l.Cursor("b")
		var n uint64            // records appended
		var commit, sync uint64 // a's first uncommitted record, and that as of the last Sync
		for range 20 + rng.IntN(200) {
			k := 1 + rng.IntN(30)
			appendN(t, l, n, k, k, 50+rng.IntN(400))
			n += uint64(k)
			if recs := drain(t, cb); len(recs) > 0 {
				if err := cb.Commit(recs[len(recs)-1].Pos); err != nil {
					t.Fatal(err)
				}
			}
			// a commits a random prefix of what it read; the rest is in
			// flight until a later commit covers it.
			if recs := drain(t, ca); len(recs) > 0 {
				if j := rng.IntN(len(recs) + 1); j > 0 {
					if err := ca.Commit(recs[j-1].Pos); err != nil {
						t.Fatal(err)
					}
					commit = recNum(recs[j-1].Data) + 1
				}
			}
			if rng.IntN(10) == 0 {
				if err := l.Sync(); err != nil {
					t.Fatal(err)
				}
				sync = commit
			}
		}
		crashClose(l)
		fs.powerLoss(t, rng)

		l = testOpen(t, o)
		c, _ := l.Cursor("a")
		got := drain(t, c)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			if commit < n {
				t.Fatalf("iteration %d: nothing to read, want records from %d", iter, commit)
			}
			continue // everything was delivered
		}
		first := recNum(got[0].Data)
		if first > commit {
			t.Fatalf("iteration %d: resumed at record %d, after the first uncommitted one (%d): undelivered records skipped", iter, first, commit)
		}
		if first < sync {
			t.Fatalf("iteration %d: resumed at record %d, before the position of the last Sync (%d)", iter, first, sync)
		}
		if last := recNum(got[len(got)-1].Data); last != n-1 {
			t.Fatalf("iteration %d: last record %d, want %d", iter, last, n-1)
		}
	}
}
