package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CA is a certificate authority held in memory (ECDSA P-256), for
// `bitnet certs dev` and tests. Production certificates come from a real
// CA (cert-manager, Vault PKI, ...).
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	DER  []byte
}

// NewCA makes a self-signed CA valid for validity.
func NewCA(name string, validity time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"bitnet-mesh"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("certs: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key, DER: der}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}

// Leaf is an issued certificate and its key.
type Leaf struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	DER  []byte
}

// Usage says what a leaf certificate is for.
type Usage int

// Usages of Issue.
const (
	// ServerAndClient: TLS server and mTLS client (what a mesh service
	// presents both ways).
	ServerAndClient Usage = iota
	// ClientOnly: an mTLS client (a user's or operator's certificate).
	ClientOnly
)

// Issue signs a certificate for name with SANs hosts (IP addresses become
// IP SANs, the rest DNS names).
func (ca *CA) Issue(name string, hosts []string, usage Usage, validity time.Duration) (*Leaf, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: key for %s: %w", name, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name, Organization: []string{"bitnet-mesh"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if usage == ClientOnly {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("certs: certificate for %s: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: certificate for %s: %w", name, err)
	}
	return &Leaf{Cert: cert, Key: key, DER: der}, nil
}

// TLS returns the leaf as a tls.Certificate.
func (l *Leaf) TLS() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{l.DER}, PrivateKey: l.Key, Leaf: l.Cert}
}

// Pool returns a pool holding the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// WriteCert writes the CA certificate as PEM (mode 0644).
func (ca *CA) WriteCert(path string) error {
	return writePEM(path, "CERTIFICATE", ca.DER, 0o644)
}

// WriteKey writes the CA key as PEM (mode 0600).
func (ca *CA) WriteKey(path string) error {
	der, err := x509.MarshalECPrivateKey(ca.Key)
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return writePEM(path, "EC PRIVATE KEY", der, 0o600)
}

// Write writes the leaf's certificate (0644) and key (0600) as PEM. The
// files are replaced atomically (rename), as a Reloader expects.
func (l *Leaf) Write(certPath, keyPath string) error {
	der, err := x509.MarshalECPrivateKey(l.Key)
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if err := writePEM(keyPath, "EC PRIVATE KEY", der, 0o600); err != nil {
		return err
	}
	return writePEM(certPath, "CERTIFICATE", l.DER, 0o644)
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename: a no-op
	err = tmp.Chmod(mode)
	if err == nil {
		err = pem.Encode(tmp, &pem.Block{Type: typ, Bytes: der})
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("certs: write %s: %w", path, err)
	}
	return nil
}

// DevFiles are the files WriteDev makes in its directory.
type DevFiles struct {
	CA, CAKey, ServerCert, ServerKey, ClientCert, ClientKey string
}

// DevValidity is how long `bitnet certs dev` certificates last.
const DevValidity = 365 * 24 * time.Hour

// DefaultDevHosts are the SANs every dev server certificate has.
func DefaultDevHosts() []string { return []string{"localhost", "127.0.0.1", "::1"} }

// WriteDev makes a throwaway CA, a server certificate (server and client
// auth, so a mesh service presents it both ways) for localhost, 127.0.0.1,
// ::1 and hosts, and a client certificate, in dir (created 0700):
// ca.crt, ca.key, server.crt, server.key, client.crt, client.key. It
// refuses to overwrite an existing ca.key.
func WriteDev(dir string, hosts []string) (DevFiles, error) {
	f := DevFiles{
		CA: filepath.Join(dir, "ca.crt"), CAKey: filepath.Join(dir, "ca.key"),
		ServerCert: filepath.Join(dir, "server.crt"), ServerKey: filepath.Join(dir, "server.key"),
		ClientCert: filepath.Join(dir, "client.crt"), ClientKey: filepath.Join(dir, "client.key"),
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return f, fmt.Errorf("certs: %w", err)
	}
	if _, err := os.Stat(f.CAKey); err == nil {
		return f, fmt.Errorf("certs: %s exists: not overwriting a CA (remove the directory first)", f.CAKey)
	} else if !errors.Is(err, os.ErrNotExist) {
		return f, fmt.Errorf("certs: %w", err)
	}
	ca, err := NewCA("bitnet dev CA", DevValidity)
	if err != nil {
		return f, err
	}
	srv, err := ca.Issue("bitnet-mesh", append(DefaultDevHosts(), hosts...), ServerAndClient, DevValidity)
	if err != nil {
		return f, err
	}
	cli, err := ca.Issue("bitnet-client", nil, ClientOnly, DevValidity)
	if err != nil {
		return f, err
	}
	for _, step := range []func() error{
		func() error { return ca.WriteKey(f.CAKey) },
		func() error { return ca.WriteCert(f.CA) },
		func() error { return srv.Write(f.ServerCert, f.ServerKey) },
		func() error { return cli.Write(f.ClientCert, f.ClientKey) },
	} {
		if err := step(); err != nil {
			return f, err
		}
	}
	return f, nil
}
