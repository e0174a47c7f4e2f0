package kafka

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
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/skiff-dev/skiff/sinks"
)

func TestKafkaSASL(t *testing.T) {
	for name, tc := range map[string]struct {
		kfakeMethod string
		reader      sasl.Mechanism
	}{
		"plain":         {"PLAIN", plain.Auth{User: "shipper", Pass: "s3cret"}.AsMechanism()},
		"scram-sha-256": {"SCRAM-SHA-256", scram.Auth{User: "shipper", Pass: "s3cret"}.AsSha256Mechanism()},
		"scram-sha-512": {"SCRAM-SHA-512", scram.Auth{User: "shipper", Pass: "s3cret"}.AsSha512Mechanism()},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := startKfake(t, kfake.EnableSASL(), kfake.Superuser(tc.kfakeMethod, "shipper", "s3cret"), kfake.SeedTopics(1, "logs"))
			// The password comes from a mounted Secret, with the trailing
			// newline such files often have.
			pwFile := filepath.Join(t.TempDir(), "password")
			if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := kafkaConfig(c.ListenAddrs(), "logs")
			cfg.SASLMechanism, cfg.SASLUsername, cfg.SASLPasswordFile = name, "shipper", pwFile
			k := newTestKafka(t, cfg, nil)
			recs := kafkaTestRecords(0, 50, 100)
			sendAll(t, k, recs, 50)
			checkDelivered(t, consume(t, c.ListenAddrs(), len(recs), []string{"logs"}, kgo.SASL(tc.reader)), recs, false)

			// A wrong password is an auth error, and nothing is lost. kfake
			// drops the connection on a bad password where Kafka answers
			// SASL_AUTHENTICATION_FAILED first: answer as Kafka does.
			c.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				resp := req.(*kmsg.SASLAuthenticateRequest).ResponseKind().(*kmsg.SASLAuthenticateResponse)
				resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
				msg := "Authentication failed: invalid credentials"
				resp.ErrorMessage = &msg
				return resp, nil, true
			})
			bad := kafkaConfig(c.ListenAddrs(), "logs")
			bad.SASLMechanism, bad.SASLUsername, bad.SASLPassword = name, "shipper", "wrong"
			bad.Timeout = 3 * time.Second
			kb := newTestKafka(t, bad, nil)
			b := &sinks.Batch{Records: kafkaTestRecords(100, 5, 100)}
			err := kb.Send(context.Background(), b)
			var se *sinks.SendError
			if !errors.As(err, &se) || se.Kind != sinks.KindAuth || len(b.Records) != 5 {
				t.Fatalf("Send with a wrong password: %v (records left %d), want kind auth with all 5 left", err, len(b.Records))
			}
		})
	}
}

// kafkaTestCA is a certificate authority made for one test.
type kafkaTestCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newKafkaTestCA(t *testing.T) *kafkaTestCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "skiff test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &kafkaTestCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate for the broker (server) or a client, and
// its PEM files.
func (ca *kafkaTestCA) issue(t *testing.T, client bool) (tls.Certificate, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	if client {
		tmpl.Subject.CommonName, tmpl.ExtKeyUsage = "skiff", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return pair, certFile, keyFile
}

func (ca *kafkaTestCA) file(t *testing.T) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(f, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestKafkaTLS(t *testing.T) {
	ca := newKafkaTestCA(t)
	serverCert, _, _ := ca.issue(t, false)
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	// The broker requires a client certificate signed by the same CA.
	c := startKfake(t, kfake.SeedTopics(1, "logs"), kfake.TLS(&tls.Config{
		Certificates: []tls.Certificate{serverCert}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
	}))
	clientCert, certFile, keyFile := ca.issue(t, true)

	cfg := kafkaConfig(c.ListenAddrs(), "logs")
	cfg.TLSCAFile, cfg.TLSCertFile, cfg.TLSKeyFile = ca.file(t), certFile, keyFile
	k := newTestKafka(t, cfg, nil)
	recs := kafkaTestRecords(0, 50, 100)
	sendAll(t, k, recs, 25)
	reader := kgo.DialTLSConfig(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{clientCert}, MinVersion: tls.VersionTLS12})
	checkDelivered(t, consume(t, c.ListenAddrs(), len(recs), []string{"logs"}, reader), recs, false)

	// A broker certificate from another CA is refused: kind auth, nothing lost.
	other := kafkaConfig(c.ListenAddrs(), "logs")
	other.TLSCAFile, other.TLSCertFile, other.TLSKeyFile = newKafkaTestCA(t).file(t), certFile, keyFile
	other.Timeout = 3 * time.Second
	ko := newTestKafka(t, other, nil)
	b := &sinks.Batch{Records: slices.Clone(recs[:5])}
	err := ko.Send(context.Background(), b)
	var se *sinks.SendError
	if !errors.As(err, &se) || se.Kind != sinks.KindAuth || len(b.Records) != 5 {
		t.Fatalf("Send to a broker of another CA: %v (records left %d), want kind auth with all 5 left", err, len(b.Records))
	}
}
