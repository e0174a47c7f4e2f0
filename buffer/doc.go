// Package buffer is skiff's bounded, crash-safe, on-disk log: records
// appended by the tailer are kept in segment files until every sink's
// cursor has durably moved past them.
//
// (Full guarantees and concurrency contract: see the end of this work.)
package buffer
