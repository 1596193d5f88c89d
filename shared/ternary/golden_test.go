package ternary

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// patternMatrix is a fixed 8x512 matrix with every code in every position.
func patternMatrix(t *testing.T) *Matrix {
	t.Helper()
	const rows, cols = 8, 512
	v := make([]int8, rows*cols)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			v[r*cols+c] = int8((r*7+c*3+c/5)%3) - 1
		}
	}
	for c := 256; c < 512; c++ { // row 5, block 1: all zero (d = 0)
		v[5*cols+c] = 0
	}
	m, err := Pack(rows, cols, v, 0.8125)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestGolden pins the byte formats; run with -update after a deliberate change.
func TestGolden(t *testing.T) {
	m := patternMatrix(t)
	for _, g := range []struct {
		file   string
		encode func() ([]byte, error)
		decode func([]byte) (*Matrix, error)
	}{
		{"pattern.hf.bin", m.HFPacked, func(b []byte) (*Matrix, error) { return FromHFPacked(b, 8, 512, m.Scale) }},
		{"pattern.tq2_0.bin", m.EncodeTQ2_0, func(b []byte) (*Matrix, error) { return DecodeTQ2_0(b, 8, 512) }},
		{"pattern.tq1_0.bin", m.EncodeTQ1_0, func(b []byte) (*Matrix, error) { return DecodeTQ1_0(b, 8, 512) }},
	} {
		got, err := g.encode()
		if err != nil {
			t.Fatalf("%s: %v", g.file, err)
		}
		path := filepath.Join("testdata", "golden", g.file)
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -run TestGolden -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: encoded bytes differ from the golden file", g.file)
		}
		dm, err := g.decode(want)
		if err != nil {
			t.Fatalf("%s: decode: %v", g.file, err)
		}
		sameMatrix(t, g.file, dm, m)
	}
}
