package secret

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func write(t *testing.T, path, s string) {
	t.Helper()
	// Replace the file the way kubelet updates a Secret: a new file renamed over.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestFileRereadsOnChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "token")
		write(t, p, "first\n")
		f, err := Open(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := f.Value(); v != "first" || err != nil {
			t.Fatalf("got %q, %v", v, err)
		}
		write(t, p, "second-token\r\n")
		time.Sleep(checkEvery)
		if v, err := f.Value(); v != "second-token" || err != nil {
			t.Fatalf("after the change: %q, %v", v, err)
		}
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		time.Sleep(checkEvery)
		if v, err := f.Value(); v != "second-token" || err == nil {
			t.Fatalf("a vanished file must keep the last value and say so: %q, %v", v, err)
		}
	})
	if _, err := Open(filepath.Join(t.TempDir(), "missing"), nil); err == nil {
		t.Fatal("Open of a missing file succeeded")
	}
}

func selfSigned(t *testing.T, cn string) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
}

func TestKeyPairRotation(t *testing.T) {
	c1, k1 := selfSigned(t, "one")
	c2, k2 := selfSigned(t, "two")
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		cp, kp := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
		write(t, cp, c1)
		write(t, kp, k1)
		pair, err := OpenKeyPair(cp, kp, nil)
		if err != nil {
			t.Fatal(err)
		}
		cn := func() string {
			c, err := pair.Certificate()
			if err != nil {
				t.Fatal(err)
			}
			x, _ := x509.ParseCertificate(c.Certificate[0])
			return x.Subject.CommonName
		}
		if got := cn(); got != "one" {
			t.Fatalf("got %s", got)
		}
		write(t, cp, c2) // the key is not replaced yet: keep the old pair
		time.Sleep(checkEvery)
		if got := cn(); got != "one" {
			t.Fatalf("mismatched pair: got %s, want the last good one", got)
		}
		write(t, kp, k2)
		time.Sleep(checkEvery)
		if got := cn(); got != "two" {
			t.Fatalf("after rotation: got %s", got)
		}
	})
}

// TestOnChange: the hook sees the first value and every rotated one, and
// not a re-read of the same value.
func TestOnChange(t *testing.T) {
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte("one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var seen []string
	f, err := Open(p, func(v string) { seen = append(seen, v) })
	if err != nil {
		t.Fatal(err)
	}
	reread := func() {
		t.Helper()
		f.mu.Lock()
		f.checked, f.read = time.Time{}, time.Time{}.Add(1) // as if a minute had passed
		f.mu.Unlock()
		if _, err := f.Value(); err != nil {
			t.Fatal(err)
		}
	}
	reread() // same value: not reported again
	if err := os.WriteFile(p, []byte("two-longer\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reread()
	if got := strings.Join(seen, ","); got != "one,two-longer" {
		t.Fatalf("onChange saw %q, want one,two-longer", got)
	}
}
