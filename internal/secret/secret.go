// Package secret keeps values that live in files which may be replaced at
// any time — a mounted Kubernetes Secret, a projected service account
// token, certificates that cert-manager rotates — and re-reads them when
// they change, so that rotation needs no restart.
//
// A File and a KeyPair are safe for concurrent use. They start no
// goroutine: a change is noticed by the next call, which stats the file
// at most once a second.
package secret

import (
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

const (
	// checkEvery is how often a file is stat'ed for change.
	checkEvery = time.Second
	// rereadEvery forces a re-read even when stat shows no change, in case
	// a file system reports a stale mtime.
	rereadEvery = time.Minute
)

// File is a value kept in a file, re-read when the file is replaced (a new
// inode, as kubelet's atomic updates and renames make) or its size or mtime
// changes. Trailing CR and LF are trimmed.
type File struct {
	path     string
	onChange func(value string) // nil, or called with every new value read

	mu      sync.Mutex
	value   string
	info    os.FileInfo // of the file read
	checked time.Time   // last stat
	read    time.Time   // last read
}

// Open reads path once: a file that cannot be read now is a configuration
// error. onChange, when not nil, is called with every value read that
// differs from the one before, this first one included: skiff uses it to
// learn the values it must mask in its own output.
func Open(path string, onChange func(value string)) (*File, error) {
	f := &File{path: path, onChange: onChange}
	if err := f.reload(time.Now()); err != nil {
		return nil, err
	}
	return f, nil
}

// Value returns the current value. A file that cannot be re-read keeps its
// last value; the error says so, for logging.
func (f *File) Value() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if now.Sub(f.checked) < checkEvery {
		return f.value, nil
	}
	f.checked = now
	fi, err := os.Stat(f.path)
	if err != nil {
		return f.value, fmt.Errorf("stat %s (keeping the last value): %w", f.path, err)
	}
	if os.SameFile(fi, f.info) && fi.ModTime().Equal(f.info.ModTime()) && fi.Size() == f.info.Size() && now.Sub(f.read) < rereadEvery {
		return f.value, nil
	}
	if err := f.reload(now); err != nil {
		return f.value, fmt.Errorf("%w (keeping the last value)", err)
	}
	return f.value, nil
}

// reload reads the file. Callers hold mu (or own f exclusively).
func (f *File) reload(now time.Time) error {
	fh, err := os.Open(f.path)
	if err != nil {
		return fmt.Errorf("read %s: %w", f.path, err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return fmt.Errorf("read %s: %w", f.path, err)
	}
	b, err := io.ReadAll(fh)
	if err != nil {
		return fmt.Errorf("read %s: %w", f.path, err)
	}
	v := strings.TrimRight(string(b), "\r\n")
	if f.onChange != nil && (v != f.value || f.read.IsZero()) {
		f.onChange(v)
	}
	f.value = v
	f.info, f.read, f.checked = fi, now, now
	return nil
}

// KeyPair is a TLS certificate and key kept in two files, re-parsed when
// either changes. While the two do not match (one file replaced before the
// other), the last good pair is used.
type KeyPair struct {
	cert, key *File

	mu      sync.Mutex
	current *tls.Certificate
	certPEM string
	keyPEM  string
}

// OpenKeyPair reads and parses the pair once: files that cannot be read or
// do not match now are a configuration error. onKey, when not nil, is
// called with every new private key read (see Open).
func OpenKeyPair(certFile, keyFile string, onKey func(value string)) (*KeyPair, error) {
	c, err := Open(certFile, nil)
	if err != nil {
		return nil, err
	}
	k, err := Open(keyFile, onKey)
	if err != nil {
		return nil, err
	}
	kp := &KeyPair{cert: c, key: k}
	if _, err := kp.Certificate(); err != nil {
		return nil, err
	}
	return kp, nil
}

// Certificate returns the current certificate.
func (kp *KeyPair) Certificate() (*tls.Certificate, error) {
	// A file that cannot be re-read keeps its last value: keep using it.
	c, _ := kp.cert.Value()
	k, _ := kp.key.Value()
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
		return nil, fmt.Errorf("load certificate %s: %w", kp.cert.path, err)
	}
	kp.current, kp.certPEM, kp.keyPEM = &pair, c, k
	return kp.current, nil
}
