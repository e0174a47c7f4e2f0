package filter

import (
	"bytes"
	"encoding/base64"
)

// Character classes.
const (
	clDigit = 1 << iota
	clUpper
	clLower
	clB64url  // A-Z a-z 0-9 - _
	clKey     // A-Z a-z 0-9 _ . -   (a key in key=value)
	clToken68 // A-Z a-z 0-9 - . _ ~ + /   (RFC 7235 credentials, less the = padding)
	clB64     // A-Z a-z 0-9 + / =   (a PEM body)
)

var class = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		var v uint8
		switch {
		case b >= '0' && b <= '9':
			v = clDigit
		case b >= 'A' && b <= 'Z':
			v = clUpper
		case b >= 'a' && b <= 'z':
			v = clLower
		}
		if v != 0 {
			v |= clB64url | clKey | clToken68 | clB64
		}
		switch b {
		case '-':
			v |= clB64url | clKey | clToken68
		case '_':
			v |= clB64url | clKey | clToken68
		case '.':
			v |= clKey | clToken68
		case '~':
			v |= clToken68
		case '+', '/':
			v |= clToken68 | clB64
		case '=':
			v |= clB64
		}
		t[c] = v
	}
	return t
}()

func isDigit(c byte) bool   { return class[c]&clDigit != 0 }
func isAlnum(c byte) bool   { return class[c]&(clDigit|clUpper|clLower) != 0 }
func isAlpha(c byte) bool   { return class[c]&(clUpper|clLower) != 0 }
func isCardSep(c byte) bool { return c == ' ' || c == '-' }

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

// run returns the end of the run of class cl starting at s[i].
func run(s []byte, i int, cl uint8) int {
	for i < len(s) && class[s[i]]&cl != 0 {
		i++
	}
	return i
}

// jwt matches header.payload[.signature[...]] where the header starts with
// eyJ (a JSON object), has at least 10 characters, and the payload at
// least 2; JWE's five parts are taken too.
func jwt(st *Stream, s []byte, p int) {
	if p > 0 && class[s[p-1]]&clB64url != 0 {
		return
	}
	if p > 1 && s[p-1] == '.' && class[s[p-2]]&clB64url != 0 {
		return // a later part of a dotted token that was not one
	}
	e := run(s, p, clB64url)
	if e-p < 10 || e >= len(s) || s[e] != '.' || !jsonObjectB64(s[p:e]) {
		return
	}
	end := run(s, e+1, clB64url)
	if end-(e+1) < 2 {
		return
	}
	// A signature may be empty (alg none): the second dot belongs to the
	// token even with nothing after it; later dots only with a part.
	for parts := 2; parts < 5 && end < len(s) && s[end] == '.'; parts++ {
		next := run(s, end+1, clB64url)
		if next == end+1 && parts > 2 {
			break
		}
		end = next
	}
	st.add(p, end, detJWT)
}

// jsonObjectB64 reports whether b64, unpadded base64url, decodes to what
// looks like a JSON object: {" first and } last (white space aside).
func jsonObjectB64(b64 []byte) bool {
	var buf [384]byte
	if len(b64) > len(buf)*4/3 {
		return true // too long to check here; the eyJ and the dots must do
	}
	n, err := base64.RawURLEncoding.Decode(buf[:], b64)
	if err != nil {
		return false
	}
	d := bytes.TrimRight(buf[:n], " \t\r\n")
	return len(d) >= 2 && d[0] == '{' && d[1] == '"' && d[len(d)-1] == '}'
}

// awsKeyID matches a 20-character access key ID: a known prefix and upper
// case letters and digits, standing alone.
func awsKeyID(st *Stream, s []byte, p, prefix int) {
	if p > 0 && isAlnum(s[p-1]) || p+20 > len(s) {
		return
	}
	for k := p + prefix; k < p+20; k++ {
		if class[s[k]]&(clUpper|clDigit) == 0 {
			return
		}
	}
	if p+20 < len(s) && isAlnum(s[p+20]) {
		return
	}
	st.add(p, p+20, detAWSKeyID)
}

