package buffer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// lockFile is held (flock, exclusive) from Open to Close so that two
// processes never write one buffer. The kernel releases it when the
// process dies, so a crash never leaves it stale.
const lockFile = "LOCK"

// ErrLocked is returned by Open when another process has the buffer open.
var ErrLocked = errors.New("buffer directory is in use by another process")

func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		// A read-only volume cannot create it; reading is still safe.
		if errors.Is(err, unix.EROFS) {
			return nil, nil
		}
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = f.Close() // the lock error is what matters
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("lock: %w", err)
	}
	return f, nil
}
