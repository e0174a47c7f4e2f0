package httpclient

import (
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/skiff-dev/skiff/internal/redact"
)

const (
	// secretCheckEvery is how often a secret file is stat'ed for change.
	secretCheckEvery = time.Second
	// secretRereadEvery forces a re-read even when stat shows no change,
	// in case a filesystem reports a stale mtime.
	secretRereadEvery = time.Minute
)

// secretFile is a value kept in a file that may be replaced at any time:
// a mounted Secret or a projected service account token (kubelet swaps a
// symlink). It is re-read when the file's size or mtime changes. Safe for
// concurrent use.
type secretFile struct {
	path     string
	onChange func(value string) // each value read, e.g. to mask it in logs; may be nil

	mu      sync.Mutex
	value   string
	mod     time.Time
	size    int64
	checked time.Time // last stat
	read    time.Time // last read
}

// newSecretFile reads path once; a file that cannot be read now is a
// configuration error. onChange, when not nil, is called with every value
// read, this first one included.
func newSecretFile(path string, onChange func(string)) (*secretFile, error) {
	s := &secretFile{path: path, onChange: onChange}
	if err := s.reload(time.Now()); err != nil {
		return nil, err
	}
	return s, nil
}

// get returns the current value. A file that cannot be re-read keeps its
// last value; the error says so, for logging.
func (s *secretFile) get() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if now.Sub(s.checked) < secretCheckEvery {
		return s.value, nil
	}
	s.checked = now
	fi, err := os.Stat(s.path)
	if err != nil {
		return s.value, fmt.Errorf("stat secret %s (keeping the last value): %w", s.path, err)
	}
	if fi.ModTime().Equal(s.mod) && fi.Size() == s.size && now.Sub(s.read) < secretRereadEvery {
		return s.value, nil
	}
	if err := s.reload(now); err != nil {
		return s.value, fmt.Errorf("%w (keeping the last value)", err)
	}
	return s.value, nil
}

// reload reads the file. Callers hold mu (or own s exclusively).
func (s *secretFile) reload(now time.Time) error {
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("read secret: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("read secret: %w", err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("read secret: %w", err)
	}
	v := strings.TrimRight(string(b), "\r\n")
	if s.onChange != nil && (v != s.value || s.read.IsZero()) {
		s.onChange(v)
	}
	s.value = v
	s.mod, s.size, s.read, s.checked = fi.ModTime(), fi.Size(), now, now
	return nil
}

// keyPair is a client certificate re-loaded when its files change
// (cert-manager and similar rotate them in place). Safe for concurrent use.
type keyPair struct {
	cert, key *secretFile

	mu      sync.Mutex
	current *tls.Certificate
	certPEM string
	keyPEM  string
}

func newKeyPair(certFile, keyFile string, secrets *redact.Secrets) (*keyPair, error) {
	c, err := newSecretFile(certFile, nil)
	if err != nil {
		return nil, err
	}
	k, err := newSecretFile(keyFile, func(v string) { secrets.Add(v) })
	if err != nil {
		return nil, err
	}
	kp := &keyPair{cert: c, key: k}
	if _, err := kp.get(); err != nil {
		return nil, err
	}
	return kp, nil
}

// get returns the certificate, re-parsed when either file changed. While
// the pair does not match (one file replaced before the other), the last
// good certificate is used.
func (kp *keyPair) get() (*tls.Certificate, error) {
	// A file that cannot be re-read keeps its last value: keep using it.
	c, _ := kp.cert.get()
	k, _ := kp.key.get()
	kp.mu.Lock()
	defer kp.mu.Unlock()
	if kp.current != nil && c == kp.certPEM && k == kp.keyPEM {
		return kp.current, nil
	}
	pair, err := tls.X509KeyPair([]byte(c), []byte(k))
	if err != nil {
		if kp.current != nil {
			return kp.current, nil
		}
		return nil, fmt.Errorf("load client certificate: %w", err)
	}
	kp.current, kp.certPEM, kp.keyPEM = &pair, c, k
	return kp.current, nil
}
