// Package otlpwire holds what skiff's three hand-written OTLP codecs share:
// the field numbers of the OTLP logs messages and a reader of one protobuf
// field. Ingest decodes requests with it, the record package renders and
// rewrites the OTLP parts of a record with it, and the OTLP sink writes
// requests and reads answers with it.
//
// The codecs are by hand (with protowire) so that requests are sliced, not
// copied, and the generated OTLP types stay out of the binary; keeping the
// field numbers in one place means the three cannot disagree about them.
//
// Everything here is a constant or a pure function, safe for concurrent use.
package otlpwire
