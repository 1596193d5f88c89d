package ternary

import (
	"bytes"
	"testing"
)

// Seed corpora live in testdata/fuzz/FuzzXxx; the hints pick the shape so
// that most mutated buffers still have a valid length.

func FuzzDecodeTQ2_0(f *testing.F) {
	f.Add(bytes.Repeat([]byte{0x55}, 64*1), byte(0))
	f.Fuzz(func(t *testing.T, data []byte, rowsHint byte) {
		if len(data) > 1<<20 { // per-input cost bound
			return
		}
		rows := 1 + int(rowsHint%4)
		cols := BlockSize * max(1, len(data)/(TQ2_0Bytes*rows))
		m, err := DecodeTQ2_0(data, rows, cols)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("decoded matrix invalid: %v", err)
		}
		enc, err := m.EncodeTQ2_0()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		for b := 0; b < len(data); b += TQ2_0Bytes {
			if !bytes.Equal(enc[b:b+64], data[b:b+64]) {
				t.Fatalf("block %d: re-encoded qs differ", b/TQ2_0Bytes)
			}
		}
		back, err := DecodeTQ2_0(enc, rows, cols)
		if err != nil {
			t.Fatalf("decode of re-encoded: %v", err)
		}
		sameDecoded(t, back, m)
	})
}

func FuzzDecodeTQ1_0(f *testing.F) {
	f.Add(bytes.Repeat([]byte{0x80}, TQ1_0Bytes), byte(0))
	f.Fuzz(func(t *testing.T, data []byte, rowsHint byte) {
		if len(data) > 1<<20 { // per-input cost bound
			return
		}
		rows := 1 + int(rowsHint%4)
		cols := BlockSize * max(1, len(data)/(TQ1_0Bytes*rows))
		m, err := DecodeTQ1_0(data, rows, cols)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("decoded matrix invalid: %v", err)
		}
		enc, err := m.EncodeTQ1_0()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		for b := 0; b < len(data); b += TQ1_0Bytes {
			if !bytes.Equal(enc[b:b+52], data[b:b+52]) {
				t.Fatalf("block %d: re-encoded qs/qh differ", b/TQ1_0Bytes)
			}
		}
		back, err := DecodeTQ1_0(enc, rows, cols)
		if err != nil {
			t.Fatalf("decode of re-encoded: %v", err)
		}
		sameDecoded(t, back, m)
	})
}

func FuzzFromHFPacked(f *testing.F) {
	f.Add([]byte{0b10100001, 0b00011000, 0b10010000, 0b00001010}, byte(1))
	f.Fuzz(func(t *testing.T, data []byte, outHint byte) {
		if len(data) > 1<<20 { // per-input cost bound
			return
		}
		out := 4 * (1 + int(outHint%8))
		in := max(1, len(data)/(out/4))
		m, err := FromHFPacked(data, out, in, 1)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("decoded matrix invalid: %v", err)
		}
		back, err := m.HFPacked()
		if err != nil || !bytes.Equal(back, data) {
			t.Fatalf("HFPacked(FromHFPacked(x)) != x (err %v)", err)
		}
	})
}

// sameDecoded compares a re-decoded matrix with the first decode: an all-zero
// tensor carries no scale once re-encoded (every block gets d = 0).
func sameDecoded(t *testing.T, got, want *Matrix) {
	t.Helper()
	if allZero(want.Codes) && got.Scale == 0 {
		cp := *got
		cp.Scale = want.Scale
		got = &cp
	}
	sameMatrix(t, "re-decoded", got, want)
}
