package tailer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/skiff-dev/skiff/internal/fsutil"
)

// checkpointFile is the name of the tailer's state file in the data dir.
const checkpointFile = "tailer.checkpoint"

// checkpointMagic starts the file's first line, followed by the format
// version and the CRC32C of the JSON body that follows the line.
const checkpointMagic = "skiff-tailer-checkpoint"

const checkpointVersion = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ckEntry is one file identity's checkpoint: where to resume reading.
//
// Tail and TailAt came with content generations; a file written before
// has neither (and Source only once a record was shipped), and is read
// as before: the fields are optional, so the format's version stays 1.
type ckEntry struct {
	Dev    uint64 `json:"dev"`
	Ino    uint64 `json:"ino"`
	FP     []byte `json:"fp"`                // the first bytes (≤ fpLen) when written
	Source uint64 `json:"source,omitempty"`  // record.Record.Source of the content generation
	Offset int64  `json:"offset"`            // every line before it is durable in the buffer
	InLong bool   `json:"in_long,omitempty"` // Offset is inside a line being shipped in pieces
	Path   string `json:"path"`              // last known path; a label, and where to look for a rotated file
	// Tail is the file's last bytes (≤ guardLen) before TailAt (usually Offset or past it),
	// as read: a file that no longer holds them there at start was
	// rewritten, and is new contents however its first bytes compare.
	Tail   []byte `json:"tail,omitempty"`
	TailAt int64  `json:"tail_at,omitempty"`
}

type ckBody struct {
	Files []ckEntry `json:"files"`
	// Mark is the buffer's end when the offsets were taken (Replayer.Mark):
	// records after it are replayed at start to move offsets past them.
	Mark []byte `json:"mark,omitempty"`
}

// encodeCheckpoint renders entries as the checkpoint file's bytes.
func encodeCheckpoint(entries []ckEntry, mark []byte) ([]byte, error) {
	body, err := json.Marshal(ckBody{Files: entries, Mark: mark})
	if err != nil {
		return nil, fmt.Errorf("encode checkpoint: %w", err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %d %08x\n", checkpointMagic, checkpointVersion, crc32.Checksum(body, castagnoli))
	b.Write(body)
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// errCorruptCheckpoint marks a checkpoint file that fails its checksum or
// does not parse.
var errCorruptCheckpoint = errors.New("corrupt checkpoint")

// decodeCheckpoint parses the checkpoint file's bytes.
func decodeCheckpoint(b []byte) (ckBody, error) {
	line, body, ok := bytes.Cut(b, []byte{'\n'})
	if !ok {
		return ckBody{}, fmt.Errorf("%w: no header line", errCorruptCheckpoint)
	}
	f := bytes.Fields(line)
	if len(f) != 3 || string(f[0]) != checkpointMagic {
		return ckBody{}, fmt.Errorf("%w: bad header", errCorruptCheckpoint)
	}
	if v, err := strconv.Atoi(string(f[1])); err != nil || v != checkpointVersion {
		return ckBody{}, fmt.Errorf("%w: unknown version %q", errCorruptCheckpoint, f[1])
	}
	want, err := strconv.ParseUint(string(f[2]), 16, 32)
	if err != nil {
		return ckBody{}, fmt.Errorf("%w: bad checksum field", errCorruptCheckpoint)
	}
	body = bytes.TrimSuffix(body, []byte{'\n'})
	if got := crc32.Checksum(body, castagnoli); uint64(got) != want {
		return ckBody{}, fmt.Errorf("%w: checksum %08x, want %08x", errCorruptCheckpoint, got, want)
	}
	var cb ckBody
	if err := json.Unmarshal(body, &cb); err != nil {
		return ckBody{}, fmt.Errorf("%w: %v", errCorruptCheckpoint, err)
	}
	return cb, nil
}

// loadCheckpoints reads dir's checkpoint file; a missing file is no
// checkpoints.
func loadCheckpoints(dir string) (ckBody, error) {
	b, err := os.ReadFile(filepath.Join(dir, checkpointFile))
	if errors.Is(err, fs.ErrNotExist) {
		return ckBody{}, nil
	}
	if err != nil {
		return ckBody{}, fmt.Errorf("read checkpoint: %w", err)
	}
	return decodeCheckpoint(b)
}

// saveCheckpoints replaces dir's checkpoint file crash-safely.
func saveCheckpoints(dir string, entries []ckEntry, mark []byte) error {
	b, err := encodeCheckpoint(entries, mark)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, fsutil.PrivateDir); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, checkpointFile), b, fsutil.PrivateFile); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}
