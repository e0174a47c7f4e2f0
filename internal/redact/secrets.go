package redact

import (
	"encoding/base64"
	"sort"
	"strings"
	"sync"
)

// MinSecretLen is the shortest value a Secrets masks in free text. A
// shorter one ("1", "on") would mask that string everywhere it occurs;
// nothing that short is a credential.
const MinSecretLen = 4

// Secrets is a set of known secret values (passwords, tokens, header
// values, the contents of secret files) masked wherever they appear in a
// text, in addition to what Text masks. The zero value is empty and ready;
// a nil *Secrets masks what Text masks. Safe for concurrent use.
type Secrets struct {
	mu   sync.RWMutex
	vals []string // longest first, so that a secret containing another is masked whole
	r    *strings.Replacer
}

// Add adds values. A value of the form "<scheme> <credentials>" (an
// Authorization header: "Bearer abc", "Basic dXNlcjpwYXNz") adds the
// credentials alone too, since a destination may echo either.
func (s *Secrets) Add(values ...string) {
	if s == nil {
		return
	}
	var add []string
	for _, v := range values {
		v = strings.TrimSpace(v)
		add = append(add, v)
		if scheme, cred, ok := strings.Cut(v, " "); ok && !strings.Contains(scheme, "=") {
			add = append(add, strings.TrimSpace(cred))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for _, v := range add {
		if len(v) < MinSecretLen || contains(s.vals, v) {
			continue
		}
		s.vals = append(s.vals, v)
		changed = true
	}
	if !changed {
		return
	}
	sort.Slice(s.vals, func(i, j int) bool { return len(s.vals[i]) > len(s.vals[j]) })
	pairs := make([]string, 0, 2*len(s.vals))
	for _, v := range s.vals {
		pairs = append(pairs, v, Mask)
	}
	s.r = strings.NewReplacer(pairs...)
}

// AddBasicAuth adds a basic-auth password and the Authorization header
// value made of user and password.
func (s *Secrets) AddBasicAuth(user, password string) {
	if password == "" {
		return
	}
	s.Add(password, base64.StdEncoding.EncodeToString([]byte(user+":"+password)))
}

func contains(vs []string, v string) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

// String returns text with its URLs' secrets (Text) and every known
// secret masked.
func (s *Secrets) String(text string) string {
	text = Text(text)
	if s == nil {
		return text
	}
	s.mu.RLock()
	r := s.r
	s.mu.RUnlock()
	if r == nil {
		return text
	}
	return r.Replace(text)
}
