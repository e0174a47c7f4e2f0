package http

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	nethttp "net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/config"
	"github.com/skiff-dev/skiff/sinks"
	"github.com/skiff-dev/skiff/sinks/internal/sinktest"
)

// testCA issues certificates for the TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key for a client (client true) or
// for the server at 127.0.0.1.
func (ca *testCA) issue(t *testing.T, serial int64, client bool) (certPEM, keyPEM []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "skiff"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// TestHTTPTLS: CA_FILE, mutual TLS with a client certificate that is
// re-loaded when rotated, and INSECURE_SKIP_VERIFY.
func TestHTTPTLS(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	caFile, certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeFile(t, caFile, ca.pem)
	c1, k1 := ca.issue(t, 101, true)
	writeFile(t, certFile, c1)
	writeFile(t, keyFile, k1)

	var lastSerial atomic.Int64
	srv := httptest.NewUnstartedServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		if len(r.TLS.PeerCertificates) > 0 {
			lastSerial.Store(r.TLS.PeerCertificates[0].SerialNumber.Int64())
		}
		w.WriteHeader(204)
	}))
	sc, sk := ca.issue(t, 2, false)
	pair, err := tls.X509KeyPair(sc, sk)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the unknown-CA case logs a handshake error
	srv.StartTLS()
	defer srv.Close()

	send := func(t *testing.T, edit func(c *config.HTTP)) error {
		cfg := httpConfig(srv.URL)
		edit(&cfg)
		sink, err := New("web", cfg, sinks.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		defer sink.Close()
		return sink.Send(context.Background(), &sinks.Batch{Records: sinktest.Decoded(0, 1, 0)})
	}
	t.Run("unknown CA", func(t *testing.T) {
		err := send(t, func(c *config.HTTP) {})
		var se *sinks.SendError
		if !errors.As(err, &se) || se.Kind != sinks.KindNetwork {
			t.Errorf("Send = %v, want a network error", err)
		}
	})
	t.Run("CA file", func(t *testing.T) {
		if err := send(t, func(c *config.HTTP) { c.CAFile = caFile }); err != nil {
			t.Error(err)
		}
	})
	t.Run("insecure", func(t *testing.T) {
		if err := send(t, func(c *config.HTTP) { c.InsecureSkipVerify = true }); err != nil {
			t.Error(err)
		}
	})
	t.Run("client certificate rotation", func(t *testing.T) {
		cfg := httpConfig(srv.URL)
		cfg.CAFile, cfg.CertFile, cfg.KeyFile = caFile, certFile, keyFile
		sink, err := New("web", cfg, sinks.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		defer sink.Close()
		if err := sink.Send(context.Background(), &sinks.Batch{Records: sinktest.Decoded(0, 1, 0)}); err != nil {
			t.Fatal(err)
		}
		if s := lastSerial.Load(); s != 101 {
			t.Fatalf("client certificate serial %d, want 101", s)
		}
		c2, k2 := ca.issue(t, 102, true)
		writeFile(t, certFile, c2)
		writeFile(t, keyFile, k2)
		sinktest.WaitUntil(t, "rotated certificate used", func() bool {
			sink.Close() // new connection, new handshake
			if err := sink.Send(context.Background(), &sinks.Batch{Records: sinktest.Decoded(0, 1, 0)}); err != nil {
				t.Fatal(err)
			}
			return lastSerial.Load() == 102
		})
	})
}
