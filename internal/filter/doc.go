// Package filter decides, before a line is appended to skiff's buffer,
// whether it is shipped (SKIFF_DROP, SKIFF_KEEP) and what of it: Redact
// replaces secrets found by named built-in detectors (SKIFF_REDACT) and by
// custom regular expressions (SKIFF_REDACT_CUSTOM) with a marker that names
// the detector, [REDACTED:jwt]. Because the tailer (and the ingest source)
// call it before the record is built, a redacted secret never reaches the
// buffer's files on disk. docs/REDACTION.md describes every detector, what
// it matches and what it does not, and what is not covered.
//
// Cost: the built-in detectors are hand-written, not regular expressions.
// A prefilter reads the line two bytes at a time through one 64 KiB table
// that marks the byte pairs of the detectors' literals (eyJ, AKIA, ghp_,
// ://, -----BEGIN, password, ...) and digit pairs for card numbers; only
// an 8-byte word holding such a pair is looked at further. A line with no
// candidate costs a pass over that table and no allocation. Drop, keep and
// custom rules run Go's regexp engine only on lines that contain one of the
// literals every match of the rule needs (when the rule has such literals).
//
// Concurrency: a Filter is immutable once built and safe for concurrent
// use. A Stream holds the state that spans records of one source (a PEM
// block split over several records) and scratch memory; it belongs to one
// caller at a time.
package filter
