// Package record is skiff's record model: one log record — a line (or one
// piece of a long line) of a tailed file, or a record an application sent
// to the ingest endpoints — with where it came from (Origin), when it was
// collected, and the stable ID a consumer deduplicates on.
//
// A Record travels through the buffer in a compact binary form
// (AppendBinary/Decode, described in FORMAT.md) and leaves skiff as JSON
// (Encoder). The binary form carries only what varies per record; static
// fields and pod identity are added by the Encoder at delivery time, so they
// cost no buffer space. A record received over OTLP keeps its resource,
// scope and LogRecord fields as the protobuf bytes the client sent
// (OTLPParts), which an OTLP sink copies through unchanged and the Encoder
// renders as JSON.
//
// Records and Encoders are plain values. An Encoder is safe for concurrent
// use once built; a Record is not.
package record
