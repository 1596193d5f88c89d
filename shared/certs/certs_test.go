package certs

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serveTLS accepts connections with cfg, completes each handshake and
// closes it; it returns the address.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	lis, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if err := c.(*tls.Conn).Handshake(); err == nil {
					_, _ = c.Write([]byte("ok"))
				}
			}()
		}
	}()
	return lis.Addr().String()
}

// handshake dials addr with cfg and returns the server's leaf certificate.
func handshake(addr string, cfg *tls.Config) (*x509.Certificate, error) {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// TLS 1.3: a client certificate the server rejects shows up on the
	// first read, not in the handshake.
	if _, err := io.ReadFull(c, make([]byte, 2)); err != nil {
		return nil, err
	}
	return c.ConnectionState().PeerCertificates[0], nil
}

func TestReloaderRotation(t *testing.T) {
	ca, err := NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first, err := ca.Issue("first", []string{"127.0.0.1"}, ServerAndClient, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Write(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	r, err := NewReloader(certFile, keyFile, WithCheckInterval(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, ServerConfig(r, nil))
	client := ClientConfig(ca.Pool(), nil, "")
	got, err := handshake(addr, client)
	if err != nil || got.Subject.CommonName != "first" {
		t.Fatalf("before rotation: got %v, %v; want CN first", got, err)
	}

	// Rotate: the next handshake serves the new certificate, no restart.
	second, err := ca.Issue("second", []string{"127.0.0.1"}, ServerAndClient, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Write(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err = handshake(addr, client)
		if err == nil && got.Subject.CommonName == "second" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after rotation: got %v, %v; want CN second within 5 s", got.Subject, err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A broken replacement (a key that does not match) keeps the last good pair.
	third, err := ca.Issue("third", []string{"127.0.0.1"}, ServerAndClient, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := third.Write(certFile, filepath.Join(dir, "other.key")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	if got, err := handshake(addr, client); err != nil || got.Subject.CommonName != "second" {
		t.Errorf("after a mismatched cert: got %v, %v; want CN second kept", got, err)
	}
}

func TestMTLSForeignCA(t *testing.T) {
	dir := t.TempDir()
	files, err := WriteDev(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Files{Cert: files.ServerCert, Key: files.ServerKey, ClientCA: files.CA}.Server()
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, srv)
	foreign, err := NewCA("foreign CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	intruder, err := foreign.Issue("intruder", nil, ClientOnly, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ifiles := [2]string{filepath.Join(dir, "i.crt"), filepath.Join(dir, "i.key")}
	if err := intruder.Write(ifiles[0], ifiles[1]); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		files  Files
		wantOK bool
	}{
		{"mesh client cert", Files{CA: files.CA, Cert: files.ClientCert, Key: files.ClientKey}, true},
		{"no client cert (allowed here, refused per call by auth)", Files{CA: files.CA}, true},
		{"foreign CA client cert", Files{CA: files.CA, Cert: ifiles[0], Key: ifiles[1]}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.files.Client()
			if err != nil {
				t.Fatal(err)
			}
			_, err = handshake(addr, cfg)
			if gotOK := err == nil; gotOK != tc.wantOK {
				t.Errorf("handshake: got error %v, want ok=%v", err, tc.wantOK)
			}
		})
	}
	// A client that does not trust the mesh CA refuses the server.
	if _, err := handshake(addr, ClientConfig(foreign.Pool(), nil, "")); err == nil {
		t.Error("client trusting another CA: handshake succeeded, want a verification error")
	}
}

func TestWriteDev(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	f, err := WriteDev(dir, []string{"bitnet.example", "10.0.0.7"})
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{f.CA: 0o644, f.CAKey: 0o600, f.ServerCert: 0o644, f.ServerKey: 0o600,
		f.ClientCert: 0o644, f.ClientKey: 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", filepath.Base(path), got, want)
		}
	}
	pair, err := tls.LoadX509KeyPair(f.ServerCert, f.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool, err := LoadPool(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"localhost", "127.0.0.1", "::1", "bitnet.example", "10.0.0.7"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool}); err != nil {
			t.Errorf("server certificate for %s: %v", host, err)
		}
	}
	if _, err := WriteDev(dir, nil); err == nil || !strings.Contains(err.Error(), "not overwriting") {
		t.Errorf("second WriteDev in the same directory: got %v, want a refusal", err)
	}
	if _, err := (Files{ClientCA: f.CA}).Server(); err == nil {
		t.Error("client CA without a certificate: got no error")
	}
	var none *tls.Config
	if cfg, err := (Files{}).Client(); err != nil || cfg != none {
		t.Errorf("no files: got %v, %v; want nil, nil (plaintext)", cfg, err)
	}
}
