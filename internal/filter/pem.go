package filter

import "bytes"

var (
	pemEnd     = []byte("-----END ")
	pemPrivate = []byte("PRIVATE KEY")
)

// pemBlock matches the body of a PEM private key block, -----BEGIN … PRIVATE
// KEY----- up to -----END, keeping both armour lines. Without the END line
// in this record, the rest of the record is the body, and the records that
// follow are too while they look like one (see pemContinued): a key logged
// line by line without SKIFF_MULTILINE_START still goes.
func pemBlock(st *Stream, s []byte, p int) {
	h := p + len("-----BEGIN")
	if h >= len(s) || s[h] != ' ' {
		return
	}
	e := bytes.Index(s[h:min(len(s), h+64)], []byte("-----"))
	if e < 0 {
		return
	}
	label := s[h+1 : h+e]
	if !bytes.Contains(label, pemPrivate) {
		return
	}
	for _, c := range label {
		if class[c]&(clUpper|clDigit) == 0 && c != ' ' {
			return
		}
	}
	body := h + e + 5
	b0 := skipPEMSpace(s, body, len(s))
	if end := bytes.Index(s[body:], pemEnd); end >= 0 {
		endAt := body + end
		if b1 := trimPEMSpace(s, b0, endAt); b1 > b0 {
			st.add(b0, b1, detPrivateKey)
		}
		st.skip = max(st.skip, endAt)
		return
	}
	if b1 := trimPEMSpace(s, b0, len(s)); b1 > b0 {
		st.add(b0, b1, detPrivateKey)
	}
	st.inPEM = true
	st.skip = len(s)
}

// pemContinued handles a record that follows one whose PEM private key
// block had no END line: up to an END line, or the whole record while it
// looks like a PEM body (base64 and the Proc-Type/DEK-Info headers), is
// body. Any other record ends the block and is filtered as usual.
func (f *Filter) pemContinued(st *Stream, s []byte) {
	if end := bytes.Index(s, pemEnd); end >= 0 {
		st.inPEM = false
		b0 := skipPEMSpace(s, 0, end)
		if b1 := trimPEMSpace(s, b0, end); b1 > b0 {
			st.add(b0, b1, detPrivateKey)
		}
		st.skip = max(st.skip, end)
		return
	}
	if !pemBodyLike(s) {
		st.inPEM = false
		return
	}
	b0 := skipPEMSpace(s, 0, len(s))
	if b1 := trimPEMSpace(s, b0, len(s)); b1 > b0 {
		st.add(b0, b1, detPrivateKey)
	}
	st.skip = len(s)
}

func pemBodyLike(s []byte) bool {
	if bytes.HasPrefix(s, []byte("Proc-Type:")) || bytes.HasPrefix(s, []byte("DEK-Info:")) {
		return true
	}
	for _, c := range s {
		if class[c]&clB64 == 0 && c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// skipPEMSpace skips white space and escaped line breaks (\n in a JSON
// string) from i, up to lim.
func skipPEMSpace(s []byte, i, lim int) int {
	for i < lim {
		switch {
		case s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n':
			i++
		case s[i] == '\\' && i+1 < lim && (s[i+1] == 'n' || s[i+1] == 'r' || s[i+1] == 't'):
			i += 2
		default:
			return i
		}
	}
	return i
}

// trimPEMSpace returns the end of s[from:to] less trailing white space and
// escaped line breaks.
func trimPEMSpace(s []byte, from, to int) int {
	for to > from {
		switch {
		case s[to-1] == ' ' || s[to-1] == '\t' || s[to-1] == '\r' || s[to-1] == '\n':
			to--
		case to-2 >= from && s[to-2] == '\\' && (s[to-1] == 'n' || s[to-1] == 'r' || s[to-1] == 't'):
			to -= 2
		default:
			return to
		}
	}
	return to
}
