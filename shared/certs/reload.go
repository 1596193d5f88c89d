package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
)

// DefaultCheckInterval is how often a Reloader looks at its files.
const DefaultCheckInterval = time.Second

// Reloader serves a certificate and key from PEM files and re-reads them
// when either file's modification time or size changes, so rotated
// certificates (cert-manager renewing a Secret, an operator replacing the
// files) are used by the next handshake without a restart. It looks at the
// files at most once per check interval, on use: no goroutine to stop. A
// failed reload (say the certificate was replaced before its key) keeps
// the previous pair and is retried at the next check.
type Reloader struct {
	certFile, keyFile string
	interval          time.Duration
	log               *zap.Logger
	now               func() time.Time

	mu        sync.Mutex
	cert      *tls.Certificate
	stamp     [2]fileStamp
	lastCheck time.Time
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// ReloaderOption configures a Reloader.
type ReloaderOption func(*Reloader)

// WithCheckInterval sets how often the files are looked at (default
// DefaultCheckInterval).
func WithCheckInterval(d time.Duration) ReloaderOption { return func(r *Reloader) { r.interval = d } }

// WithLogger logs reloads and failed reloads (default none).
func WithLogger(l *zap.Logger) ReloaderOption { return func(r *Reloader) { r.log = l } }

// NewReloader loads the pair once; an unreadable or mismatched pair is an
// error here, later ones only keep the old pair.
func NewReloader(certFile, keyFile string, opts ...ReloaderOption) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile, interval: DefaultCheckInterval, log: zap.NewNop(), now: time.Now}
	for _, o := range opts {
		o(r)
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("certs: a certificate needs both a cert file and a key file")
	}
	stamp, err := r.stat()
	if err != nil {
		return nil, err
	}
	cert, err := loadPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	r.cert, r.stamp, r.lastCheck = cert, stamp, r.now()
	return r, nil
}

func (r *Reloader) stat() ([2]fileStamp, error) {
	var s [2]fileStamp
	for i, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return s, fmt.Errorf("certs: %w", err)
		}
		s[i] = fileStamp{fi.ModTime(), fi.Size()}
	}
	return s, nil
}

func loadPair(certFile, keyFile string) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("certs: load %s and %s: %w", certFile, keyFile, err)
	}
	if cert.Leaf == nil && len(cert.Certificate) > 0 {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("certs: parse %s: %w", certFile, err)
		}
	}
	return &cert, nil
}

// Certificate returns the current pair, reloading it first when the files
// changed.
func (r *Reloader) Certificate() *tls.Certificate {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if now.Sub(r.lastCheck) < r.interval {
		return r.cert
	}
	r.lastCheck = now
	stamp, err := r.stat()
	if err != nil {
		r.log.Warn("certificate files unreadable; keeping the loaded certificate", zap.Error(err))
		return r.cert
	}
	if stamp == r.stamp {
		return r.cert
	}
	cert, err := loadPair(r.certFile, r.keyFile)
	if err != nil {
		r.log.Warn("certificate reload failed; keeping the loaded certificate", zap.Error(err))
		return r.cert
	}
	r.cert, r.stamp = cert, stamp
	r.log.Info("certificate reloaded", zap.String("cert", r.certFile), zap.String("subject", cert.Leaf.Subject.String()),
		zap.Time("not_after", cert.Leaf.NotAfter))
	return r.cert
}

// GetCertificate is for tls.Config.GetCertificate (servers).
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.Certificate(), nil
}

// GetClientCertificate is for tls.Config.GetClientCertificate (clients
// presenting the pair to an mTLS server).
func (r *Reloader) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return r.Certificate(), nil
}
