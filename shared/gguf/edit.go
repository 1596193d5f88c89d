package gguf

import "bytes"

// Rewrite returns a Writer holding f's metadata and tensors through the
// edits: kv sees each entry (change it in place; false drops it), tensor
// each tensor's description and bytes (change the type or dims in place;
// it returns the bytes to write and false to drop the tensor). Nil edits
// keep everything. The tensor bytes are copied, so f may be closed before
// the Writer writes.
func Rewrite(f *File, kv func(*KV) bool, tensor func(*TensorInfo, []byte) ([]byte, bool)) (*Writer, error) {
	w := NewWriter()
	for _, e := range f.KVs {
		if kv != nil && !kv(&e) {
			continue
		}
		if err := w.AddKV(e.Key, e.Value); err != nil {
			return nil, err
		}
	}
	for _, ti := range f.Tensors {
		_, data, err := f.TensorData(ti.Name)
		if err != nil {
			return nil, err
		}
		ti.Dims = append([]uint64(nil), ti.Dims...)
		if tensor != nil {
			keep := true
			if data, keep = tensor(&ti, data); !keep {
				continue
			}
		}
		if err := w.AddTensor(ti.Name, ti.Type, ti.Dims, bytes.Clone(data)); err != nil {
			return nil, err
		}
	}
	return w, nil
}
