package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/bitnet-mesh/bitnet-mesh/shared/mmap"
)

// Magic is "GGUF" read as a little-endian uint32.
const Magic = 0x46554747

// Version is the GGUF version this package writes; Parse also reads version 2,
// which has the same layout.
const Version = 3

// DefaultAlignment applies when general.alignment is absent.
const DefaultAlignment = 32

// KeyAlignment is the metadata key that overrides the data alignment.
const KeyAlignment = "general.alignment"

// Limits that keep a hostile header from exhausting memory or time. Every
// count is also checked against the bytes left in the file before anything
// is allocated for it, so the memory Parse takes is bounded by the file's
// size and these limits, whatever the header claims.
const (
	maxStringLen = 1 << 26 // 64 MiB: a whole tokenizer.json fits
	maxKeyLen    = 1 << 16
	// MaxTensors bounds the tensor count (a 4096-block model has 45 K).
	MaxTensors = 1 << 20
	// MaxKVs bounds the metadata entries.
	MaxKVs = 1 << 16
	// MaxArrayLen bounds one metadata array (a 16 M-token vocabulary fits).
	MaxArrayLen = 1 << 24
)

// KV is one metadata entry. Value holds one of uint8, int8, uint16, int16,
// uint32, int32, uint64, int64, float32, float64, bool, string, or a slice
// of one of those.
type KV struct {
	Key   string
	Value any
}

// TensorInfo describes one tensor. Dims lists ne0 (the row length) first;
// Offset is relative to the start of the data section.
type TensorInfo struct {
	Name   string
	Dims   []uint64
	Type   Type
	Offset uint64
}

// NumElements returns the product of the dims.
func (t TensorInfo) NumElements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Size returns the tensor's byte size (0 if its type or dims are invalid,
// which Parse never lets through).
func (t TensorInfo) Size() uint64 {
	s, _ := TensorSize(t.Type, t.Dims)
	return s
}

// File is a parsed GGUF file. It is safe for concurrent readers.
type File struct {
	Version    uint32
	KVs        []KV
	Tensors    []TensorInfo
	Alignment  int
	DataOffset int64 // file offset of the data section

	name    string
	data    []byte // the data section
	kvIndex map[string]int
	tIndex  map[string]int
	m       *mmap.Mapping
}

// Open memory-maps and parses the GGUF file at path.
func Open(path string) (*File, error) {
	m, err := mmap.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	f, err := parse(path, m.Bytes())
	if err != nil {
		m.Close()
		return nil, err
	}
	f.m = m
	return f, nil
}

// Parse validates data as a GGUF file. Tensor data aliases data.
func Parse(data []byte) (*File, error) { return parse("<bytes>", data) }

var errTruncated = errors.New("unexpected end of file")

// reader decodes little-endian fields with bounds checks; the first error sticks.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.fail(fmt.Errorf("at offset %d: %w (need %d bytes, have %d)", r.off, errTruncated, n, len(r.b)-r.off))
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

func (r *reader) remaining() int { return len(r.b) - r.off }