// githubToken matches ghp_ (and gho_, ghu_, ghs_, ghr_) with at least 30
// letters and digits, and github_pat_ with at least 40 of [A-Za-z0-9_].
func githubToken(st *Stream, s []byte, p, prefix int) {
	if p > 0 && class[s[p-1]]&clB64url != 0 {
		return
	}
	fine := prefix > 4 // github_pat_
	e := p + prefix
	for e < len(s) && (isAlnum(s[e]) || fine && s[e] == '_') {
		e++
	}
	least := 30
	if fine {
		least = 40
	}
	if e-(p+prefix) < least || e < len(s) && class[s[e]]&clB64url != 0 {
		return
	}
	st.add(p, e, detGitHub)
}

func gitlabChar(c byte) bool { return isAlnum(c) || c == '_' || c == '-' || c == '.' }
func slackChar(c byte) bool  { return isAlnum(c) || c == '-' || c == '.' }

// prefixedToken matches a literal prefix followed by at least least
// characters of ok, standing alone; a trailing dot or dash is punctuation.
func prefixedToken(st *Stream, s []byte, p, prefix, least int, ok func(byte) bool, id detector) {
	if p > 0 && (isAlnum(s[p-1]) || s[p-1] == '_') {
		return
	}
	e := p + prefix
	for e < len(s) && ok(s[e]) {
		e++
	}
	for e > p+prefix && (s[e-1] == '.' || s[e-1] == '-') {
		e--
	}
	if e-(p+prefix) < least {
		return
	}
	st.add(p, e, id)
}

// slackHook matches the secret path of an incoming webhook URL,
// hooks.slack.com/services/T…/B…/…, keeping the host.
func slackHook(st *Stream, s []byte, p, prefix int) {
	b := p + prefix
	e := b
	for e < len(s) && (isAlnum(s[e]) || s[e] == '/' || s[e] == '_' || s[e] == '-') {
		e++
	}
	if e-b >= 20 {
		st.add(b, e, detSlack)
	}
}

// urlPassword matches the password of scheme://user:password@host: the
// text after the first colon of the user info up to the last @ before the
// path. A user without a password is left alone.
func urlPassword(st *Stream, s []byte, p int) {
	if p == 0 || !isAlpha(s[p-1]) {
		return
	}
	u := p + 3
	at := -1
	for t := u; t < len(s); t++ {
		c := s[t]
		if c == '@' {
			at = t
			continue
		}
		if c <= ' ' || c == '/' || c == '?' || c == '#' || c == '"' || c == '\'' || c == '<' || c == '>' || c == '\\' || c == '`' {
			break
		}
	}
	if at < 0 {
		return
	}
	colon := bytes.IndexByte(s[u:at], ':')
	if colon < 0 || u+colon+1 >= at {
		return
	}
	st.addGeneric(u+colon+1, at, detURLPassword, false)
}

// bearer matches the credentials after "Bearer " (or %20 or + encoded)
// when they look like a token (see tokenLike).
func bearer(st *Stream, s []byte, p, n int) {
	if p > 0 && isAlnum(s[p-1]) {
		return
	}
	k := p + n
	switch {
	case k < len(s) && s[k] == ' ':
		for k < len(s) && s[k] == ' ' {
			k++
		}
	case k < len(s) && s[k] == '+':
		k++
	case k+3 <= len(s) && string(s[k:k+3]) == "%20":
		k += 3
	default:
		return
	}
	e := credentials(s, k)
	if !tokenLike(s[k:e]) {
		return
	}
	st.addGeneric(k, e, detBearer, false)
}

// credentials returns the end of RFC 7235 token68 credentials at s[k:]:
// token characters, then "=" padding only at the end.
func credentials(s []byte, k int) int {
	e := run(s, k, clToken68)
	for e < len(s) && s[e] == '=' {
		e++
	}
	if e < len(s) && class[s[e]]&clToken68 != 0 {
		return k // "=" inside: a key=value, not credentials
	}
	return e
}

// tokenLike tells credentials from words: at least 8 characters, and a
// digit, a symbol or an upper case letter after the first. "Bearer
// authentication" and "Bearer Token" are not tokens.
func tokenLike(t []byte) bool {
	if len(t) < 8 {
		return false
	}
	for i, c := range t {
		if isDigit(c) || !isAlpha(c) || i > 0 && class[c]&clUpper != 0 {
			return true
		}
	}
	return false
}
