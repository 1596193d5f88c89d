package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func f32Bytes(xs ...float32) []byte {
	var b []byte
	for _, x := range xs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func sampleTensors() []Tensor {
	return []Tensor{
		{Name: "w", DType: F32, Shape: []int{2, 2}, Data: f32Bytes(1, -2, 3.5, 0)},
		{Name: "b16", DType: BF16, Shape: []int{3}, Data: []byte{0x80, 0x3f, 0x00, 0xc0, 0x00, 0x00}}, // 1, -2, 0
		{Name: "h", DType: F16, Shape: []int{1, 2}, Data: []byte{0x00, 0x3c, 0x00, 0xb8}},             // 1, -0.5
		{Name: "d", DType: F64, Shape: []int{1}, Data: binary.LittleEndian.AppendUint64(nil, math.Float64bits(0.25))},
		{Name: "scalar", DType: I8, Shape: []int{}, Data: []byte{0xff}},
		{Name: "empty", DType: U8, Shape: []int{0, 4}, Data: []byte{}},
		{Name: "model.layers.0.<odd>&", DType: I32, Shape: []int{2}, Data: []byte{1, 0, 0, 0, 2, 0, 0, 0}},
	}
}

func encode(t *testing.T, ts []Tensor, md map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, ts, md); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	md := map[string]string{"format": "pt", "note": "a \"quoted\" <value>"}
	data := encode(t, sampleTensors(), md)
	f, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	defer f.Close()
	if got, want := f.Metadata(), md; !reflect.DeepEqual(got, want) {
		t.Errorf("Metadata = %v, want %v", got, want)
	}
	var wantNames []string
	for _, w := range sampleTensors() {
		wantNames = append(wantNames, w.Name)
		got, ok := f.Tensor(w.Name)
		if !ok {
			t.Fatalf("Tensor(%q) missing", w.Name)
		}
		if got.DType != w.DType || !reflect.DeepEqual(got.Shape, w.Shape) || !bytes.Equal(got.Data, w.Data) {
			t.Errorf("Tensor(%q) = %+v, want %+v", w.Name, got, w)
		}
	}
	slicesSort(wantNames)
	if got := f.Names(); !reflect.DeepEqual(got, wantNames) {
		t.Errorf("Names = %v, want %v", got, wantNames)
	}
	hlen := binary.LittleEndian.Uint64(data)
	if hlen%8 != 0 {
		t.Errorf("header length %d is not a multiple of 8", hlen)
	}
	// Every tensor starts aligned to its element size inside the file.
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(data[8:8+hlen], &hdr); err != nil {
		t.Fatal(err)
	}
	for name, raw := range hdr {
		if name == metadataKey {
			continue
		}
		var e headerEntry
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatal(err)
		}
		if begin := e.DataOffsets[0]; begin%uint64(e.DType.Size()) != 0 {
			t.Errorf("tensor %q of %s starts at %d, not aligned", name, e.DType, begin)
		}
	}
}

func slicesSort(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func TestGoldenHeader(t *testing.T) {
	ts := []Tensor{
		{Name: "b", DType: F16, Shape: []int{2}, Data: []byte{0, 0x3c, 0, 0x40}},
		{Name: "a", DType: F32, Shape: []int{1, 2}, Data: f32Bytes(1, 2)},
	}
	data := encode(t, ts, map[string]string{"format": "pt"})
	golden := filepath.Join("testdata", "tiny.safetensors")
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
		t.Errorf("Write output differs from %s:\ngot  %q\nwant %q", golden, data, want)
	}
	// The header layout of the reference writer: metadata first, larger dtypes first, space padding.
	const wantHeader = `{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},"b":{"dtype":"F16","shape":[2],"data_offsets":[8,12]}}`
	n := binary.LittleEndian.Uint64(data)
	if got := strings.TrimRight(string(data[8:8+n]), " "); got != wantHeader {
		t.Errorf("header = %s\nwant     %s", got, wantHeader)
	}
}

