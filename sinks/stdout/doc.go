// Package stdout is the sink that writes records to the process's
// standard output, one per line: skiff's JSON form of the record, or the
// line as read (FORMAT=raw). It is the default sink.
//
// Guarantees: a batch is written with one Write call, so a reader of a
// pipe sees whole lines and the lines of two batches never interleave.
// A batch is delivered once Write returned without error; what happens to
// the bytes after that (a pipe, a terminal, a container runtime's log
// file) is outside skiff. A failed Write is a KindNetwork SendError and
// the delivery loop retries the whole batch, so a reader may see a line
// twice (at-least-once).
//
// Concurrency: Send is safe for concurrent use; concurrent Sends are
// serialised. New starts nothing and Close does nothing (the process owns
// its stdout).
//
// Like every backend package it is named after its directory and holds one
// Sink type built by New.
package stdout
