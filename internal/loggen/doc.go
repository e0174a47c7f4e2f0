// Package loggen generates and verifies skiff's test log lines: every line
// carries its stream, a sequence number and a checksum, so a checker that
// sees what came out of skiff can tell missing, duplicated and corrupted
// lines apart.
//
// # Line format
//
// Plain lines (FormatPlain) are, without the trailing newline:
//
//	[ts=<time> ]stream=<id> seq=<n> crc=<8 hex>[ <padding>]
//
// JSON lines (FormatJSON) carry the same values as one flat object, keys in
// this order, no spaces:
//
//	{["ts":"<time>",]"stream":"<id>","seq":<n>,"crc":"<8 hex>","pad":"<padding>"}
//
// where
//   - <time> is optional, UTC, always 30 bytes: 2006-01-02T15:04:05.000000000Z
//     (the time the generator formatted the line; not covered by crc);
//   - <id> is 1–64 bytes of [A-Za-z0-9_.-];
//   - <n> is the decimal sequence number, starting at 1 in each stream and
//     increasing by one per line;
//   - <padding> is zero or more bytes of [A-Za-z0-9] that bring the line to
//     the requested size (a line is never shorter than its header);
//   - crc is the lowercase hex CRC-32C (Castagnoli) of the bytes
//     "<id> <n> <padding>" (single spaces; the padding may be empty).
//
// Parse and Decode accept both formats, and JSON objects whose keys were
// reordered or re-spaced by a shipper (they fall back to encoding/json).
//
// # Concurrency
//
// AppendLine, Parse and Decode are pure functions, safe for concurrent use.
// A Checker is not safe for concurrent use. A Generator's Run may be called
// once; its Stats are safe to read concurrently.
package loggen
