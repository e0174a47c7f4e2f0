package filter

import "bytes"

// keyKind is what a key's name says its value is.
type keyKind uint8

const (
	kindNone   keyKind = iota
	kindSecret         // password, secret, api key, private key, …
	kindToken          // …token: small integers (max_token=100) are not secrets
	kindPwd            // pwd: a directory (PWD=/home/app) is not a secret
	kindAWS            // an AWS secret access key, if the value has its shape
	kindAuth           // authorization: scheme and credentials
)

// keySuffixes classify a key by the end of its name, lower-cased with
// "_", "-" and "." removed; the first that matches wins.
var keySuffixes = []struct {
	suffix string
	kind   keyKind
}{
	{"authorization", kindAuth},
	{"secretaccesskey", kindAWS},
	{"awssecretkey", kindAWS},
	{"awssecret", kindAWS},
	{"password", kindSecret},
	{"passwd", kindSecret},
	{"passphrase", kindSecret},
	{"secret", kindSecret},
	{"secretkey", kindSecret},
	{"privatekey", kindSecret},
	{"apikey", kindSecret},
	{"token", kindToken},
}

// classifyKey says what key's value is. The short names pwd and pass count
// only as a whole word of the key (DB_PASS, dbPass, --pass; not bypass).
func classifyKey(key []byte) keyKind {
	var buf [64]byte
	norm := buf[:0]
	for _, c := range key {
		if isAlnum(c) && len(norm) < len(buf) {
			norm = append(norm, lower(c))
		}
	}
	for _, k := range keySuffixes {
		if bytes.HasSuffix(norm, []byte(k.suffix)) {
			return k.kind
		}
	}
	if wordSuffix(key, "pwd") {
		return kindPwd
	}
	if wordSuffix(key, "pass") {
		return kindSecret
	}
	return kindNone
}

// wordSuffix reports whether key ends with the word w (ASCII
// case-insensitive): all of key, or after _ - . or a lower-to-upper case
// change.
func wordSuffix(key []byte, w string) bool {
	n := len(key) - len(w)
	if n < 0 {
		return false
	}
	for i := 0; i < len(w); i++ {
		if lower(key[n+i]) != w[i] {
			return false
		}
	}
	if n == 0 {
		return true
	}
	b := key[n-1]
	return b == '_' || b == '-' || b == '.' || class[b]&clLower != 0 && class[key[n]]&clUpper != 0
}

// keyValue matches the value of a key whose name says it is secret:
// key=value, key: value, "key":"value" (JSON, also escaped inside a JSON
// string), key = 'value', --key value. p is where a keyword of the key's
// name was found.
func (f *Filter) keyValue(st *Stream, s []byte, p, n int) {
	ks, ke := p, p+n
	for ks > 0 && class[s[ks-1]]&clKey != 0 {
		ks--
	}
	for ke < len(s) && class[s[ke]]&clKey != 0 {
		ke++
	}
	if ke-ks > 64 || ke == st.keyEnd {
		return // too long for a key, or this key was judged (pass in password)
	}
	st.keyEnd = ke
	if ks >= 3 && string(s[ks-3:ks]) == "://" {
		return // the user of scheme://user:password@host: url_password's
	}
	kind := classifyKey(s[ks:ke])
	switch kind {
	case kindNone:
		return
	case kindAuth:
		if !f.enabled[detBearer] && !f.enabled[detBasicAuth] {
			return
		}
	case kindAWS:
		if !f.enabled[detAWSSecret] && !f.enabled[detSecretKV] {
			return
		}
	default:
		if !f.enabled[detSecretKV] {
			return
		}
	}
	i := ke
	var keyQuote byte // the key's closing quote: " or ', or \ for \"
	switch {
	case i < len(s) && (s[i] == '"' || s[i] == '\''):
		keyQuote = s[i]
		if ks == 0 || s[ks-1] != keyQuote {
			return
		}
		i++
	case i+1 < len(s) && s[i] == '\\' && s[i+1] == '"':
		keyQuote = '\\'
		if ks < 2 || s[ks-1] != '"' || s[ks-2] != '\\' {
			return
		}
		i += 2
	}
	j := skipSpaces(s, i)
	var sep byte
	switch {
	case j < len(s) && (s[j] == '=' || s[j] == ':'):
		sep = s[j]
		j++
		if j < len(s) && (sep == '=' && s[j] == '>' || sep == ':' && s[j] == '=') {
			j++ // => and :=
		} else if sep == '=' && j < len(s) && s[j] == '=' {
			return // a comparison
		}
		j = skipSpaces(s, j)
	case keyQuote == 0 && ke-ks > 2 && s[ks] == '-' && s[ks+1] == '-' && j == ke+1 && j < len(s) && s[j] != '-':
		// --password value
	default:
		return
	}
	if j >= len(s) {
		return
	}
	if kind == kindAuth {
		f.authorization(st, s, j)
		return
	}
	vs, ve, quoted := value(s, j, sep == '=')
	v := s[vs:ve]
	if ve <= vs || placeholder(v) ||
		kind == kindToken && len(v) <= 4 && allDigits(v) ||
		kind == kindPwd && (v[0] == '/' || v[0] == '~') {
		return
	}
	id := detSecretKV
	if kind == kindAWS && f.enabled[detAWSSecret] && awsSecretShape(v) {
		id = detAWSSecret
	} else if !f.enabled[detSecretKV] {
		return
	}
	if !quoted && keyQuote == '"' {
		st.addGeneric(vs, ve, id, true) // "password": 1234 stays valid JSON
		return
	}
	st.addGeneric(vs, ve, id, false)
}

