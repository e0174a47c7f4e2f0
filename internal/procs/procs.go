// Package procs chooses how many threads run skiff's Go code at once
// (GOMAXPROCS) from the process's own CPU use.
//
// At the rates a pod logs, one P is cheapest: with a second one idle,
// every hand-off between skiff's goroutines (tailer, buffer, sink, HTTP
// client) makes the runtime wake a thread that finds nothing to do and
// sleeps again, a fifth of skiff's CPU at 500-2,000 lines/s. In bulk (a
// backlog after an outage, a burst, files found at start) one P is the
// bottleneck: skiff is CPU-bound on it while the other cores idle, and
// ships a quarter to a third slower than with the runtime's default
// (docs/BENCHMARKS.md, "Cost at live rates" and "Bulk"). So the Governor
// starts at one P, moves to the runtime's default while the process keeps
// a core busy, and goes back to one once it is quiet again.
//
// A CPU limit below one core never reaches the raise threshold, so such a
// pod stays on one P, where the runtime's default (at least two) would
// burn its quota on threads that wait for each other.
package procs

import (
	"context"
	"log/slog"
	"runtime"
	"time"
)

// MaxBusy is the most Ps worth giving skiff when it is busy: its pipeline
// (tailer, buffer, a sink's encoding and requests) keeps about two cores
// busy in bulk, and on a large node the runtime's default would be one P
// per core of the node.
const MaxBusy = 4

// Defaults of Options.
const (
	DefaultInterval   = 250 * time.Millisecond
	DefaultRaise      = 0.6
	DefaultLower      = 0.3
	DefaultLowerAfter = 8
)

// Options configure a Governor. Zero values take the defaults.
type Options struct {
	// Max is the number of Ps while busy: the runtime's default (its
	// GOMAXPROCS before the Governor set 1). At most 1 turns the
	// Governor into a constant 1.
	Max int
	// Interval is how often the process's CPU time is read.
	Interval time.Duration
	// Raise is the share of one core (CPU time over an Interval) at or
	// above which Max Ps are used.
	Raise float64
	// Lower is the share of one core below which, for LowerAfter
	// Intervals in a row, the Governor goes back to one P. Well below
	// Raise, so that the extra cost of a second P at a given rate does
	// not flip it back and forth.
	Lower float64
	// LowerAfter is how many quiet Intervals in a row lower it.
	LowerAfter int

	// cpu returns the process's CPU time (user and system) so far; set
	// returns the previous GOMAXPROCS and sets a new one. Tests replace
	// them.
	cpu func() (time.Duration, error)
	set func(int) int
}

func (o *Options) defaults() {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Raise <= 0 {
		o.Raise = DefaultRaise
	}
	if o.Lower <= 0 {
		o.Lower = DefaultLower
	}
	if o.LowerAfter <= 0 {
		o.LowerAfter = DefaultLowerAfter
	}
	if o.cpu == nil {
		o.cpu = processCPU
	}
	if o.set == nil {
		o.set = runtime.GOMAXPROCS
	}
}

// Governor sets GOMAXPROCS from the process's CPU use (see the package
// comment). New starts nothing; Run owns its one goroutine's work.
type Governor struct {
	o   Options
	log *slog.Logger
}

// New returns a Governor; call Run to start it.
func New(o Options, log *slog.Logger) *Governor {
	o.defaults()
	return &Governor{o: o, log: log}
}

// Run sets one P and then follows the process's CPU use until ctx is
// done; it returns with GOMAXPROCS at one P. Without a way to read the
// process's CPU time it stays at one P.
func (g *Governor) Run(ctx context.Context) {
	g.o.set(1)
	if g.o.Max <= 1 {
		return
	}
	last, err := g.o.cpu()
	if err != nil {
		g.log.Warn("reading the process's CPU time; GOMAXPROCS stays 1", "err", err)
		return
	}
	tick := time.NewTicker(g.o.Interval)
	defer tick.Stop()
	lastAt := time.Now()
	procs, quiet := 1, 0
	defer func() {
		if procs != 1 {
			g.o.set(1)
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			used, err := g.o.cpu()
			if err != nil {
				continue
			}
			share := float64(used-last) / float64(now.Sub(lastAt))
			last, lastAt = used, now
			next := g.next(procs, &quiet, share)
			if next != procs {
				g.o.set(next)
				g.log.Debug("GOMAXPROCS changed", "from", procs, "to", next, "cpu_share", share)
				procs = next
			}
		}
	}
}

// next is the decision for one Interval: share is the CPU time used in it
// as a share of one core, quiet counts the quiet Intervals in a row.
func (g *Governor) next(procs int, quiet *int, share float64) int {
	if share >= g.o.Raise {
		*quiet = 0
		return g.o.Max
	}
	if procs == 1 {
		return 1
	}
	if share >= g.o.Lower {
		*quiet = 0
		return procs
	}
	*quiet++
	if *quiet < g.o.LowerAfter {
		return procs
	}
	*quiet = 0
	return 1
}
