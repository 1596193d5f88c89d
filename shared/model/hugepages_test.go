package model

import (
	"bytes"
	"testing"
	"unsafe"
)

// TestHugeChunks cuts buffers at 2 MiB address boundaries only, covering
// every byte once.
func TestHugeChunks(t *testing.T) {
	const huge = 2 << 20
	buf := make([]byte, 80<<20)
	for _, tc := range []struct{ off, n int }{{0, 0}, {0, 1}, {5, 3 << 20}, {4096, 70 << 20}, {1 << 20, 64 << 20}} {
		b := buf[tc.off : tc.off+tc.n]
		chunks := hugeChunks(b)
		total := 0
		for i, c := range chunks {
			if &c[0] != &b[total] {
				t.Fatalf("off %d n %d: chunk %d starts at byte %d, want %d", tc.off, tc.n, i, uintptr(unsafe.Pointer(&c[0]))-uintptr(unsafe.Pointer(&b[0])), total)
			}
			total += len(c)
			end := uintptr(unsafe.Pointer(unsafe.SliceData(c))) + uintptr(len(c))
			if i < len(chunks)-1 && end%huge != 0 {
				t.Errorf("off %d n %d: chunk %d ends %d bytes past a 2 MiB boundary, want 0", tc.off, tc.n, i, end%huge)
			}
			if len(c) > 32<<20 {
				t.Errorf("off %d n %d: chunk %d has %d bytes, want <= 32 MiB", tc.off, tc.n, i, len(c))
			}
		}
		if total != tc.n {
			t.Errorf("off %d n %d: chunks cover %d bytes, want %d", tc.off, tc.n, total, tc.n)
		}
	}
}

// TestWeightArena moves every layer's codes into one 2 MiB-aligned arena
// in streaming order without changing a byte.
func TestWeightArena(t *testing.T) {
	c := tinyConfig()
	w := randomWeights(t, c, 3)
	m := &Model{cfg: c, layers: w.Layers}
	var want [][]byte
	for i := range m.layers {
		for _, l := range m.layers[i].Linears() {
			want = append(want, bytes.Clone((*l).Codes))
		}
	}
	arena := m.weightArena(codesOf)
	if p := uintptr(unsafe.Pointer(unsafe.SliceData(arena))); p%(2<<20) != 0 {
		t.Errorf("arena at %#x: want a 2 MiB boundary", p)
	}
	k, off := 0, 0
	for i := range m.layers {
		for _, l := range m.layers[i].Linears() {
			got := (*l).Codes
			if !bytes.Equal(got, want[k]) {
				t.Errorf("layer %d linear %d: codes changed", i, k%NumLinears)
			}
			if &got[0] != &arena[off] {
				t.Errorf("layer %d: linear %d not at arena offset %d", i, k, off)
			}
			off += (len(got) + 63) &^ 63
			k++
		}
	}
	if m.weightArena(tritsOf) != nil {
		t.Error("trits arena of a model without trits: got one, want nil")
	}
}
