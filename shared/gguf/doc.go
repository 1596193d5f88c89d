// Package gguf reads and writes GGUF files (version 3, little endian), the
// container llama.cpp loads: a header of typed key/value metadata, a table
// of tensor descriptions (name, dims with ne0 = row length first, ggml type,
// offset), padding to the alignment, then the tensor data, each tensor
// starting at an aligned offset.
//
// Parse validates every count, length, type, offset and size against the
// input length before allocating, so a corrupt or hostile file yields an
// error, never a panic or a huge allocation. Open memory-maps the file and
// TensorData returns slices that alias the mapping until Close.
//
// The package also converts F32, F16, BF16 and Q8_0 tensor data to and from
// float32, and decodes Q6_K (token embeddings of llama-quantize's files).
// Ternary types (TQ1_0, TQ2_0, bitnet.cpp's I2_S) are carried as bytes; their
// codecs live in shared/ternary. I2_S is sized per tensor (n/4 bytes of
// codes, then a float32 scale and padding: I2SExtra), not per row.
package gguf
