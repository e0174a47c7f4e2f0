package config

import (
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/skiff-dev/skiff/internal/redact"
)

// How a field's value is shown and which secrets it holds, from its tags:
//
//	secret:"true"     the value is a secret: shown as redact.Mask
//	redact:"url"      a URL or host:port list: shown with redact.URL, and its
//	                  user-info password and secret query values are secrets
//	redact:"headers"  Name=value pairs: the names shown, every value a secret
//	redact:"file"     a path shown as is; the file's content is a secret
//
// Every value Effective prints goes through the configuration's Secrets
// as well, so a URL or a secret in a field nobody tagged is masked too.

// Settings returns the sink's settings struct (*Stdout, *Kafka, *HTTP or *OTLP).
func (s Sink) Settings() any {
	switch {
	case s.Stdout != nil:
		return s.Stdout
	case s.Kafka != nil:
		return s.Kafka
	case s.HTTP != nil:
		return s.HTTP
	case s.OTLP != nil:
		return s.OTLP
	}
	return nil
}

// Secrets returns every secret value c holds or names (passwords,
// tokens, header values, the secrets in URLs, the contents of secret
// files as they are now), for masking wherever skiff prints text. A sink
// that re-reads a secret file adds the new content itself.
func Secrets(c *Config) *redact.Secrets {
	s := &redact.Secrets{}
	if c == nil {
		return s
	}
	addSecrets(s, c)
	for _, sk := range c.SinkList {
		if spec := sk.Settings(); spec != nil {
			addSecrets(s, spec)
		}
	}
	return s
}

func addSecrets(s *redact.Secrets, spec any) {
	v := reflect.ValueOf(spec).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Tag.Get("ignored") == "true" || !f.IsExported() {
			continue
		}
		if embedded(f) {
			addSecrets(s, v.Field(i).Addr().Interface())
			continue
		}
		vals := strs(v.Field(i))
		switch {
		case f.Tag.Get("secret") == "true":
			s.Add(vals...)
		case f.Tag.Get("redact") == "url":
			for _, u := range vals {
				s.Add(urlSecrets(u)...)
			}
		case f.Tag.Get("redact") == "headers":
			for _, h := range vals {
				_, value, _ := strings.Cut(h, "=")
				value = strings.TrimSpace(value)
				if file, ok := strings.CutPrefix(value, "@"); ok {
					s.Add(fileSecret(file))
				} else {
					s.Add(value)
				}
			}
		case f.Tag.Get("redact") == "file":
			for _, p := range vals {
				if p != "" {
					s.Add(fileSecret(p))
				}
			}
		}
	}
	if c, ok := spec.(interface{ client() *HTTPClient }); ok && c.client().Auth == "basic" {
		h := c.client()
		pw := h.Password
		if h.PasswordFile != "" {
			pw = fileSecret(h.PasswordFile)
		}
		s.AddBasicAuth(h.Username, pw)
	}
}

// strs returns a copy of a string or []string field's values.
func strs(v reflect.Value) []string {
	switch x := v.Interface().(type) {
	case string:
		return []string{x}
	case []string:
		return slices.Clone(x)
	}
	return nil
}

// urlSecrets returns the user-info password (or lone user name) and the
// secret query values of a URL or user:password@host address.
func urlSecrets(raw string) []string {
	if !strings.Contains(raw, "://") {
		raw = "scheme://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	var out []string
	if u.User != nil {
		if pw, ok := u.User.Password(); ok {
			out = append(out, pw)
		} else {
			out = append(out, u.User.Username())
		}
	}
	for name, vs := range u.Query() {
		if redact.SecretName(name) {
			out = append(out, vs...)
		}
	}
	return out
}

// fileSecret is a secret file's content as skiff uses it ("" when it
// cannot be read: validation reports that).
func fileSecret(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimRight(string(b), "\r\n")
}
