// Package safetensors reads and writes the Hugging Face safetensors format:
// an 8-byte little-endian header length, a JSON header mapping tensor names to
// dtype, shape and [begin, end) byte offsets into the data section that
// follows, and the raw little-endian tensor bytes.
//
// Readers validate the whole header before handing out any tensor (sizes,
// dtypes, shapes against byte ranges, offsets in range and not overlapping,
// duplicate names), so a hostile file produces an error that names the file
// and tensor, never a panic or a huge allocation. Open memory-maps the file;
// tensor Data slices alias the mapping and are valid until Close.
package safetensors
