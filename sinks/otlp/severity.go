package otlp

import "fmt"

// numberScheme says what a numeric level means (SEVERITY_NUMBERS).
type numberScheme uint8

const (
	numbersSyslog numberScheme = iota // RFC 5424: 0 emergency … 7 debug
	numbersOTel                       // 1–24: the SeverityNumber itself
	numbersBunyan                     // pino and bunyan: 10 trace … 60 fatal
)

func parseNumberScheme(s string) (numberScheme, error) {
	switch s {
	case "syslog", "":
		return numbersSyslog, nil
	case "otel":
		return numbersOTel, nil
	case "bunyan":
		return numbersBunyan, nil
	}
	return 0, fmt.Errorf("unknown SEVERITY_NUMBERS %q", s)
}

// severityNames maps level names, lowercased, to SeverityNumbers: the
// data model's short names (TRACE … FATAL4) and the other names of its
// Appendix B ("SeverityNumber example mappings": syslog, Log4j, Zap,
// java.util.logging, .NET, Windows).
var severityNames = map[string]int32{
	"trace": 1, "trace2": 2, "trace3": 3, "trace4": 4, "finest": 1,
	"debug": 5, "debug2": 6, "debug3": 7, "debug4": 8, "verbose": 5, "finer": 5, "fine": 6, "config": 7,
	"info": 9, "info2": 10, "info3": 11, "info4": 12, "information": 9, "informational": 9, "notice": 10,
	"warn": 13, "warn2": 14, "warn3": 15, "warn4": 16, "warning": 13,
	"error": 17, "error2": 18, "error3": 19, "error4": 20, "err": 17, "severe": 17,
	"critical": 18, "crit": 18, "dpanic": 18, "alert": 19, "panic": 19,
	"fatal": 21, "fatal2": 22, "fatal3": 23, "fatal4": 24, "emergency": 21, "emerg": 21,
}

// longestSeverityName bounds the lowercasing buffer.
const longestSeverityName = len("informational")

// severityNumber maps a level value (a string's content, or a number's
// text) to its SeverityNumber; 0 (UNSPECIFIED) when it has none. A
// string holding an integer counts as that number.
func severityNumber(v []byte, scheme numberScheme) int32 {
	if n, ok := parseInt(v); ok {
		return numberSeverity(n, scheme)
	}
	if len(v) > longestSeverityName {
		return 0
	}
	var lower [longestSeverityName]byte
	for i, c := range v {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	return severityNames[string(lower[:len(v)])] // no allocation: a map lookup by a converted slice
}

// numberSeverity maps a numeric level under scheme.
func numberSeverity(n int64, scheme numberScheme) int32 {
	switch scheme {
	case numbersOTel:
		if n >= 1 && n <= 24 {
			return int32(n)
		}
	case numbersBunyan:
		if n >= 10 && n < 70 {
			return [...]int32{1, 5, 9, 13, 17, 21}[n/10-1]
		}
	default:
		if n >= 0 && n <= 7 {
			return [...]int32{21, 19, 18, 17, 13, 10, 9, 5}[n]
		}
	}
	return 0
}
