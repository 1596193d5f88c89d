package model

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
)

// Load opens a model: a Hugging Face directory (config.json, safetensors,
// tokenizer.json when present) or a .gguf file. The float32 copies the
// loaders make (embedding, head) are dropped and their memory returned to the
// OS before Load returns, so resident memory is what the model keeps.
func Load(path string, opts ...Option) (*Model, error) {
	w, tok, err := LoadWeights(path)
	if err != nil {
		return nil, err
	}
	m, err := New(w, tok, opts...)
	debug.FreeOSMemory() // w is dead here: release its float32 tensors
	return m, err
}

// LoadWeights reads the weights and tokenizer of a Hugging Face directory or a
// .gguf file. The tokenizer is nil when a directory has no tokenizer.json.
func LoadWeights(path string) (*Weights, *tokenizer.Tokenizer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("model: %w", err)
	}
	if !st.IsDir() {
		if strings.EqualFold(filepath.Ext(path), ".gguf") {
			return ReadGGUF(path)
		}
		return nil, nil, fmt.Errorf("model: %s is neither a Hugging Face directory nor a .gguf file", path)
	}
	w, err := LoadHF(path)
	if err != nil {
		return nil, nil, err
	}
	tpath := filepath.Join(path, "tokenizer.json")
	tok, err := tokenizer.Load(tpath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return w, nil, nil
	case err != nil:
		return nil, nil, fmt.Errorf("model: %s: %w", tpath, err)
	}
	if tok.VocabSize() > w.Config.VocabSize {
		return nil, nil, fmt.Errorf("model: %s has %d tokens, more than vocab_size = %d", tpath, tok.VocabSize(), w.Config.VocabSize)
	}
	return w, tok, nil
}
