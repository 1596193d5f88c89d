package gguf

import (
	"encoding/binary"
	"strings"
	"testing"
)

// raw builds GGUF bytes field by field for malformed-input tests.
type raw []byte

func (b raw) u32(v uint32) raw    { return binary.LittleEndian.AppendUint32(b, v) }
func (b raw) u64(v uint64) raw    { return binary.LittleEndian.AppendUint64(b, v) }
func (b raw) str(s string) raw    { return append(b.u64(uint64(len(s))), s...) }
func (b raw) bytes(p ...byte) raw { return append(b, p...) }

func header(nTensors, nKV uint64) raw {
	return raw(nil).u32(Magic).u32(3).u64(nTensors).u64(nKV)
}

// tensorInfo appends one tensor description.
func (b raw) tensor(name string, typ Type, off uint64, dims ...uint64) raw {
	b = b.str(name).u32(uint32(len(dims)))
	for _, d := range dims {
		b = b.u64(d)
	}
	return b.u32(uint32(typ)).u64(off)
}

// data pads to 32 and appends n zero bytes of tensor data.
func (b raw) data(n int) raw {
	for len(b)%32 != 0 {
		b = append(b, 0)
	}
	return append(b, make([]byte, n)...)
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		data raw
		want string
	}{
		{"empty", nil, "unexpected end"},
		{"magic", raw("GGML").u32(3).u64(0).u64(0), "bad magic"},
		{"version 1", raw(nil).u32(Magic).u32(1).u64(0).u64(0), "unsupported version 1"},
		{"huge tensor count", header(1<<60, 0), "tensor count"},
		{"huge kv count", header(0, 1<<40), "key/value count"},
		{"huge key length", header(0, 1).u64(1 << 62).bytes(make([]byte, 16)...), "string length"},
		{"empty key", header(0, 1).str("").u32(uint32(TypeUint8)).bytes(1), "empty key"},
		{"unknown value type", header(0, 1).str("k").u32(13).bytes(0, 0, 0, 0), "unknown value type 13"},
		{"bool 2", header(0, 1).str("k").u32(uint32(TypeBool)).bytes(2), "neither 0 nor 1"},
		{"nested array", header(0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeArray)).u64(0), "nested"},
		{"huge array", header(0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeUint64)).u64(1 << 40), "array element count"},
		{"huge string array", header(0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeString)).u64(1 << 40), "array element count"},
		{"bad array type", header(0, 1).str("k").u32(uint32(TypeArray)).u32(99).u64(0), "unknown array element type"},
		// Issue 10: counts beyond the limits are refused even when the
		// file is long enough to hold them.
		{"array over the limit", header(0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeUint8)).u64(MaxArrayLen + 1).bytes(make([]byte, MaxArrayLen+1)...), "exceeds the limit"},
		{"kv count over the limit", header(0, MaxKVs+1).bytes(make([]byte, 13*(MaxKVs+1))...), "exceeds the limit"},
		{"duplicate key", header(0, 2).str("k").u32(uint32(TypeUint8)).bytes(1).str("k").u32(uint32(TypeUint8)).bytes(2), `duplicate key "k"`},
		{"alignment type", header(0, 1).str(KeyAlignment).u32(uint32(TypeUint64)).u64(32), "want uint32"},
		{"alignment value", header(0, 1).str(KeyAlignment).u32(uint32(TypeUint32)).u32(48), "power of two"},
		{"too many dims", header(1, 0).tensor("t", F32, 0, 1, 1, 1, 1, 1).data(4), "5 dims"},
		{"unknown ggml type", header(1, 0).tensor("t", Type(4), 0, 32).data(32), "unknown ggml type 4"},
		{"partial block", header(1, 0).tensor("t", Q8_0, 0, 16).data(34), "not a multiple"},
		{"overflow", header(1, 0).tensor("t", F32, 0, 1<<32, 1<<32).data(4), "overflow"},
		{"misaligned", header(1, 0).tensor("t", F32, 4, 1).data(8), "not a multiple of the alignment"},
		{"out of range", header(1, 0).tensor("t", F32, 0, 4).data(12), "exceed"},
		{"offset past end", header(1, 0).tensor("t", F32, 1<<40, 1).data(4), "exceed"},
		{"overlap", header(2, 0).tensor("a", F32, 0, 16).tensor("b", F32, 32, 16).data(96), `"b" at offset 32 overlaps tensor "a"`},
		{"duplicate tensor", header(2, 0).tensor("a", F32, 0, 1).tensor("a", F32, 32, 1).data(64), `duplicate tensor "a"`},
		{"no data section", header(1, 0).tensor("a", F32, 0, 1), "past the end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.data)
			if err == nil {
				t.Fatalf("Parse: got nil error, want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name string
		data raw
	}{
		{"empty file", header(0, 0)},
		{"version 2", raw(nil).u32(Magic).u32(2).u64(0).u64(0)},
		{"zero-size tensor", header(1, 0).tensor("z", F32, 0, 0, 5).data(0)},
		{"gap between tensors", header(2, 0).tensor("a", F32, 0, 1).tensor("b", F32, 64, 1).data(68)},
		{"scalar tensor", header(1, 0).tensor("s", F32, 0).data(4)},
	}
	for _, tt := range tests {
		if _, err := Parse(tt.data); err != nil {
			t.Errorf("%s: Parse: %v", tt.name, err)
		}
	}
}
