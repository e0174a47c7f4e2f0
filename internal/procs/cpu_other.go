//go:build !unix

package procs

import (
	"errors"
	"time"
)

// processCPU is not implemented here: the Governor stays at one P.
func processCPU() (time.Duration, error) {
	return 0, errors.New("no getrusage on this system")
}
