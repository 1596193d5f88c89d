package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
)

// MaxNameLen is the longest tensor name llama.cpp accepts (GGML_MAX_NAME - 1).
const MaxNameLen = 63

// Writer builds a GGUF file in memory order: metadata in the order added,
// tensors in the order added, each tensor's data padded to the alignment
// (the layout llama.cpp's loader requires).
type Writer struct {
	kvs       []KV
	kvTypes   []ValueType
	keys      map[string]bool
	tensors   []TensorInfo
	data      [][]byte
	names     map[string]bool
	alignment int
	dataSize  uint64
}

// NewWriter returns an empty writer with the default alignment of 32.
func NewWriter() *Writer {
	return &Writer{keys: map[string]bool{}, names: map[string]bool{}, alignment: DefaultAlignment}
}

// AddKV appends a metadata entry typed by the Go type of value: uint8, int8,
// uint16, int16, uint32, int32, uint64, int64, float32, float64, bool,
// string, or a slice of one of those. A Go int is stored as INT32 when it
// fits, else INT64 ([]int likewise). general.alignment must be a power of two
// and is stored as UINT32; it must be set before any AddTensor.
func (w *Writer) AddKV(key string, value any) error {
	if w.keys[key] {
		return fmt.Errorf("gguf: duplicate key %q", key)
	}
	if key == "" || len(key) > maxKeyLen {
		return fmt.Errorf("gguf: key of %d bytes must be 1 to %d bytes", len(key), maxKeyLen)
	}
	value = normalizeInts(value)
	if key == KeyAlignment {
		n, ok := asInt64(value)
		if !ok || n <= 0 || n > 1<<20 || n&(n-1) != 0 {
			return fmt.Errorf("gguf: %s = %v must be a power of two up to 1 MiB", key, value)
		}
		if len(w.tensors) > 0 {
			return fmt.Errorf("gguf: %s must be set before adding tensors", key)
		}
		value = uint32(n)
		w.alignment = int(n)
	}
	vt, err := valueTypeOf(value)
	if err != nil {
		return fmt.Errorf("gguf: key %q: %w", key, err)
	}
	w.keys[key] = true
	w.kvs = append(w.kvs, KV{key, value})
	w.kvTypes = append(w.kvTypes, vt)
	return nil
}

func normalizeInts(v any) any {
	switch x := v.(type) {
	case int:
		if x >= math.MinInt32 && x <= math.MaxInt32 {
			return int32(x)
		}
		return int64(x)
	case []int:
		fits := true
		for _, e := range x {
			if e < math.MinInt32 || e > math.MaxInt32 {
				fits = false
			}
		}
		if fits {
			out := make([]int32, len(x))
			for i, e := range x {
				out[i] = int32(e)
			}
			return out
		}
		out := make([]int64, len(x))
		for i, e := range x {
			out[i] = int64(e)
		}
		return out
	}
	return v
}

func valueTypeOf(v any) (ValueType, error) {
	switch x := v.(type) {
	case uint8, []uint8:
		return kindOf(v), nil
	case int8, uint16, int16, uint32, int32, uint64, int64, float32, float64, bool,
		[]int8, []uint16, []int16, []uint32, []int32, []uint64, []int64, []float32, []float64, []bool:
		return kindOf(v), nil
	case string:
		if len(x) > maxStringLen {
			return 0, fmt.Errorf("string of %d bytes exceeds the limit %d", len(x), maxStringLen)
		}
		return TypeString, nil
	case []string:
		for i, s := range x {
			if len(s) > maxStringLen {
				return 0, fmt.Errorf("element %d: string of %d bytes exceeds the limit %d", i, len(s), maxStringLen)
			}
		}
		return TypeArray, nil
	}
	return 0, fmt.Errorf("unsupported value type %T", v)
}

// kindOf returns the value type tag of a scalar, or TypeArray for a slice.
func kindOf(v any) ValueType {
	switch v.(type) {
	case uint8:
		return TypeUint8
	case int8:
		return TypeInt8
	case uint16:
		return TypeUint16
	case int16:
		return TypeInt16
	case uint32:
		return TypeUint32
	case int32:
		return TypeInt32
	case uint64:
		return TypeUint64
	case int64:
		return TypeInt64
	case float32:
		return TypeFloat32
	case float64:
		return TypeFloat64
	case bool:
		return TypeBool
	case string:
		return TypeString
	}
	return TypeArray
}

// elemType returns the element tag of a slice value.
func elemType(v any) ValueType {
	switch v.(type) {
	case []uint8:
		return TypeUint8
	case []int8:
		return TypeInt8
	case []uint16:
		return TypeUint16
	case []int16:
		return TypeInt16
	case []uint32:
		return TypeUint32
	case []int32:
		return TypeInt32
	case []uint64:
		return TypeUint64
	case []int64:
		return TypeInt64
	case []float32:
		return TypeFloat32
	case []float64:
		return TypeFloat64
	case []bool:
		return TypeBool
	}
	return TypeString
}

