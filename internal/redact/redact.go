// Package redact removes secrets from what skiff prints or serves. It is the
// one place that decides what a secret looks like:
//
//   - in a URL (or a host:port address), the user-info: a password is
//     masked, and so is a user name given alone (https://TOKEN@host is a
//     common way to pass a token);
//   - in a URL's query (and a fragment made of parameters), the value of
//     every parameter whose name looks secret (SecretName);
//   - in any text (error messages, log attributes, /status), every URL as
//     above, and every value a Secrets holds: the passwords, tokens and
//     header values the configuration names, wherever a destination echoes
//     them.
//
// Everything here is safe for concurrent use.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Mask replaces a secret. It needs no escaping in a URL, in JSON or in a
// shell, so that a masked value survives being re-encoded.
const Mask = "REDACTED"

// secretWords are the fragments of a parameter or header name that mark
// its value as a secret. Names are compared lowercased, with '-', '_', '.'
// and spaces removed, so that api_key, api-key, ApiKey and X-Api-Key are
// one name. Masking a value that was no secret costs nothing; showing one
// that was is the failure, hence substrings rather than exact names.
var secretWords = []string{
	"token", "key", "passw", "pwd", "pass", "secret", "sig", "auth",
	"credential", "session", "sid", "jwt", "hmac", "private", "cookie", "otp",
}

// SecretName reports whether a query parameter or header called name
// probably holds a secret: token, key, apikey, api_key, password, passwd,
// pwd, secret, signature, sig, auth, authorization, access_token,
// credential, session, X-Amz-Signature, X-Amz-Credential, X-Amz-Security-Token
// and the like.
func SecretName(name string) bool {
	n := strings.Map(func(r rune) rune {
		switch r {
		case '-', '_', '.', ' ':
			return -1
		}
		return r
	}, strings.ToLower(name))
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// URL returns raw with its secrets masked (see the package documentation).
// It works on the text as written, so that it also masks what url.Parse
// rejects, and leaves everything else byte for byte as it was. raw may be
// a URL with a scheme, or a host:port address with user-info
// (user:password@host:9092).
func URL(raw string) string {
	rest, prefix := raw, ""
	if i := strings.Index(raw, "://"); i >= 0 {
		prefix, rest = raw[:i+3], raw[i+3:]
	}
	// Authority: up to the first '/', '?' or '#'.
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		user, _, hasPassword := strings.Cut(authority[:at], ":")
		if hasPassword {
			authority = user + ":" + Mask + authority[at:]
		} else {
			authority = Mask + authority[at:]
		}
	}
	path, query, fragment := tail, "", ""
	if i := strings.IndexByte(path, '#'); i >= 0 {
		path, fragment = path[:i], path[i:]
	}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path, query = path[:i], path[i:]
	}
	if query != "" {
		query = "?" + params(query[1:])
	}
	if strings.Contains(fragment, "=") {
		fragment = "#" + params(fragment[1:])
	}
	return prefix + authority + path + query + fragment
}

// params masks the secret values of a query string ("a=1&token=x").
func params(q string) string {
	parts := strings.Split(q, "&")
	for i, p := range parts {
		for _, sub := range strings.Split(p, ";") {
			name, value, ok := strings.Cut(sub, "=")
			if !ok || value == "" {
				continue
			}
			if n, err := url.QueryUnescape(name); err == nil {
				name = n
			}
			if SecretName(name) {
				parts[i] = strings.Replace(parts[i], sub, sub[:len(sub)-len(value)]+Mask, 1)
			}
		}
	}
	return strings.Join(parts, "&")
}

// urlInText finds URLs in free text: a scheme, "://", and everything up to
// a space, a quote or an angle bracket (net/http quotes the URL of a
// url.Error; JSON and logfmt quote values).
var urlInText = regexp.MustCompile("[A-Za-z][A-Za-z0-9+.-]*://[^\\s\"'<>`]+")

// Text masks every URL in s, as URL does.
func Text(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlInText.ReplaceAllStringFunc(s, URL)
}
