package certs

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// LoadPool reads PEM certificates (a CA bundle) into a pool.
func LoadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("certs: %s holds no PEM certificate", file)
	}
	return pool, nil
}

// ServerConfig is the TLS configuration of a server presenting cert. With
// clientCAs, clients may present a certificate, which must chain to them
// (tls.VerifyClientCertIfGiven: a certificate from another CA fails the
// handshake); whether one is required is the caller's decision per request
// (auth.WithClientCertRequired), so that health checks without one work.
// TLS 1.2 is the minimum; h2 and http/1.1 are offered.
func ServerConfig(cert *Reloader, clientCAs *x509.CertPool) *tls.Config {
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: cert.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
	if clientCAs != nil {
		cfg.ClientCAs = clientCAs
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return cfg
}

// ClientConfig is the TLS configuration of a client: it verifies servers
// against roots (nil: the system's), under serverName when set (else the
// host it dials), and presents cert when the server asks (nil: none).
func ClientConfig(roots *x509.CertPool, cert *Reloader, serverName string) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots, ServerName: serverName}
	if cert != nil {
		cfg.GetClientCertificate = cert.GetClientCertificate
	}
	return cfg
}

// Files names the PEM files of a process's TLS setup; empty fields are
// unset.
type Files struct {
	// Cert and Key: this process's certificate (served by its listeners and
	// presented to mTLS peers).
	Cert, Key string
	// CA verifies the servers this process calls.
	CA string
	// ClientCA verifies client certificates (turns mTLS on).
	ClientCA string
	// ServerName is the name peers' certificates are checked against
	// (default: the host dialed).
	ServerName string
}

// Enabled reports whether any file is set.
func (f Files) Enabled() bool { return f.Cert != "" || f.Key != "" || f.CA != "" || f.ClientCA != "" }

// Server returns the listeners' configuration (nil, nil without Cert and
// Key). A ClientCA without a certificate is an error: mTLS needs TLS.
func (f Files) Server(opts ...ReloaderOption) (*tls.Config, error) {
	if f.Cert == "" && f.Key == "" {
		if f.ClientCA != "" {
			return nil, fmt.Errorf("certs: a client CA (%s) needs a server certificate and key", f.ClientCA)
		}
		return nil, nil
	}
	r, err := NewReloader(f.Cert, f.Key, opts...)
	if err != nil {
		return nil, err
	}
	var pool *x509.CertPool
	if f.ClientCA != "" {
		if pool, err = LoadPool(f.ClientCA); err != nil {
			return nil, err
		}
	}
	return ServerConfig(r, pool), nil
}

// Client returns the configuration for calls to peers (nil, nil when no
// file is set: plaintext). Roots: CA, else ClientCA (one mesh CA), else
// the system's; the certificate, when set, is presented to mTLS servers.
func (f Files) Client(opts ...ReloaderOption) (*tls.Config, error) {
	if !f.Enabled() {
		return nil, nil
	}
	var roots *x509.CertPool
	var err error
	switch {
	case f.CA != "":
		roots, err = LoadPool(f.CA)
	case f.ClientCA != "":
		roots, err = LoadPool(f.ClientCA)
	}
	if err != nil {
		return nil, err
	}
	var r *Reloader
	if f.Cert != "" || f.Key != "" {
		if r, err = NewReloader(f.Cert, f.Key, opts...); err != nil {
			return nil, err
		}
	}
	return ClientConfig(roots, r, f.ServerName), nil
}
