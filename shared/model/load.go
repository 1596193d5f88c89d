package model

import (
	"context"
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
	return LoadContext(context.Background(), path, opts...)
}

// LoadContext is Load that gives up when ctx is done (between tensors; it
// returns ctx's error), for callers that stop waiting. Before anything is
// allocated the configuration is checked (Config.Validate's shape limits,
// a GGUF file's tensor count against its block count) and, with
// WithMemoryBudget, the memory the load needs.
func LoadContext(ctx context.Context, path string, opts ...Option) (*Model, error) {
	o := newOptions(opts)
	// With an int8 head whose rows also serve the tied embedding's lookups
	// (the default), the loaders quantise those rows straight from the file:
	// a 2B model never holds its 1.3 GB float32 embedding.
	w, head8, tok, err := loadWeights(ctx, path, readOpts{head8: o.headInt8 && o.embInt8, i2sBlock: o.i2sBlock, budget: o.budget})
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
	return LoadWeightsContext(context.Background(), path, 0)
}

// LoadWeightsContext is LoadWeights that gives up when ctx is done and,
// when budget > 0, refuses (ErrOverBudget) a model whose float32 weights
// need more than budget bytes, before allocating them.
func LoadWeightsContext(ctx context.Context, path string, budget int64) (*Weights, *tokenizer.Tokenizer, error) {
	return LoadWeightsOptions(ctx, path, WithMemoryBudget(budget))
}

// LoadWeightsOptions is LoadWeightsContext with the reading options of
// Load: WithMemoryBudget and WithI2SBlock (the others concern a running
// model and are ignored).
func LoadWeightsOptions(ctx context.Context, path string, opts ...Option) (*Weights, *tokenizer.Tokenizer, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	w, _, tok, err := loadWeights(ctx, path, readOpts{budget: max(o.budget, 0), i2sBlock: o.i2sBlock})
	return w, tok, err
}

// loadWeights is LoadWeights, as ro says (see readGGUF and loadHF).
func loadWeights(ctx context.Context, path string, ro readOpts) (*Weights, *kernels.Int8Matrix, *tokenizer.Tokenizer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("model: %w", err)
	}
	if !st.IsDir() {
		if strings.EqualFold(filepath.Ext(path), ".gguf") {
			w, h8, tok, err := readGGUFFile(ctx, path, ro)
			if cerr := ctx.Err(); err != nil && cerr != nil {
				return nil, nil, nil, fmt.Errorf("model: load abandoned: %w", cerr)
			}
			return w, h8, tok, err
		}
		return nil, nil, nil, fmt.Errorf("model: %s is neither a Hugging Face directory nor a .gguf file", path)
	}
	w, h8, err := loadHF(ctx, path, ro)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, nil, nil, fmt.Errorf("model: load abandoned: %w", cerr)
		}
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
