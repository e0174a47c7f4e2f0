package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

// Segment header layout, version 1 (see FORMAT.md). Every version keeps the
// magic at 0:4, the version at 4:6 and, at 20:24, a CRC-32C of bytes 0:20,
// so that a newer header can be told apart from a damaged one.
const (
	segmentHeaderSize = 24
	segmentVersion    = 1
	segmentSuffix     = ".seg"
	corruptSuffix     = ".corrupt"
)

var segmentMagic = [4]byte{'S', 'K', 'F', 'B'}

var (
	errShortHeader = errors.New("short segment header")
	errBadHeader   = errors.New("bad segment header")
)

// segmentName returns the file name of segment id: 20 digits so that names
// sort like numbers.
func segmentName(id uint64) string { return fmt.Sprintf("%020d%s", id, segmentSuffix) }

// parseSegmentName returns the ID in a segment file name.
func parseSegmentName(name string) (uint64, bool) {
	s, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(s) != 20 {
		return 0, false
	}
	id, err := strconv.ParseUint(s, 10, 64)
	return id, err == nil
}

// encodeSegmentHeader returns the header of a segment whose first record
// has sequence number firstSeq.
func encodeSegmentHeader(firstSeq uint64) []byte {
	b := make([]byte, segmentHeaderSize)
	copy(b[0:4], segmentMagic[:])
	binary.LittleEndian.PutUint16(b[4:6], segmentVersion)
	binary.LittleEndian.PutUint64(b[8:16], firstSeq)
	binary.LittleEndian.PutUint32(b[20:24], crc32.Checksum(b[0:20], castagnoli))
	return b
}

// decodeSegmentHeader parses a segment header. A header whose magic and
// checksum are valid but whose version is newer returns *VersionError; any
// other damage returns errShortHeader or errBadHeader.
func decodeSegmentHeader(b []byte) (firstSeq uint64, err error) {
	if len(b) < segmentHeaderSize {
		return 0, errShortHeader
	}
	if [4]byte(b[0:4]) != segmentMagic {
		return 0, errBadHeader
	}
	if crc32.Checksum(b[0:20], castagnoli) != binary.LittleEndian.Uint32(b[20:24]) {
		return 0, errBadHeader
	}
	if v := binary.LittleEndian.Uint16(b[4:6]); v != segmentVersion {
		if v > segmentVersion {
			return 0, &VersionError{Version: v, Supported: segmentVersion}
		}
		return 0, errBadHeader
	}
	return binary.LittleEndian.Uint64(b[8:16]), nil
}
