//go:build !linux

package buffer

import "os"

// datasync flushes f to stable storage.
func datasync(f *os.File) error { return f.Sync() }

// writeback does nothing where sync_file_range does not exist.
func writeback(*os.File, int64, int64) error { return nil }