func skipSpaces(s []byte, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// value returns the extent of the value at s[j:]: inside quotes ("…", '…'
// or \"…\" in a JSON string), or up to white space or punctuation that
// ends a value in logfmt, JSON and prose; after key= also "&" (a query
// string).
func value(s []byte, j int, query bool) (start, end int, quoted bool) {
	switch {
	case s[j] == '"' || s[j] == '\'':
		q := s[j]
		k := j + 1
		for k < len(s) && s[k] != q {
			if s[k] == '\\' {
				k++
			}
			k++
		}
		return j + 1, min(k, len(s)), true
	case s[j] == '\\' && j+1 < len(s) && s[j+1] == '"':
		k := j + 2
		for k < len(s) && s[k] != '"' && !(s[k] == '\\' && k+1 < len(s) && s[k+1] == '"') {
			if s[k] == '\\' {
				k++
			}
			k++
		}
		return j + 2, min(k, len(s)), true
	}
	k := j
	for k < len(s) {
		c := s[k]
		if c <= ' ' || c == '"' || c == '\'' || c == ',' || c == ';' || c == '&' && query || c == ')' || c == ']' || c == '}' || c == '>' || c == '<' || c == '|' || c == '`' {
			break
		}
		if c == '\\' {
			// An escape that ends the value in a JSON string, or a
			// backslash that is part of it.
			if k+1 >= len(s) || s[k+1] == '"' || s[k+1] == 'n' || s[k+1] == 'r' || s[k+1] == 't' || s[k+1] == 'u' {
				break
			}
			k++
		}
		k++
	}
	return j, min(k, len(s)), false
}

var placeholders = []string{"null", "nil", "none", "true", "false", "undefined", "empty", "hidden", "masked", "redacted", "filtered",
	"<nil>", "<none>", "<redacted>", "<hidden>", "<masked>", "[redacted]", "[hidden]", "[filtered]", "[masked]"}

// equalFold reports whether b is w (lower case) in any ASCII case.
func equalFold(b []byte, w string) bool {
	if len(b) != len(w) {
		return false
	}
	for i := range b {
		if lower(b[i]) != w[i] {
			return false
		}
	}
	return true
}

// placeholder reports a value that stands for no secret: empty words,
// masks and markers already in place.
func placeholder(v []byte) bool {
	for _, w := range placeholders {
		if len(w) != len(v) {
			continue
		}
		if equalFold(v, w) {
			return true
		}
	}
	if bytes.HasPrefix(v, []byte("[REDACTED")) || bytes.HasPrefix(v, []byte("${")) || bytes.HasPrefix(v, []byte("{{")) {
		return true
	}
	if len(v) >= 3 {
		for _, c := range v {
			if c != '*' && c != 'x' && c != 'X' && c != '#' {
				return false
			}
		}
		return true
	}
	return false
}

func allDigits(v []byte) bool {
	for _, c := range v {
		if !isDigit(c) {
			return false
		}
	}
	return len(v) > 0
}

// awsSecretShape: 40 characters of [A-Za-z0-9/+].
func awsSecretShape(v []byte) bool {
	if len(v) != 40 {
		return false
	}
	for _, c := range v {
		if !isAlnum(c) && c != '/' && c != '+' {
			return false
		}
	}
	return true
}

// authorization matches the credentials of an Authorization header value
// at s[j:]: "Scheme credentials" (Basic goes to basic_auth, any other
// scheme to bearer), or a single opaque word of 8 characters or more.
func (f *Filter) authorization(st *Stream, s []byte, j int) {
	if s[j] == '"' || s[j] == '\'' {
		j++
	} else if s[j] == '\\' && j+1 < len(s) && s[j+1] == '"' {
		j += 2
	}
	k := j
	for k < len(s) && (isAlnum(s[k]) || s[k] == '-') {
		k++
	}
	if k < len(s) && s[k] == ' ' {
		c := skipSpaces(s, k)
		e := credentials(s, c)
		if e == c {
			return
		}
		id := detBearer
		if equalFold(s[j:k], "basic") {
			id = detBasicAuth
		}
		if f.enabled[id] {
			st.addGeneric(c, e, id, false)
		}
		return
	}
	e := credentials(s, j)
	if e-j >= 8 && f.enabled[detBearer] && !placeholder(s[j:e]) {
		st.addGeneric(j, e, detBearer, false)
	}
}
