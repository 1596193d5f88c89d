package gguf

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// allValues has one entry for every value type and array element type.
var allValues = []KV{
	{"u8", uint8(200)},
	{"i8", int8(-100)},
	{"u16", uint16(60000)},
	{"i16", int16(-30000)},
	{"u32", uint32(4000000000)},
	{"i32", int32(-2000000000)},
	{"f32", float32(3.25)},
	{"bool", true},
	{"bool.false", false},
	{"str", "héllo\x00world"},
	{"str.empty", ""},
	{"u64", uint64(1) << 63},
	{"i64", int64(math.MinInt64)},
	{"f64", math.Pi},
	{"a.u8", []uint8{1, 2, 255}},
	{"a.i8", []int8{-1, 0, 1}},
	{"a.u16", []uint16{1, 65535}},
	{"a.i16", []int16{-32768, 32767}},
	{"a.u32", []uint32{0, 1 << 31}},
	{"a.i32", []int32{-5, 7}},
	{"a.f32", []float32{1.5, -0.25}},
	{"a.bool", []bool{true, false, true}},
	{"a.str", []string{"a", "", "ccc"}},
	{"a.u64", []uint64{math.MaxUint64}},
	{"a.i64", []int64{math.MinInt64, 3}},
	{"a.f64", []float64{2.5}},
	{"a.empty", []int32{}},
}

