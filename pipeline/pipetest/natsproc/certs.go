package natsproc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Certs are PEM files in a test's temporary directory: a CA, a server
// certificate it signed for 127.0.0.1 and localhost, and a client
// certificate it signed (for mutual TLS).
type Certs struct {
	CA                    string
	ServerCert, ServerKey string
	ClientCert, ClientKey string
	caCert                *x509.Certificate
	caKey                 *ecdsa.PrivateKey
	dir                   string
	serial                int64
}

// NewCerts makes a CA and the server and client certificates it signs.
func NewCerts(tb testing.TB) *Certs {
	tb.Helper()
	c := &Certs{dir: tb.TempDir()}
	key := newKey(tb)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "wsgrpo test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	if c.caCert, err = x509.ParseCertificate(der); err != nil {
		tb.Fatal(err)
	}
	c.caKey, c.serial = key, 1
	c.CA = c.write(tb, "ca.pem", "CERTIFICATE", der)
	c.ServerCert, c.ServerKey = c.Issue(tb, "server", x509.ExtKeyUsageServerAuth)
	c.ClientCert, c.ClientKey = c.Issue(tb, "client", x509.ExtKeyUsageClientAuth)
	return c
}

// Issue writes a certificate for name (valid for 127.0.0.1, ::1 and
// localhost) signed by the CA, and its key, and returns their paths.
func (c *Certs) Issue(tb testing.TB, name string, usage x509.ExtKeyUsage) (cert, key string) {
	tb.Helper()
	k := newKey(tb)
	c.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(c.serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.caCert, &k.PublicKey, c.caKey)
	if err != nil {
		tb.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		tb.Fatal(err)
	}
	return c.write(tb, name+"-cert.pem", "CERTIFICATE", der), c.write(tb, name+"-key.pem", "PRIVATE KEY", kb)
}

func (c *Certs) write(tb testing.TB, name, typ string, der []byte) string {
	tb.Helper()
	p := filepath.Join(c.dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

func newKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}