// AddTensor appends a tensor. dims lists ne0 (row length) first; data must be
// exactly the tensor's byte size and is not copied: keep it unchanged until
// WriteTo returns.
func (w *Writer) AddTensor(name string, typ Type, dims []uint64, data []byte) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("gguf: tensor name %q must be 1 to %d bytes", name, MaxNameLen)
	}
	if w.names[name] {
		return fmt.Errorf("gguf: duplicate tensor %q", name)
	}
	if len(dims) == 0 {
		return fmt.Errorf("gguf: tensor %q: no dims", name)
	}
	size, err := TensorSize(typ, dims)
	if err != nil {
		return fmt.Errorf("gguf: tensor %q: %s %v: %w", name, typ, dims, err)
	}
	if uint64(len(data)) != size {
		return fmt.Errorf("gguf: tensor %q: %s %v needs %d bytes, got %d", name, typ, dims, size, len(data))
	}
	w.names[name] = true
	w.tensors = append(w.tensors, TensorInfo{Name: name, Dims: append([]uint64(nil), dims...), Type: typ, Offset: w.dataSize})
	w.data = append(w.data, data)
	w.dataSize = alignUp(w.dataSize+size, uint64(w.alignment))
	return nil
}

type countWriter struct {
	w   *bufio.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

func (c *countWriter) u32(v uint32) { c.Write(binary.LittleEndian.AppendUint32(nil, v)) }
func (c *countWriter) u64(v uint64) { c.Write(binary.LittleEndian.AppendUint64(nil, v)) }
func (c *countWriter) str(s string) { c.u64(uint64(len(s))); c.w.WriteString(s); c.n += int64(len(s)) }
func (c *countWriter) pad(align int) {
	if r := int(c.n % int64(align)); r != 0 {
		c.Write(make([]byte, align-r))
	}
}

// WriteTo writes the file and returns the bytes written.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	c := &countWriter{w: bufio.NewWriterSize(out, 1<<20)}
	c.u32(Magic)
	c.u32(Version)
	c.u64(uint64(len(w.tensors)))
	c.u64(uint64(len(w.kvs)))
	for i, kv := range w.kvs {
		c.str(kv.Key)
		c.u32(uint32(w.kvTypes[i]))
		writeValue(c, kv.Value)
	}
	for _, t := range w.tensors {
		c.str(t.Name)
		c.u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			c.u64(d)
		}
		c.u32(uint32(t.Type))
		c.u64(t.Offset)
	}
	c.pad(w.alignment)
	for _, d := range w.data {
		c.Write(d)
		c.pad(w.alignment)
	}
	if c.err == nil {
		c.err = c.w.Flush()
	}
	if c.err != nil {
		return c.n, fmt.Errorf("gguf: write: %w", c.err)
	}
	return c.n, nil
}

func writeValue(c *countWriter, v any) {
	le := binary.LittleEndian
	var b []byte
	switch x := v.(type) {
	case uint8:
		b = []byte{x}
	case int8:
		b = []byte{byte(x)}
	case bool:
		b = []byte{boolByte(x)}
	case uint16:
		b = le.AppendUint16(nil, x)
	case int16:
		b = le.AppendUint16(nil, uint16(x))
	case uint32:
		b = le.AppendUint32(nil, x)
	case int32:
		b = le.AppendUint32(nil, uint32(x))
	case float32:
		b = le.AppendUint32(nil, math.Float32bits(x))
	case uint64:
		b = le.AppendUint64(nil, x)
	case int64:
		b = le.AppendUint64(nil, uint64(x))
	case float64:
		b = le.AppendUint64(nil, math.Float64bits(x))
	case string:
		c.str(x)
		return
	case []string:
		c.u32(uint32(TypeString))
		c.u64(uint64(len(x)))
		for _, s := range x {
			c.str(s)
		}
		return
	default:
		writeArray(c, v)
		return
	}
	c.Write(b)
}

func writeArray(c *countWriter, v any) {
	et := elemType(v)
	le := binary.LittleEndian
	var b []byte
	var n int
	switch x := v.(type) {
	case []uint8:
		n, b = len(x), x
	case []int8:
		n = len(x)
		for _, e := range x {
			b = append(b, byte(e))
		}
	case []bool:
		n = len(x)
		for _, e := range x {
			b = append(b, boolByte(e))
		}
	case []uint16:
		n = len(x)
		for _, e := range x {
			b = le.AppendUint16(b, e)
		}
	case []int16:
		n = len(x)
		for _, e := range x {
			b = le.AppendUint16(b, uint16(e))
		}
	case []uint32:
		n = len(x)
		for _, e := range x {
			b = le.AppendUint32(b, e)
		}
	case []int32:
		n = len(x)
		for _, e := range x {
			b = le.AppendUint32(b, uint32(e))
		}
	case []float32:
		n = len(x)
		for _, e := range x {
			b = le.AppendUint32(b, math.Float32bits(e))
		}
	case []uint64:
		n = len(x)
		for _, e := range x {
			b = le.AppendUint64(b, e)
		}
	case []int64:
		n = len(x)
		for _, e := range x {
			b = le.AppendUint64(b, uint64(e))
		}
	case []float64:
		n = len(x)
		for _, e := range x {
			b = le.AppendUint64(b, math.Float64bits(e))
		}
	}
	c.u32(uint32(et))
	c.u64(uint64(n))
	c.Write(b)
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// WriteFile writes the file atomically: to a temporary file in the same
// directory, fsynced, then renamed over path.
func (w *Writer) WriteFile(path string) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("gguf: write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o644); err != nil { // CreateTemp makes 0600; model files are shared
		return fmt.Errorf("gguf: chmod %s: %w", tmp.Name(), err)
	}
	if _, err := w.WriteTo(tmp); err != nil {
		return fmt.Errorf("gguf: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("gguf: fsync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("gguf: close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("gguf: rename to %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil { // make the rename durable where supported
		d.Sync()
		d.Close()
	}
	return nil
}
