package mmap

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"small", []byte("hello")},
		{"page", bytes.Repeat([]byte{7}, 5000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name)
			if err := os.WriteFile(p, tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := Open(p)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if got, want := m.Len(), len(tt.data); got != want {
				t.Errorf("Len = %d, want %d", got, want)
			}
			if !bytes.Equal(m.Bytes(), tt.data) {
				t.Errorf("Bytes differ from the file contents")
			}
			if err := m.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if err := m.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{filepath.Join(dir, "missing"), dir} {
		if m, err := Open(p); err == nil {
			m.Close()
			t.Errorf("Open(%q): got nil error, want one", p)
		}
	}
}

func TestHugePages(t *testing.T) {
	small := make([]byte, 4096)
	if n := HugePages(small); n != 0 {
		t.Errorf("HugePages of 4 KiB: got %d, want 0", n)
	}
	b := make([]byte, 9<<20)
	for i := range b {
		b[i] = byte(i * 7)
	}
	n := HugePages(b)
	if n < 0 || n > len(b) || n%(2<<20) != 0 {
		t.Errorf("HugePages of 9 MiB: got %d bytes, want a multiple of 2 MiB within the buffer", n)
	}
	for i := range b { // the contents survive the collapse
		if b[i] != byte(i*7) {
			t.Fatalf("byte %d: got %d, want %d", i, b[i], byte(i*7))
		}
	}
	t.Logf("covered %d of %d bytes", n, len(b))
}
