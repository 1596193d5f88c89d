package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// Write encodes tensors and metadata as a safetensors file. Tensors are laid
// out in the reference writer's order (dtypes by decreasing alignment, then
// names), so every tensor is aligned to its element size; the header lists
// __metadata__ first and then the tensors in data order, padded with spaces
// to a multiple of 8 bytes. metadata may be nil.
func Write(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	ts := make([]Tensor, len(tensors))
	copy(ts, tensors)
	seen := make(map[string]bool, len(ts))
	for _, t := range ts {
		if t.Name == metadataKey {
			return fmt.Errorf("safetensors: write: tensor name %q is reserved", t.Name)
		}
		if seen[t.Name] {
			return fmt.Errorf("safetensors: write: duplicate tensor %q", t.Name)
		}
		seen[t.Name] = true
		size := t.DType.Size()
		if size == 0 {
			return fmt.Errorf("safetensors: write: tensor %q: unknown dtype %q", t.Name, t.DType)
		}
		n := t.NumElements()
		if n < 0 || n > len(t.Data)/size || n*size != len(t.Data) {
			return fmt.Errorf("safetensors: write: tensor %q: shape %v of %s needs %d bytes, have %d", t.Name, t.Shape, t.DType, n*size, len(t.Data))
		}
	}
	sort.SliceStable(ts, func(i, j int) bool {
		ri, rj := dtypeRank[ts[i].DType], dtypeRank[ts[j].DType]
		if ri != rj {
			return ri > rj
		}
		return ts[i].Name < ts[j].Name
	})
	header, err := encodeHeader(ts, metadata)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(header)))
	bw.Write(lenBuf[:])
	bw.Write(header)
	for _, t := range ts {
		if _, err := bw.Write(t.Data); err != nil {
			return fmt.Errorf("safetensors: write tensor %q: %w", t.Name, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("safetensors: write: %w", err)
	}
	return nil
}

// encodeHeader builds the JSON header with __metadata__ first and tensors in
// data order, like the reference writer, padded with spaces to 8 bytes.
func encodeHeader(ts []Tensor, metadata map[string]string) ([]byte, error) {
	b := []byte{'{'}
	first := true
	sep := func() {
		if !first {
			b = append(b, ',')
		}
		first = false
	}
	if len(metadata) > 0 {
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		sep()
		b = appendJSONString(b, metadataKey)
		b = append(b, ":{"...)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, metadata[k])
		}
		b = append(b, '}')
	}
	var off uint64
	for _, t := range ts {
		sep()
		b = appendJSONString(b, t.Name)
		b = append(b, `:{"dtype":`...)
		b = appendJSONString(b, string(t.DType))
		b = append(b, `,"shape":[`...)
		for i, d := range t.Shape {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(d), 10)
		}
		b = append(b, `],"data_offsets":[`...)
		b = strconv.AppendUint(b, off, 10)
		b = append(b, ',')
		off += uint64(len(t.Data))
		b = strconv.AppendUint(b, off, 10)
		b = append(b, "]}"...)
	}
	b = append(b, '}')
	for len(b)%8 != 0 {
		b = append(b, ' ')
	}
	if len(b) > MaxHeaderSize {
		return nil, fmt.Errorf("safetensors: write: header is %d bytes, over the limit %d", len(b), MaxHeaderSize)
	}
	return b, nil
}

// appendJSONString quotes s as JSON without HTML escaping, matching serde_json.
func appendJSONString(b []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(s) // a string always encodes
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

// WriteFile writes the file atomically: to a temporary file in the same
// directory, fsynced, then renamed over path.
func WriteFile(path string, tensors []Tensor, metadata map[string]string) error {
	return atomicWrite(path, func(w io.Writer) error { return Write(w, tensors, metadata) })
}

func atomicWrite(path string, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o644); err != nil { // CreateTemp makes 0600; model files are shared
		return fmt.Errorf("safetensors: chmod %s: %w", tmp.Name(), err)
	}
	if err := write(tmp); err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("safetensors: fsync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("safetensors: close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("safetensors: rename to %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil { // make the rename durable where supported
		d.Sync()
		d.Close()
	}
	return nil
}