func TestFloat32(t *testing.T) {
	tests := []struct {
		name string
		want []float32
	}{
		{"w", []float32{1, -2, 3.5, 0}},
		{"b16", []float32{1, -2, 0}},
		{"h", []float32{1, -0.5}},
		{"d", []float32{0.25}},
	}
	byName := map[string]Tensor{}
	for _, ts := range sampleTensors() {
		byName[ts.Name] = ts
	}
	for _, tt := range tests {
		got, err := byName[tt.name].Float32()
		if err != nil {
			t.Fatalf("%s: Float32: %v", tt.name, err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Float32 = %v, want %v", tt.name, got, tt.want)
		}
	}
	_, err := byName["scalar"].Float32()
	if err == nil || !strings.Contains(err.Error(), `"scalar"`) || !strings.Contains(err.Error(), "I8") {
		t.Errorf("Float32 of I8: got %v, want an error naming the tensor and dtype", err)
	}
	dst := make([]float32, 4)
	if err := byName["w"].Float32Into(dst); err != nil || !reflect.DeepEqual(dst, tests[0].want) {
		t.Errorf("Float32Into = %v, %v; want %v", dst, err, tests[0].want)
	}
	if err := byName["w"].Float32Into(make([]float32, 3)); err == nil {
		t.Errorf("Float32Into with 3 of 4 values: got nil error")
	}
	bad := Tensor{Name: "short", DType: F32, Shape: []int{3}, Data: make([]byte, 8)}
	if _, err := bad.Float32(); err == nil {
		t.Errorf("Float32 with short data: got nil error")
	}
}

func TestNumElements(t *testing.T) {
	tests := []struct {
		shape []int
		want  int
	}{
		{nil, 1}, {[]int{}, 1}, {[]int{3, 4}, 12}, {[]int{0, 5}, 0}, {[]int{-1}, -1},
		{[]int{math.MaxInt / 2, 3}, -1},
	}
	for _, tt := range tests {
		if got := (Tensor{Shape: tt.shape}).NumElements(); got != tt.want {
			t.Errorf("NumElements(%v) = %d, want %d", tt.shape, got, tt.want)
		}
	}
}

// file builds a safetensors byte image from a raw header and data size.
func file(header string, dataLen int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, make([]byte, dataLen)...)
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"short", []byte{1, 2, 3}, "shorter than"},
		{"huge header", binary.LittleEndian.AppendUint64(nil, 200_000_000), "exceeds the limit"},
		{"header past end", binary.LittleEndian.AppendUint64(nil, 100), "exceeds the"},
		{"not object", file(`[1]`, 0), "JSON object"},
		{"empty header", file(``, 0), "JSON object"},
		{"invalid utf8", file("{\"a\xff\":1}", 0), "UTF-8"},
		{"bad json", file(`{"a":`, 0), "header"},
		{"trailing", file(`{} {}`, 0), "trailing"},
		{"duplicate", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, 2), `duplicate key "a"`},
		{"metadata not strings", file(`{"__metadata__":{"k":1}}`, 0), "__metadata__"},
		{"unknown dtype", file(`{"a":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}`, 16), `tensor "a": unknown dtype`},
		{"unknown field", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}}`, 1), `tensor "a"`},
		{"negative dim", file(`{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}`, 1), `tensor "a"`},
		{"one offset", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0]}}`, 1), "data_offsets has 1"},
		{"reversed", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,0]}}`, 1), "outside"},
		{"out of range", file(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}`, 3), "outside"},
		{"size mismatch", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 4), "needs 2 elements x 4 bytes"},
		{"overflow", file(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`, 0), "overflow"},
		{"overflow bytes", file(`{"a":{"dtype":"F64","shape":[2305843009213693952,8],"data_offsets":[0,0]}}`, 0), `tensor "a"`},
		{"overlap", file(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}`, 3), "overlaps"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(tt.data)
			if err == nil {
				t.Fatalf("Parse: got nil error, want one containing %q (tensors %v)", tt.want, f.Names())
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
		data []byte
	}{
		{"empty object", file(`{}`, 0)},
		{"padded", file(`{}      `, 0)},
		{"metadata only", file(`{"__metadata__":{"a":"b"}}`, 0)},
		{"null metadata", file(`{"__metadata__":null}`, 0)},
		{"gap between tensors", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}`, 3)},
		{"zero-size tensors share an offset", file(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[1,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, 1)},
	}
	for _, tt := range tests {
		if _, err := Parse(tt.data); err != nil {
			t.Errorf("%s: Parse: %v", tt.name, err)
		}
	}
}

func TestTruncation(t *testing.T) {
	data := encode(t, sampleTensors(), map[string]string{"format": "pt"})
	for i := 0; i < len(data); i++ {
		if _, err := Parse(data[:i]); err == nil {
			t.Fatalf("Parse of the first %d of %d bytes: got nil error", i, len(data))
		}
	}
}

func TestErrorsNameFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bad.safetensors")
	if err := os.WriteFile(p, file(`{"a":{"dtype":"X","shape":[1],"data_offsets":[0,1]}}`, 1), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("Open error = %v, want it to name %s and tensor \"a\"", err, p)
	}
}

func TestWriteErrors(t *testing.T) {
	tests := []struct {
		name string
		ts   []Tensor
		want string
	}{
		{"dup", []Tensor{{Name: "a", DType: U8, Shape: []int{1}, Data: []byte{1}}, {Name: "a", DType: U8, Shape: []int{1}, Data: []byte{1}}}, "duplicate"},
		{"dtype", []Tensor{{Name: "a", DType: "Q4", Shape: []int{1}, Data: []byte{1}}}, "unknown dtype"},
		{"size", []Tensor{{Name: "a", DType: F32, Shape: []int{2}, Data: []byte{1}}}, "needs 8 bytes"},
		{"negative", []Tensor{{Name: "a", DType: U8, Shape: []int{-1}, Data: nil}}, `"a"`},
		{"reserved", []Tensor{{Name: "__metadata__", DType: U8, Shape: []int{1}, Data: []byte{1}}}, "reserved"},
	}
	for _, tt := range tests {
		err := Write(&bytes.Buffer{}, tt.ts, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Write error = %v, want it to contain %q", tt.name, err, tt.want)
		}
	}
}

func TestWriteFileOpen(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.safetensors")
	if err := WriteFile(p, sampleTensors(), nil); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after WriteFile, want 1 (no temp files)", len(entries))
	}
	f, err := Open(p)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	w, ok := f.Tensor("w")
	if !ok {
		t.Fatal("tensor w missing")
	}
	if got, err := w.Float32(); err != nil || !reflect.DeepEqual(got, []float32{1, -2, 3.5, 0}) {
		t.Errorf("w = %v, %v; want [1 -2 3.5 0]", got, err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := WriteFile(filepath.Join(dir, "missing", "x.safetensors"), nil, nil); err == nil {
		t.Errorf("WriteFile into a missing directory: got nil error")
	}
}

func TestFloat16Table(t *testing.T) {
	// Large F16 tensors take the table path; it must agree with the direct one.
	n := 1 << 18
	data := make([]byte, 2*n)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint16(data[2*i:], uint16(i*7919))
	}
	big := Tensor{Name: "big", DType: F16, Shape: []int{n}, Data: data}
	got, err := big.Float32()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 1 << 12 {
		small := Tensor{Name: "s", DType: F16, Shape: []int{1 << 12}, Data: data[2*i : 2*(i+1<<12)]}
		want, _ := small.Float32()
		for j, w := range want {
			if g := got[i+j]; math.Float32bits(g) != math.Float32bits(w) {
				t.Fatalf("element %d = %v, want %v", i+j, g, w)
			}
		}
	}
}

func BenchmarkFloat32(b *testing.B) {
	for _, dt := range []DType{F32, F16, BF16} {
		n := 1 << 20
		t := Tensor{Name: "x", DType: dt, Shape: []int{n}, Data: make([]byte, n*dt.Size())}
		dst := make([]float32, n)
		b.Run(string(dt), func(b *testing.B) {
			b.SetBytes(int64(len(t.Data)))
			for b.Loop() {
				if err := t.Float32Into(dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestDTypeTables(t *testing.T) {
	for dt := range dtypeSizes {
		if _, ok := dtypeRank[dt]; !ok {
			t.Errorf("dtype %s has a size but no layout rank", dt)
		}
	}
	if len(dtypeRank) != len(dtypeSizes) {
		t.Errorf("%d ranks for %d dtypes", len(dtypeRank), len(dtypeSizes))
	}
}

func TestWriteOrder(t *testing.T) {
	// The reference writer's layout: dtypes by decreasing rank (U64, I64, F64,
	// F32, ..., BF16, F16, ...), then names.
	ts := []Tensor{
		{Name: "a", DType: F16, Shape: []int{1}, Data: make([]byte, 2)},
		{Name: "b", DType: BF16, Shape: []int{1}, Data: make([]byte, 2)},
		{Name: "c", DType: U64, Shape: []int{1}, Data: make([]byte, 8)},
		{Name: "d", DType: F64, Shape: []int{1}, Data: make([]byte, 8)},
		{Name: "e", DType: U8, Shape: []int{1}, Data: make([]byte, 1)},
		{Name: "f", DType: F32, Shape: []int{1}, Data: make([]byte, 4)},
	}
	data := encode(t, ts, nil)
	n := binary.LittleEndian.Uint64(data)
	var got []string
	kvs, err := decodeObject(data[8 : 8+n])
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range kvs {
		got = append(got, kv.key)
	}
	if want := []string{"c", "d", "f", "b", "a", "e"}; !reflect.DeepEqual(got, want) {
		t.Errorf("layout order = %v, want %v", got, want)
	}
}
