// Package buffer is skiff's bounded, crash-safe, on-disk log. The tailer
// appends records to it; each sink reads them through its own Cursor at its
// own pace; a segment file is deleted once every cursor has moved
// past it. The on-disk format is described in FORMAT.md.
//
// # Guarantees
//
//   - Framing: every record is framed with its length and a CRC-32C over
//     length and payload. A reader never hands out a record whose CRC fails.
//   - Group commit: an Append batch is one write (two if it crosses a
//     segment boundary) and, under Fsync "batch", one fdatasync. A failed
//     fsync is never retried: the batch is cut off the segment, the segment
//     is sealed, and the batch is written again to a new segment. Under
//     "interval" a failed fsync (of the active segment or of a sealed one
//     waiting for Sync) fails that Sync; the next Sync appends the
//     segment's records again, into a new segment, and succeeds only once
//     an fsync covers the copies. Readers get those records twice.
//     AppendBatch is the same for records the caller laid out in a Batch
//     (header room before each payload): it fills the headers in place and
//     writes the Batch's memory, copying nothing. AppendAll appends a Batch
//     whole or not at all: one write into one segment (a new one when the
//     active one has no room left), so that an acknowledged request of the
//     ingest endpoints is never half in the buffer.
//   - Acknowledgement: when Append returns nil its records are readable by
//     cursors and in the page cache, so a process crash (SIGKILL, OOM kill)
//     loses none of them under any policy. Only power or kernel loss can lose
//     acknowledged records, and only those not yet covered by an fsync: under
//     "batch" none; under "interval" at most FsyncInterval's worth; under
//     "never" whatever the kernel had not written back. Sync fsyncs what was
//     appended before it (except under "never"); the tailer writes its
//     checkpoints only after a Sync, so a power loss means re-reading lines
//     (duplicates), never losing them. Sync fsyncs, in order, the sealed
//     segments that wait for it, the active one and, if segments were
//     created since, the directory; only when all succeed does it return
//     nil. Under "batch" sealing a segment needs no fsync (each write had
//     one) and a new segment is made durable (header, then directory) before
//     a record goes in. Under "interval" neither happens on the append path:
//     both wait for the next Sync (Run calls it every FsyncInterval), and at
//     most 16 sealed segments wait (sealing a 17th fsyncs the oldest); Open
//     fsyncs the newest sealed segments and the directory, in case a crashed
//     process left them unsynced. Under "never" nothing is fsynced.
//   - Torn segments: after a power loss, under "batch" only the last segment
//     can be torn; under "interval" every segment not yet covered by a Sync
//     can be, so records may survive after lost ones. Readers skip what is
//     corrupt; Replay (how the tailer finds the lines that reached the buffer
//     after its checkpoint) stops at the first corrupt region, truncated
//     segment or break in the sequence numbers, so the tailer reads the lost
//     lines again (duplicates) instead of resuming after them.
//   - File system order: a new segment's header is fsynced and then its
//     directory (under "batch" at once, otherwise by the next Sync); every
//     rename and delete is followed by a directory fsync.
//   - Cursors: Commit writes the position into one of two checksummed slots
//     of the cursor file, in place, with one write and no fsync, so a
//     process crash loses no commit. The cursor files are fsynced on the
//     buffer's schedule: by every Sync (Run's, every FsyncInterval under
//     "interval" and "batch"; the tailer's; Close's), never under "never".
//     A commit never overwrites the slot holding the newest fsynced
//     position, so a power loss makes a cursor fall back at most to the
//     position of the last fsync, even if it tears the slot being written:
//     the sink repeats at most one fsync interval of delivered records. A
//     new file (new sink, version-1 file upgraded at Open, damaged file) is
//     written whole: temp file, fsync, rename, directory fsync. Delivery is
//     at-least-once: a sink that commits after its destination acknowledged
//     sees each record at least once, duplicates only after a crash or a
//     damaged cursor.
//   - GC: a segment is deleted only after every cursor's committed position
//     is past it (fsynced or not: a cursor that falls back after a power
//     loss into a deleted segment resumes at the oldest segment left, which
//     is at or before its committed position, so it skips only delivered
//     records). Cursors of sinks no longer configured are dropped at Open;
//     the backlog they leave is logged and counted
//     (skiff_buffer_abandoned_records_total). A new cursor starts at the
//     oldest retained record.
//   - Bound: segment files never take more than MaxBytes on disk, counted in
//     whole 4 KiB blocks (cursor files, a few dozen bytes each, are not
//     counted). When an Append would exceed it, WhenFull decides: "block"
//     waits (the log files being tailed are the backlog; nothing is lost);
//     "drop_oldest" moves lagging cursors past the oldest segment and deletes
//     it, counting each record a sink skips in
//     skiff_buffer_dropped_records_total{reason="buffer_full"}; "drop_newest"
//     refuses the records that do not fit, counted the same way for every
//     sink. Until the bound is reached no sink waits for another.
//   - Disk errors: a write that fails (ENOSPC, EROFS, EIO) is cut back and
//     retried with backoff; Append waits, Err reports the condition (for
//     readiness and skiff_buffer_disk_error), and it clears by itself once a
//     write succeeds. Nothing already buffered is lost. When the volume is
//     full below the bound (other files share it) and every cursor has
//     committed all of the active segment, that segment is sealed and
//     deleted at once to make room; a cursor waiting for records holds no
//     descriptor of a segment it has finished, so deleted segments free
//     their blocks at once.
//   - Recovery (Open) never refuses to start over damaged data: temp files
//     are removed; a torn tail of the last segment is cut off at the first
//     frame that is short or fails its CRC; a segment whose header is damaged
//     is renamed *.corrupt (kept, charged to the bound, deleted first when
//     space is short); a corrupt frame inside a sealed segment is skipped by
//     readers, which resynchronise on the next valid frame, count it
//     (skiff_buffer_corrupt_records_total, dropped{reason="corrupt"}) and log
//     it once; a damaged cursor file restarts its sink at the oldest retained
//     record (duplicates, not loss); a cursor past the durable end (after a
//     power loss) is moved to the end. Open fails only on I/O errors and on
//     files of a newer format version (*VersionError), which it leaves
//     untouched so that rolling the binary forward again loses nothing.
//   - Memory: readers stream from disk; a Next call holds at most maxBytes
//     plus one record. Once a consumer has called Release, its cursor keeps
//     at most 4 released batches for reuse and tracks the last 32 it lent. Open reads the headers of sealed segments and scans
//     only the last segment, in 1 MiB chunks.
//   - Hot window: the batches appended last stay in memory, as their
//     appender laid them out (AppendBatch takes the Batch's memory and
//     gives it other memory; nothing is copied), and a cursor whose next
//     record is among them gets its records from there: no read, no copy,
//     no CRC check of bytes this process framed itself. A chunk of the
//     window is exactly what was written at its position, looked up only
//     where the segment's published extent says a record is, so both paths
//     hand out the same records; everything older, everything after a
//     restart and everything for a cursor that fell behind comes from
//     disk, the source of truth. A batch leaves the window as soon as
//     every cursor has read past it, and the oldest leave while the window
//     holds more than Options.HotBytes (4 MiB by default); a batch larger
//     than half of that is not kept, and nothing is kept while every
//     cursor is further behind than that (it would read from disk anyway:
//     a bulk backlog). Memory lent to a consumer is reused
//     only once it is released (skiff_buffer_read_records_total counts the
//     records read from each source).
//
// # Concurrency
//
// Open and the constructors start no goroutine. Run (one call, owned by the
// caller) fsyncs under "interval" (and the cursor files under "batch"),
// starts the writeback of what appends
// wrote (every 8 MiB, unless "batch"), and returns when its ctx is done;
// without Run the Log stays correct, with fsyncs left to Sync and Close and
// writeback to the kernel. Append,
// AppendBatch, AppendAll, Sync, Stats, Err and Cursor are safe for concurrent use;
// appends are serialised (single writer) and Sync does not block them
// (sealing a segment does not wait for an fsync in progress), except while
// it writes again the records of a segment whose fsync failed. A Batch
// belongs to its caller; AppendBatch (and AppendAll) may keep the memory
// the Batch held when it was called, for the hot window, and then leave
// the Batch empty with other memory: the caller refills it as it likes
// once the call returns (after a failed call it finds its records still
// in it), and keeps no slice of its earlier memory. Each
// Cursor
// belongs to one consumer: Next must not be called concurrently with itself,
// but Commit and Lag may be called from other goroutines (for example by a
// delivery loop with several batches in flight that commits in order).
// Records returned by Next stay valid after later calls, until the consumer
// hands a batch back with Release (optional, safe from any goroutine): a
// later Next may then reuse that batch's memory, and never the memory of a
// batch not yet released. Close wakes blocked
// Append and Next calls with ErrClosed; no method may be used after it
// except Close, which then returns ErrClosed.
//
// Cancelling the ctx of Append while it waits makes it return ctx.Err();
// a prefix of the batch may have been appended, so the caller treats the
// batch as failed and may append duplicates. AppendAll appends nothing in
// that case, and says why it waited (ErrFull or the write error). Cancelling the ctx of Next
// loses nothing: nothing was consumed until Commit.
package buffer