func f32Bytes(xs ...float32) []byte {
	var b []byte
	for _, x := range xs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

type testTensor struct {
	name string
	typ  Type
	dims []uint64
	data []byte
}

func sampleTensors() []testTensor {
	q8 := make([]byte, 2*34)
	for i := range q8 {
		q8[i] = byte(i * 7)
	}
	return []testTensor{
		{"token_embd.weight", F32, []uint64{3, 2}, f32Bytes(1, 2, 3, 4, 5, 6)},
		{"output_norm.weight", F16, []uint64{5}, []byte{0, 0x3c, 0, 0x40, 0, 0x42, 0, 0x44, 0, 0x45}},
		{"blk.0.attn_q.weight", TQ2_0, []uint64{256, 2}, bytes.Repeat([]byte{0x55}, 2*66)},
		{"blk.0.attn_k.weight", TQ1_0, []uint64{256}, bytes.Repeat([]byte{0x11}, 54)},
		{"blk.0.ffn_up.weight", Q8_0, []uint64{64}, q8},
		{"blk.0.x", BF16, []uint64{1, 1, 1, 3}, []byte{0x80, 0x3f, 0, 0, 0, 0xc0}},
	}
}

func buildFile(t testing.TB, kvs []KV, tensors []testTensor) []byte {
	t.Helper()
	w := NewWriter()
	for _, kv := range kvs {
		if err := w.AddKV(kv.Key, kv.Value); err != nil {
			t.Fatalf("AddKV(%q): %v", kv.Key, err)
		}
	}
	for _, tt := range tensors {
		if err := w.AddTensor(tt.name, tt.typ, tt.dims, tt.data); err != nil {
			t.Fatalf("AddTensor(%q): %v", tt.name, err)
		}
	}
	var buf bytes.Buffer
	n, err := w.WriteTo(&buf)
	if err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	if n != int64(buf.Len()) {
		t.Errorf("WriteTo returned %d, wrote %d bytes", n, buf.Len())
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	for _, align := range []int{0, 64} {
		kvs := append([]KV(nil), allValues...)
		if align != 0 {
			kvs = append([]KV{{KeyAlignment, uint32(align)}}, kvs...)
		}
		data := buildFile(t, kvs, sampleTensors())
		f, err := Parse(data)
		if err != nil {
			t.Fatalf("align %d: Parse: %v", align, err)
		}
		wantAlign := align
		if align == 0 {
			wantAlign = DefaultAlignment
		}
		if f.Alignment != wantAlign || f.Version != Version {
			t.Errorf("Alignment, Version = %d, %d, want %d, %d", f.Alignment, f.Version, wantAlign, Version)
		}
		if !reflect.DeepEqual(f.KVs, kvs) {
			t.Errorf("KVs differ:\ngot  %#v\nwant %#v", f.KVs, kvs)
		}
		if f.DataOffset%int64(wantAlign) != 0 {
			t.Errorf("DataOffset %d is not aligned to %d", f.DataOffset, wantAlign)
		}
		var want uint64
		for i, tt := range sampleTensors() {
			info, got, err := f.TensorData(tt.name)
			if err != nil {
				t.Fatalf("TensorData(%q): %v", tt.name, err)
			}
			if !bytes.Equal(got, tt.data) || info.Type != tt.typ || !reflect.DeepEqual(info.Dims, tt.dims) {
				t.Errorf("tensor %q = %v %v %x, want %v %v %x", tt.name, info.Type, info.Dims, got, tt.typ, tt.dims, tt.data)
			}
			// llama.cpp requires each tensor right after the previous one, padded.
			if info.Offset != want || f.Tensors[i].Name != tt.name {
				t.Errorf("tensor %d %q at offset %d, want %q at %d", i, f.Tensors[i].Name, info.Offset, tt.name, want)
			}
			want = alignUp(want+uint64(len(tt.data)), uint64(wantAlign))
		}
		if got := uint64(len(data)) - uint64(f.DataOffset); got != want {
			t.Errorf("data section is %d bytes, want %d", got, want)
		}
		if _, _, err := f.TensorData("nope"); err == nil {
			t.Errorf("TensorData(nope): got nil error")
		}
	}
}

func TestIntConversion(t *testing.T) {
	big := math.MaxInt // INT64 on 64-bit platforms, INT32 where int is 32 bits
	var wantBig, wantBigArr any = int64(big), []int64{int64(big)}
	if big == math.MaxInt32 {
		wantBig, wantBigArr = int32(big), []int32{int32(big)}
	}
	w := NewWriter()
	for _, kv := range []KV{{"small", 7}, {"big", big}, {"arr", []int{1, -2}}, {"bigarr", []int{big}}, {KeyAlignment, 16}} {
		if err := w.AddKV(kv.Key, kv.Value); err != nil {
			t.Fatalf("AddKV(%q): %v", kv.Key, err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"small": int32(7), "big": wantBig, "arr": []int32{1, -2}, "bigarr": wantBigArr, KeyAlignment: uint32(16)}
	for k, v := range want {
		if got, _ := f.Get(k); !reflect.DeepEqual(got, v) {
			t.Errorf("Get(%q) = %#v, want %#v", k, got, v)
		}
	}
	if f.Alignment != 16 {
		t.Errorf("Alignment = %d, want 16", f.Alignment)
	}
}

func TestAccessors(t *testing.T) {
	f, err := Parse(buildFile(t, allValues, nil))
	if err != nil {
		t.Fatal(err)
	}
	if s, err := f.String("str"); err != nil || s != "héllo\x00world" {
		t.Errorf("String(str) = %q, %v", s, err)
	}
	for _, tt := range []struct {
		key  string
		want uint32
		ok   bool
	}{{"u8", 200, true}, {"u16", 60000, true}, {"u32", 4000000000, true}, {"i8", 0, false}, {"u64", 0, false}, {"f32", 0, false}, {"missing", 0, false}} {
		got, err := f.Uint32(tt.key)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("Uint32(%q) = %d, %v; want %d, ok=%v", tt.key, got, err, tt.want, tt.ok)
		}
	}
	if v, err := f.Float32("f64"); err != nil || v != float32(math.Pi) {
		t.Errorf("Float32(f64) = %v, %v", v, err)
	}
	if _, err := f.Float32("str"); err == nil || !strings.Contains(err.Error(), `"str"`) {
		t.Errorf("Float32(str) error = %v, want one naming the key", err)
	}
	if v, err := f.Strings("a.str"); err != nil || !reflect.DeepEqual(v, []string{"a", "", "ccc"}) {
		t.Errorf("Strings = %q, %v", v, err)
	}
	if v, err := f.Int32s("a.u16"); err != nil || !reflect.DeepEqual(v, []int32{1, 65535}) {
		t.Errorf("Int32s(a.u16) = %v, %v", v, err)
	}
	if _, err := f.Int32s("a.u32"); err == nil {
		t.Errorf("Int32s(a.u32) with 1<<31: got nil error")
	}
	if v, err := f.Float32s("a.f64"); err != nil || !reflect.DeepEqual(v, []float32{2.5}) {
		t.Errorf("Float32s(a.f64) = %v, %v", v, err)
	}
	if v, err := f.Int64("i64"); err != nil || v != math.MinInt64 {
		t.Errorf("Int64(i64) = %v, %v", v, err)
	}
	if v, err := f.Uint64("u64"); err != nil || v != 1<<63 {
		t.Errorf("Uint64(u64) = %v, %v", v, err)
	}
	if v, err := f.Bool("bool"); err != nil || !v {
		t.Errorf("Bool(bool) = %v, %v", v, err)
	}
}

// tinyFile is a small, fully specified file for the golden test.
func tinyFile(t testing.TB) []byte {
	return buildFile(t, []KV{
		{"general.architecture", "bitnet"},
		{"bitnet.block_count", uint32(1)},
		{"tokenizer.ggml.tokens", []string{"a", "b"}},
	}, []testTensor{
		{"output_norm.weight", F32, []uint64{2}, f32Bytes(1, -1)},
		{"token_embd.weight", F16, []uint64{2, 2}, []byte{0, 0x3c, 0, 0, 0, 0, 0, 0xbc}},
	})
}

// TestGolden pins the bytes of a tiny file. testdata/tiny.gguf is also
// byte-identical to what ggml's gguf_write_to_file writes for the same content
// (checked once with ggml commit d99724f2).
func TestGolden(t *testing.T) {
	data := tinyFile(t)
	golden := filepath.Join("testdata", "tiny.gguf")
	if *update {
		if err := os.WriteFile(golden, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if !bytes.Equal(data, want) {
		t.Errorf("written file differs from %s:\ngot  %x\nwant %x", golden, data, want)
	}
	// The fixed header fields, spelled out.
	wantHead := []byte{'G', 'G', 'U', 'F', 3, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0,
		20, 0, 0, 0, 0, 0, 0, 0}
	wantHead = append(wantHead, "general.architecture"...)
	wantHead = append(wantHead, 8, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0)
	wantHead = append(wantHead, "bitnet"...)
	if !bytes.HasPrefix(data, wantHead) {
		t.Errorf("header = %x..., want prefix %x", data[:len(wantHead)], wantHead)
	}
}

func TestTruncation(t *testing.T) {
	data := buildFile(t, allValues, sampleTensors())
	full, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	// Like llama.cpp's loader, only the padding after the last tensor may be cut.
	var end int64
	for _, ti := range full.Tensors {
		end = max(end, full.DataOffset+int64(ti.Offset+ti.Size()))
	}
	for i := 0; i < len(data); i++ {
		_, err := Parse(data[:i])
		if int64(i) < end && err == nil {
			t.Fatalf("Parse of the first %d of %d bytes: got nil error", i, len(data))
		}
		if int64(i) >= end && err != nil {
			t.Fatalf("Parse without %d bytes of final padding: %v", len(data)-i, err)
		}
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.gguf")
	w := NewWriter()
	w.AddKV("general.architecture", "bitnet")
	if err := w.AddTensor("a", F32, []uint64{2}, f32Bytes(1, 2)); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFile(p); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %d entries, want 1 (no temp files)", len(entries))
	}
	f, err := Open(p)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	_, data, err := f.TensorData("a")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := DecodeFloat32(F32, data, 2); !reflect.DeepEqual(got, []float32{1, 2}) {
		t.Errorf("a = %v, want [1 2]", got)
	}
	if err := f.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	bad := filepath.Join(dir, "bad.gguf")
	os.WriteFile(bad, []byte("GGUF\x01\x00\x00\x00"), 0o644)
	if _, err := Open(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("Open(bad) error = %v, want one naming the file", err)
	}
}

func TestTypes(t *testing.T) {
	tests := []struct {
		typ        Type
		name       string
		block, siz int
	}{
		{F32, "F32", 1, 4}, {F16, "F16", 1, 2}, {BF16, "BF16", 1, 2}, {Q8_0, "Q8_0", 32, 34},
		{Q4_0, "Q4_0", 32, 18}, {Q6_K, "Q6_K", 256, 210}, {Q4_K, "Q4_K", 256, 144},
		{TQ1_0, "TQ1_0", 256, 54}, {TQ2_0, "TQ2_0", 256, 66}, {I8, "I8", 1, 1}, {MXFP4, "MXFP4", 32, 17},
		{Type(4), "Type(4)", 0, 0},
	}
	for _, tt := range tests {
		if tt.typ.String() != tt.name || tt.typ.BlockSize() != tt.block || tt.typ.TypeSize() != tt.siz {
			t.Errorf("%d: got %s %d %d, want %s %d %d", uint32(tt.typ), tt.typ, tt.typ.BlockSize(), tt.typ.TypeSize(), tt.name, tt.block, tt.siz)
		}
	}
	if _, err := TensorSize(Q8_0, []uint64{33}); err == nil {
		t.Errorf("TensorSize(Q8_0, [33]): got nil error")
	}
	if _, err := TensorSize(F32, []uint64{1 << 40, 1 << 40}); err == nil {
		t.Errorf("TensorSize overflow: got nil error")
	}
	if _, err := TensorSize(I64, []uint64{1 << 62}); err == nil {
		t.Errorf("TensorSize(I64, [1<<62]) overflow: got nil error")
	}
}

// TestI2SSize checks bitnet.cpp's I2_S sizing: n/4 bytes of codes and 32
// bytes of scale and padding per tensor, no per-row size.
func TestI2SSize(t *testing.T) {
	tests := []struct {
		dims []uint64
		want uint64
		err  bool
	}{
		{[]uint64{2560, 2560}, 2560*2560/4 + 32, false},
		{[]uint64{8640, 3200}, 8640*3200/4 + 32, false},
		{[]uint64{128}, 64, false},
		{[]uint64{6, 3}, 0, true}, // 18 elements: the last code would be cut
		{[]uint64{1 << 40, 1 << 40}, 0, true},
	}
	for _, tt := range tests {
		got, err := TensorSize(I2_S, tt.dims)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("TensorSize(I2_S, %v) = %d, %v; want %d, error %v", tt.dims, got, err, tt.want, tt.err)
		}
	}
	if I2_S.String() != "I2_S" || uint32(I2_S) != 36 {
		t.Errorf("I2_S = %d %q, want 36 \"I2_S\"", uint32(I2_S), I2_S)
	}
	if _, err := I2_S.RowSize(128); err == nil {
		t.Errorf("I2_S.RowSize: got nil error")
	}
	// A writer and reader round trip keeps the extra 32 bytes.
	w := NewWriter()
	data := make([]byte, 256/4+I2SExtra)
	data[256/4] = 0x80 // part of the scale
	if err := w.AddTensor("t", I2_S, []uint64{128, 2}, data); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	_, got, err := f.TensorData("t")
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("TensorData = %v, %v; want the %d bytes written", got, err, len(data))
	}
}

func TestWriterErrors(t *testing.T) {
	w := NewWriter()
	if err := w.AddKV("k", 1); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		err  error
		want string
	}{
		{"dup key", w.AddKV("k", 2), "duplicate key"},
		{"bad type", w.AddKV("x", struct{}{}), "unsupported value type"},
		{"empty key", w.AddKV("", 1), "1 to 65536 bytes"},
		{"nested", w.AddKV("y", [][]int32{{1}}), "unsupported value type"},
		{"alignment", w.AddKV(KeyAlignment, uint32(3)), "power of two"},
		{"size", w.AddTensor("t", F32, []uint64{2}, []byte{1}), "needs 8 bytes"},
		{"blocks", w.AddTensor("t", Q8_0, []uint64{16}, make([]byte, 17)), "not a multiple"},
		{"type", w.AddTensor("t", Type(99), []uint64{1}, []byte{1}), "unknown ggml type"},
		{"name", w.AddTensor(strings.Repeat("n", 64), F32, []uint64{1}, make([]byte, 4)), "1 to 63 bytes"},
		{"dims", w.AddTensor("t", F32, []uint64{1, 1, 1, 1, 1}, make([]byte, 4)), "dims"},
	}
	for _, c := range checks {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: error = %v, want it to contain %q", c.name, c.err, c.want)
		}
	}
	if err := w.AddTensor("t", F32, []uint64{1}, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("t", F32, []uint64{1}, make([]byte, 4)); err == nil {
		t.Errorf("duplicate tensor: got nil error")
	}
	if err := w.AddKV(KeyAlignment, uint32(64)); err == nil {
		t.Errorf("alignment after tensors: got nil error")
	}
}

// TestTypeTableMatchesGGML compares every known type with testdata/ggml_types.txt,
// printed by ggml itself (ggml commit d99724f2: index, ggml_type_name,
// ggml_blck_size, ggml_type_size).
func TestTypeTableMatchesGGML(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "ggml_types.txt"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[Type]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var id uint32
		var name string
		var block, size int
		if _, err := fmt.Sscan(line, &id, &name, &block, &size); err != nil {
			t.Fatalf("bad line %q: %v", line, err)
		}
		typ := Type(id)
		seen[typ] = true
		if !strings.EqualFold(typ.String(), name) || typ.BlockSize() != block || typ.TypeSize() != size {
			t.Errorf("type %d: got %s %d %d, want %s %d %d", id, typ, typ.BlockSize(), typ.TypeSize(), name, block, size)
		}
	}
	for typ := range typeInfos {
		if !seen[typ] && typ != I2_S { // I2_S is bitnet.cpp's (TestI2SSize)
			t.Errorf("type %s is not in ggml's table", typ)
		}
	}
}

func TestRewrite(t *testing.T) {
	f, err := Parse(buildFile(t, allValues, sampleTensors()))
	if err != nil {
		t.Fatal(err)
	}
	first := f.Tensors[0].Name
	w, err := Rewrite(f, func(kv *KV) bool {
		if kv.Key == "u8" {
			kv.Value = uint8(99)
		}
		return kv.Key != "str"
	}, func(ti *TensorInfo, data []byte) ([]byte, bool) { return data, ti.Name != first })
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	g, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := g.Get("u8"); v != uint8(99) {
		t.Errorf("u8 = %v, want the edited 99", v)
	}
	if _, ok := g.Get("str"); ok {
		t.Error("str kept, want dropped")
	}
	if _, ok := g.Tensor(first); ok || len(g.Tensors) != len(f.Tensors)-1 {
		t.Errorf("got %d tensors with %s: want it dropped", len(g.Tensors), first)
	}
}
