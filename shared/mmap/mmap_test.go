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
