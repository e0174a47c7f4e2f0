// Package tailer finds log files by glob, follows each file identity
// through rotation, and appends every line to an Appender (skiff's on-disk
// buffer) as an encoded record.Record.
//
// Guarantees:
//
//   - Only files inside the globs' base directories are read: symbolic
//     links are not followed unless Options.FollowSymlinks, and then only
//     to a target inside a base directory; every open uses O_NOFOLLOW and
//     checks the real path of what it opened.
//   - Identity is (device, inode) plus the file's first bytes, never the
//     path: a file renamed within the globs is not read twice, and a new
//     file on a reused inode is read from its start.
//   - Every content generation of a file (new contents after a truncation
//     or rewrite, a new file on a reused inode) gets its own random Source,
//     kept in the checkpoint before its first record is appended, so no
//     two generations share record IDs. New contents are told from old by
//     the first bytes, the size, the bytes before the read position and
//     the file times.
//   - A file rotated away by rename, or deleted, is read to its end
//     (including lines written after the rename) before it is released:
//     at once when another non-empty file has taken its path (the writer
//     moved on), else after a second without growth if it was deleted, or
//     after CloseInactive if it was renamed. A file truncated in place
//     (copytruncate) restarts at 0, and what was not yet read is read from
//     the copy when one is found next to it.
//   - A line is shipped once it is complete, or once its file has been
//     quiet for Options.PartialFlush (then marked partial, and so is its
//     continuation, at its own offset); an unterminated last line is also
//     shipped when the file is rotated away or deleted, or at shutdown
//     (marked partial, like its continuation after a restart).
//   - Lines longer than Options.MaxLineBytes are shipped in pieces marked
//     record.FlagPartial; no line is ever held whole in memory beyond
//     that bound.
//   - Checkpoints, one per file identity, move only past lines the
//     Appender accepted, and are written (crash-safely, with a checksum)
//     only after Appender.Sync. After a crash, the lines appended since
//     the last checkpoint are read again under the same record IDs (same
//     Source and offset). Lines go missing only where no reader can get
//     them (copytruncate's window, a file deleted while skiff is down) or
//     by an opt-in limit that counts them (DeletedHoldBytes and
//     DeletedHoldTime); docs/TAILER.md lists the cases.
//   - With Options.Filter, a line it drops is never appended, yet the
//     checkpoint moves past it; a line it redacts is appended redacted
//     (record.FlagRedacted). Nothing of either reaches the Appender.
//   - When Append blocks, reading stops: nothing queues in memory beyond
//     one batch.
//   - With Options.ReadDelay, a change to a quiet file is read at most
//     ReadDelay (plus a pass) later, together with everything written to
//     every open file meanwhile, in one Append; a tailer with more to read
//     does not wait.
//
// Concurrency: New starts nothing. Run owns all reading and must be called
// once; it starts two goroutines (the inotify event pump, which with a
// ReadDelay wakes Run at most about once per delay, and, when the
// Appender is a BlockReporter, the janitor that releases deleted files held
// too long while the buffer reports itself blocked) and waits for them
// before it returns. WaitQuiet is safe to call from any goroutine
// while Run runs.
package tailer
