//go:build !linux

package buffer

import (
	"errors"
	"os"
)

// ErrLocked is returned by Open when another process has the buffer open.
var ErrLocked = errors.New("buffer directory is in use by another process")

// lockDir does nothing where flock is not used.
func lockDir(string) (*os.File, error) { return nil, nil }