func (r *reader) u8() uint8 {
	if p := r.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if p := r.take(2); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if p := r.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if p := r.take(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

func (r *reader) str(limit int) string {
	n := r.u64()
	if r.err != nil {
		return ""
	}
	if n > uint64(limit) {
		r.fail(fmt.Errorf("at offset %d: string length %d exceeds the limit %d", r.off-8, n, limit))
		return ""
	}
	return string(r.take(int(n)))
}

// count reads a u64 count and checks it against limit and that
// count*minSize bytes remain, so a bad count cannot trigger a huge
// allocation.
func (r *reader) count(what string, minSize, limit int) int {
	n := r.u64()
	if r.err != nil {
		return 0
	}
	if n > uint64(limit) {
		r.fail(fmt.Errorf("at offset %d: %s count %d exceeds the limit %d", r.off-8, what, n, limit))
		return 0
	}
	if n > uint64(r.remaining()/minSize) {
		r.fail(fmt.Errorf("at offset %d: %s count %d needs at least %d bytes each, only %d bytes remain", r.off-8, what, n, minSize, r.remaining()))
		return 0
	}
	return int(n)
}

func parse(name string, data []byte) (*File, error) {
	errf := func(format string, args ...any) error {
		return fmt.Errorf("gguf %s: "+format, append([]any{name}, args...)...)
	}
	r := &reader{b: data}
	if magic := r.u32(); r.err == nil && magic != Magic {
		return nil, errf("bad magic %#08x, want %#08x (\"GGUF\")", magic, Magic)
	}
	version := r.u32()
	if r.err == nil && version != 2 && version != 3 {
		return nil, errf("unsupported version %d (want 2 or 3)", version)
	}
	nTensors := r.count("tensor", 8+4+4+8, MaxTensors)
	nKV := r.count("key/value", 8+4+1, MaxKVs)
	if r.err != nil {
		return nil, errf("header: %w", r.err)
	}
	f := &File{Version: version, Alignment: DefaultAlignment, name: name,
		KVs: make([]KV, 0, nKV), kvIndex: make(map[string]int, nKV), tIndex: make(map[string]int, nTensors)}
	for i := 0; i < nKV; i++ {
		key := r.str(maxKeyLen)
		vt := ValueType(r.u32())
		if r.err != nil {
			return nil, errf("key/value %d: %w", i, r.err)
		}
		if key == "" {
			return nil, errf("key/value %d has an empty key", i)
		}
		v, err := readValue(r, vt)
		if err != nil {
			return nil, errf("key %q: %w", key, err)
		}
		if _, dup := f.kvIndex[key]; dup {
			return nil, errf("duplicate key %q", key)
		}
		f.kvIndex[key] = len(f.KVs)
		f.KVs = append(f.KVs, KV{key, v})
	}
	if v, ok := f.Get(KeyAlignment); ok {
		a, ok := v.(uint32)
		if !ok {
			return nil, errf("%s has type %T, want uint32", KeyAlignment, v)
		}
		if a == 0 || a&(a-1) != 0 || a > 1<<20 {
			return nil, errf("%s = %d is not a power of two up to 1 MiB", KeyAlignment, a)
		}
		f.Alignment = int(a)
	}
	f.Tensors = make([]TensorInfo, 0, nTensors)
	for i := 0; i < nTensors; i++ {
		tname := r.str(maxKeyLen)
		nd := r.u32()
		if r.err != nil {
			return nil, errf("tensor %d: %w", i, r.err)
		}
		if nd > MaxDims {
			return nil, errf("tensor %q: %d dims, more than %d", tname, nd, MaxDims)
		}
		dims := make([]uint64, nd)
		for j := range dims {
			dims[j] = r.u64()
		}
		typ := Type(r.u32())
		off := r.u64()
		if r.err != nil {
			return nil, errf("tensor %q: %w", tname, r.err)
		}
		if !typ.Valid() {
			return nil, errf("tensor %q: unknown ggml type %d", tname, uint32(typ))
		}
		if _, err := TensorSize(typ, dims); err != nil {
			return nil, errf("tensor %q: %s %v: %w", tname, typ, dims, err)
		}
		if off%uint64(f.Alignment) != 0 {
			return nil, errf("tensor %q: offset %d is not a multiple of the alignment %d", tname, off, f.Alignment)
		}
		if _, dup := f.tIndex[tname]; dup {
			return nil, errf("duplicate tensor %q", tname)
		}
		f.tIndex[tname] = len(f.Tensors)
		f.Tensors = append(f.Tensors, TensorInfo{Name: tname, Dims: dims, Type: typ, Offset: off})
	}
	start := alignUp(uint64(r.off), uint64(f.Alignment))
	if start > uint64(len(data)) {
		if len(f.Tensors) > 0 {
			return nil, errf("data section at offset %d is past the end of the %d-byte file", start, len(data))
		}
		start = uint64(len(data)) // a file without tensors may omit the padding
	}
	f.DataOffset = int64(start)
	f.data = data[start:len(data):len(data)]
	if err := f.checkRanges(); err != nil {
		return nil, errf("%w", err)
	}
	return f, nil
}

func alignUp(n, a uint64) uint64 { return (n + a - 1) / a * a }

// checkRanges verifies every tensor lies inside the data section and none overlap.
func (f *File) checkRanges() error {
	order := make([]int, len(f.Tensors))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return f.Tensors[order[a]].Offset < f.Tensors[order[b]].Offset })
	var prevEnd uint64
	prev := -1
	for _, i := range order {
		t := f.Tensors[i]
		size := t.Size()
		if t.Offset > uint64(len(f.data)) || size > uint64(len(f.data))-t.Offset {
			return fmt.Errorf("tensor %q: %d bytes at offset %d exceed the %d-byte data section", t.Name, size, t.Offset, len(f.data))
		}
		if prev >= 0 && t.Offset < prevEnd {
			return fmt.Errorf("tensor %q at offset %d overlaps tensor %q ending at %d", t.Name, t.Offset, f.Tensors[prev].Name, prevEnd)
		}
		if size > 0 {
			prev, prevEnd = i, t.Offset+size
		}
	}
	return nil
}

