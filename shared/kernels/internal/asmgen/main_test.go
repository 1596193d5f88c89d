package main

import (
	"bytes"
	"os"
	"testing"
)

// TestGeneratedUpToDate fails when tiles_amd64.s or tiles_amd64.go differ
// from what the generator writes: run "go generate ./shared/kernels".
func TestGeneratedUpToDate(t *testing.T) {
	asm, decl, err := generate()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]byte{"../../tiles_amd64.s": asm, "../../tiles_amd64.go": decl} {
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run go generate ./shared/kernels", name)
		}
	}
}
