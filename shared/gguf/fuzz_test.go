package gguf

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func FuzzParse(f *testing.F) {
	f.Add(buildFile(f, allValues, sampleTensors()))
	f.Add(tinyFile(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 { // per-input cost bound
			return
		}
		p, err := Parse(data)
		if err != nil {
			return
		}
		// A parsed file must write back and parse to the same content.
		w := NewWriter()
		for _, kv := range p.KVs {
			if err := w.AddKV(kv.Key, kv.Value); err != nil {
				t.Fatalf("AddKV(%q, %T) of a parsed value: %v", kv.Key, kv.Value, err)
			}
		}
		for _, ti := range p.Tensors {
			_, b, err := p.TensorData(ti.Name)
			if err != nil {
				t.Fatalf("TensorData(%q): %v", ti.Name, err)
			}
			if ti.Type == F32 || ti.Type == F16 || ti.Type == BF16 || ti.Type == Q8_0 {
				if _, err := DecodeFloat32(ti.Type, b, int(ti.NumElements())); err != nil {
					t.Fatalf("DecodeFloat32(%q): %v", ti.Name, err)
				}
			}
			if len(ti.Dims) == 0 || len(ti.Name) > MaxNameLen || ti.Name == "" {
				continue // parsed but not writable by our stricter writer
			}
			if err := w.AddTensor(ti.Name, ti.Type, ti.Dims, b); err != nil {
				t.Fatalf("AddTensor(%q): %v", ti.Name, err)
			}
		}
		var buf bytes.Buffer
		if _, err := w.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(buf.Bytes()); err != nil {
			t.Fatalf("Parse of rewritten file: %v", err)
		}
	})
}

// TestSeedCorpus rewrites the committed FuzzParse seeds under -update.
func TestSeedCorpus(t *testing.T) {
	if !*update {
		t.Skip("seeds are rewritten only with -update")
	}
	full := buildFile(t, allValues, sampleTensors())
	badCount := append([]byte(nil), tinyFile(t)...)
	badCount[8] = 0xff // tensor count far beyond the file size
	seeds := map[string][]byte{
		"tiny":      tinyFile(t),
		"all":       full,
		"truncated": full[:len(full)/2],
		"badcount":  badCount,
		"aligned":   buildFile(t, []KV{{KeyAlignment, uint32(64)}}, sampleTensors()[:2]),
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(data)))
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