func readValue(r *reader, vt ValueType) (any, error) {
	switch vt {
	case TypeUint8:
		return r.u8(), r.err
	case TypeInt8:
		return int8(r.u8()), r.err
	case TypeUint16:
		return r.u16(), r.err
	case TypeInt16:
		return int16(r.u16()), r.err
	case TypeUint32:
		return r.u32(), r.err
	case TypeInt32:
		return int32(r.u32()), r.err
	case TypeFloat32:
		return math.Float32frombits(r.u32()), r.err
	case TypeUint64:
		return r.u64(), r.err
	case TypeInt64:
		return int64(r.u64()), r.err
	case TypeFloat64:
		return math.Float64frombits(r.u64()), r.err
	case TypeBool:
		b := r.u8()
		if r.err == nil && b > 1 {
			return nil, fmt.Errorf("bool value %d is neither 0 nor 1", b)
		}
		return b == 1, r.err
	case TypeString:
		return r.str(maxStringLen), r.err
	case TypeArray:
		return readArray(r)
	}
	return nil, fmt.Errorf("unknown value type %d", uint32(vt))
}

func readArray(r *reader) (any, error) {
	et := ValueType(r.u32())
	if r.err != nil {
		return nil, r.err
	}
	if et == TypeArray {
		return nil, errors.New("nested arrays are not supported")
	}
	minSize := et.size()
	if et == TypeString {
		minSize = 8
	}
	if minSize == 0 {
		return nil, fmt.Errorf("unknown array element type %d", uint32(et))
	}
	n := r.count("array element", minSize, MaxArrayLen)
	if r.err != nil {
		return nil, r.err
	}
	if et == TypeString {
		out := make([]string, n)
		for i := range out {
			out[i] = r.str(maxStringLen)
		}
		return out, r.err
	}
	raw := r.take(n * minSize)
	if r.err != nil {
		return nil, r.err
	}
	le := binary.LittleEndian
	switch et {
	case TypeUint8:
		return append([]uint8(nil), raw...), nil
	case TypeInt8:
		return fill(n, func(i int) int8 { return int8(raw[i]) }), nil
	case TypeBool:
		out := make([]bool, n)
		for i, b := range raw {
			if b > 1 {
				return nil, fmt.Errorf("bool array element %d has value %d", i, b)
			}
			out[i] = b == 1
		}
		return out, nil
	case TypeUint16:
		return fill(n, func(i int) uint16 { return le.Uint16(raw[2*i:]) }), nil
	case TypeInt16:
		return fill(n, func(i int) int16 { return int16(le.Uint16(raw[2*i:])) }), nil
	case TypeUint32:
		return fill(n, func(i int) uint32 { return le.Uint32(raw[4*i:]) }), nil
	case TypeInt32:
		return fill(n, func(i int) int32 { return int32(le.Uint32(raw[4*i:])) }), nil
	case TypeFloat32:
		return fill(n, func(i int) float32 { return math.Float32frombits(le.Uint32(raw[4*i:])) }), nil
	case TypeUint64:
		return fill(n, func(i int) uint64 { return le.Uint64(raw[8*i:]) }), nil
	case TypeInt64:
		return fill(n, func(i int) int64 { return int64(le.Uint64(raw[8*i:])) }), nil
	case TypeFloat64:
		return fill(n, func(i int) float64 { return math.Float64frombits(le.Uint64(raw[8*i:])) }), nil
	}
	return nil, fmt.Errorf("unknown array element type %d", uint32(et))
}

func fill[T any](n int, at func(int) T) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = at(i)
	}
	return out
}

// TensorData returns the named tensor's description and bytes (aliasing the file).
func (f *File) TensorData(name string) (TensorInfo, []byte, error) {
	i, ok := f.tIndex[name]
	if !ok {
		return TensorInfo{}, nil, fmt.Errorf("gguf %s: no tensor %q", f.name, name)
	}
	t := f.Tensors[i]
	end := t.Offset + t.Size()
	return t, f.data[t.Offset:end:end], nil
}

// Tensor returns the named tensor's description.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := f.tIndex[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Tensors[i], true
}

// Close releases the file mapping. Tensor data must not be used afterwards.
func (f *File) Close() error {
	if f == nil || f.m == nil {
		return nil
	}
	m := f.m
	f.m = nil
	return m.Close()
}
