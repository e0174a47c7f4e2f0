// Package record is skiff's record model: one log line (or one piece of a
// long line) with where it came from, when it was collected, and the
// stable ID a consumer deduplicates on.
//
// A Record travels through the buffer in a compact binary form
// (AppendBinary/Decode) and leaves skiff as JSON (Encoder). The binary form
// carries only what varies per line; static fields and pod identity are
// added by the Encoder at delivery time, so they cost no buffer space.
//
// Records and Encoders are plain values. An Encoder is safe for concurrent
// use once built; a Record is not.
package record
