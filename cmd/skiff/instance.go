package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/skiff-dev/skiff/internal/fsutil"
)

// instanceKey returns the short key that starts every record ID. With a
// pod UID it is derived from that (stable across restarts of the same pod,
// distinct across pods); without one it comes from a random ID kept in the
// data dir, created on first start.
func instanceKey(podUID, dataDir string) (string, error) {
	id := podUID
	if id == "" {
		var err error
		if id, err = loadOrCreateInstanceID(filepath.Join(dataDir, "instance-id")); err != nil {
			return "", err
		}
	}
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:8]), nil
}

func loadOrCreateInstanceID(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if id := strings.TrimSpace(string(b)); len(id) == 32 {
			return id, nil
		}
		// A torn or edited file: a new ID only costs deduplication across
		// this one restart, never data.
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read instance id: %w", err)
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("generate instance id: %w", err)
	}
	id := hex.EncodeToString(raw[:])
	if err := fsutil.WriteFileAtomic(path, []byte(id+"\n"), fsutil.PrivateFile); err != nil {
		return "", fmt.Errorf("write instance id: %w", err)
	}
	return id, nil
}
