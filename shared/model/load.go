package model

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
)

// Load opens a model: a Hugging Face directory (config.json, safetensors,
// tokenizer.json when present) or a .gguf file. The float32 copies the
// loaders make (embedding, head) are dropped and their memory returned to the
// OS before Load returns, so resident memory is what the model keeps.
func Load(path string, opts ...Option) (*Model, error) {
	o := newOptions(opts)
	// With an int8 head whose rows also serve the tied embedding's lookups
	// (the default), the loaders quantise those rows straight from the file:
	// a 2B model never holds its 1.3 GB float32 embedding.
	w, head8, tok, err := loadWeights(path, o.headInt8 && o.embInt8)
	if err != nil {
		return nil, err
	}
	m, err := newModel(w, head8, tok, o)
	debug.FreeOSMemory() // w is dead here: release its float32 tensors
	return m, err
}

// LoadWeights reads the weights and tokenizer of a Hugging Face directory or a
// .gguf file. The tokenizer is nil when a directory has no tokenizer.json.
func LoadWeights(path string) (*Weights, *tokenizer.Tokenizer, error) {
	w, _, tok, err := loadWeights(path, false)
	return w, tok, err
}

// loadWeights is LoadWeights, with the head quantised by the loader when
// head8 is set (see readGGUF and loadHF).
func loadWeights(path string, head8 bool) (*Weights, *kernels.Int8Matrix, *tokenizer.Tokenizer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("model: %w", err)
	}
	if !st.IsDir() {
		if strings.EqualFold(filepath.Ext(path), ".gguf") {
			return readGGUFFile(path, head8)
		}
		return nil, nil, nil, fmt.Errorf("model: %s is neither a Hugging Face directory nor a .gguf file", path)
	}
	w, h8, err := loadHF(path, head8)
	if err != nil {
		return nil, nil, nil, err
	}
	tpath := filepath.Join(path, "tokenizer.json")
	tok, err := tokenizer.Load(tpath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return w, h8, nil, nil
	case err != nil:
		return nil, nil, nil, fmt.Errorf("model: %s: %w", tpath, err)
	}
	if tok.VocabSize() > w.Config.VocabSize {
		return nil, nil, nil, fmt.Errorf("model: %s has %d tokens, more than vocab_size = %d", tpath, tok.VocabSize(), w.Config.VocabSize)
	}
	if w.Config.IsEmbedding() {
		if err := embedAffixes(tpath, &w.Config, tok); err != nil {
			return nil, nil, nil, err
		}
	}
	return w, h8, tok, nil
}
