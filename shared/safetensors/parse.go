package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"unicode/utf8"

	"github.com/bitnet-mesh/bitnet-mesh/shared/mmap"
)

// MaxHeaderSize bounds the JSON header (the reference implementation uses the
// same 100 MB limit).
const MaxHeaderSize = 100_000_000

const metadataKey = "__metadata__"

// File is a parsed safetensors file. It is safe for concurrent readers.
type File struct {
	name     string // path, or "<bytes>" for Parse
	tensors  map[string]Tensor
	names    []string
	metadata map[string]string
	m        *mmap.Mapping
}

// Open memory-maps and validates the safetensors file at path.
func Open(path string) (*File, error) {
	m, err := mmap.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	f, err := parse(path, m.Bytes())
	if err != nil {
		m.Close()
		return nil, err
	}
	f.m = m
	return f, nil
}

// Parse validates data as a safetensors file. Tensor data aliases data.
func Parse(data []byte) (*File, error) {
	return parse("<bytes>", data)
}

type headerEntry struct {
	DType       DType    `json:"dtype"`
	Shape       []uint64 `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

func parse(name string, data []byte) (*File, error) {
	errf := func(format string, args ...any) error {
		return fmt.Errorf("safetensors %s: "+format, append([]any{name}, args...)...)
	}
	if len(data) < 8 {
		return nil, errf("file is %d bytes, shorter than the 8-byte header length", len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > MaxHeaderSize {
		return nil, errf("header length %d exceeds the limit %d", n, MaxHeaderSize)
	}
	if n > uint64(len(data)-8) {
		return nil, errf("header length %d exceeds the %d bytes after the length field", n, len(data)-8)
	}
	header := data[8 : 8+n]
	body := data[8+n:]
	if len(header) == 0 || header[0] != '{' {
		return nil, errf("header does not start with a JSON object")
	}
	if !utf8.Valid(header) {
		return nil, errf("header is not valid UTF-8")
	}
	raw, err := decodeObject(header)
	if err != nil {
		return nil, errf("header: %w", err)
	}
	f := &File{name: name, tensors: make(map[string]Tensor, len(raw)), metadata: map[string]string{}}
	type span struct {
		name       string
		begin, end uint64
	}
	spans := make([]span, 0, len(raw))
	for _, kv := range raw {
		if kv.key == metadataKey {
			if err := json.Unmarshal(kv.value, &f.metadata); err != nil {
				return nil, errf("%s must map strings to strings: %w", metadataKey, err)
			}
			if f.metadata == nil { // JSON null
				f.metadata = map[string]string{}
			}
			continue
		}
		var e headerEntry
		dec := json.NewDecoder(bytes.NewReader(kv.value))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return nil, errf("tensor %q: %w", kv.key, err)
		}
		size := e.DType.Size()
		if size == 0 {
			return nil, errf("tensor %q: unknown dtype %q", kv.key, e.DType)
		}
		if len(e.DataOffsets) != 2 {
			return nil, errf("tensor %q: data_offsets has %d values, want 2", kv.key, len(e.DataOffsets))
		}
		begin, end := e.DataOffsets[0], e.DataOffsets[1]
		if begin > end || end > uint64(len(body)) {
			return nil, errf("tensor %q: data_offsets [%d, %d] outside the %d-byte data section", kv.key, begin, end, len(body))
		}
		shape := make([]int, len(e.Shape))
		elems := uint64(1)
		for i, d := range e.Shape {
			if d > math.MaxInt {
				return nil, errf("tensor %q: dim %d = %d overflows int", kv.key, i, d)
			}
			shape[i] = int(d)
			hi, lo := mulU64(elems, d)
			if hi != 0 {
				return nil, errf("tensor %q: shape %v overflows", kv.key, e.Shape)
			}
			elems = lo
		}
		hi, nbytes := mulU64(elems, uint64(size))
		if hi != 0 || nbytes != end-begin {
			return nil, errf("tensor %q: shape %v of %s needs %d elements x %d bytes, but data_offsets [%d, %d] span %d bytes",
				kv.key, e.Shape, e.DType, elems, size, begin, end, end-begin)
		}
		if e.Shape == nil {
			shape = []int{}
		}
		f.tensors[kv.key] = Tensor{Name: kv.key, DType: e.DType, Shape: shape, Data: body[begin:end:end]}
		f.names = append(f.names, kv.key)
		spans = append(spans, span{kv.key, begin, end})
	}
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].begin != spans[j].begin {
			return spans[i].begin < spans[j].begin
		}
		return spans[i].end < spans[j].end
	})
	for i := 1; i < len(spans); i++ {
		p, c := spans[i-1], spans[i]
		if c.begin < p.end {
			return nil, errf("tensor %q [%d, %d] overlaps tensor %q [%d, %d]", c.name, c.begin, c.end, p.name, p.begin, p.end)
		}
	}
	slices.Sort(f.names)
	return f, nil
}

func mulU64(a, b uint64) (hi, lo uint64) {
	if a == 0 || b == 0 {
		return 0, 0
	}
	lo = a * b
	if lo/b != a {
		return 1, lo
	}
	return 0, lo
}

type rawKV struct {
	key   string
	value json.RawMessage
}

// decodeObject reads one JSON object keeping key order and rejecting
// duplicate keys, which encoding/json would silently merge.
func decodeObject(b []byte) ([]rawKV, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("want a JSON object, got %v", tok)
	}
	seen := map[string]bool{}
	var out []rawKV
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("want an object key, got %v", tok)
		}
		if seen[key] {
			return nil, fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("key %q: %w", key, err)
		}
		out = append(out, rawKV{key, v})
	}
	if _, err := dec.Token(); err != nil { // closing brace
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the JSON object")
	}
	// Anything but whitespace after the object (the writer pads with spaces) is an error.
	rest := b[dec.InputOffset():]
	if len(bytes.TrimRight(rest, " \t\r\n")) != 0 {
		return nil, fmt.Errorf("trailing data after the JSON object")
	}
	return out, nil
}

// Names returns the tensor names, sorted.
func (f *File) Names() []string { return slices.Clone(f.names) }

// Tensor returns the named tensor; its Data aliases the file.
func (f *File) Tensor(name string) (Tensor, bool) {
	t, ok := f.tensors[name]
	return t, ok
}

// Metadata returns a copy of the __metadata__ map (empty if absent).
func (f *File) Metadata() map[string]string {
	out := make(map[string]string, len(f.metadata))
	for k, v := range f.metadata {
		out[k] = v
	}
	return out
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
