// Command randmodel writes a GGUF model with the exact shape of BitNet b1.58
// 2B4T (hidden 2560, 30 layers, 20 heads, 5 KV heads, FFN 6912, vocab 128256,
// relu2, tied embeddings, rope theta 500000, 4096 positions) and random
// ternary weights, for benchmarks. Its output is never committed.
//
//	go run ./tools/randmodel -out /tmp/bitnet-2b.gguf [-layers 30]
//
// The tokenizer is LLaMA 3's (testdata/tokenizer/llama3.json.gz) when
// present, else the small Opticks BPE, padded to the vocabulary.
package main

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "randmodel:", err)
		os.Exit(1)
	}
}

func run(args []string, log io.Writer) error {
	fs := flag.NewFlagSet("randmodel", flag.ContinueOnError)
	out := fs.String("out", "", "output .gguf path (required)")
	layers := fs.Int("layers", 0, "number of decoder layers (default: the shape's: 30, 26, 32)")
	shape := fs.String("shape", "2b4t", "model shape: 2b4t (BitNet b1.58 2B4T), 3b (1bitLLM bitnet_b1_58-3B, widths 3200/8640) or 8b (Llama3-8B-1.58)")
	seed := fs.Uint64("seed", 1, "random seed")
	tern := fs.String("ternary", "tq2_0", "ternary tensor type: tq2_0, tq1_0 or i2_s (bitnet.cpp)")
	float := fs.String("float", "f16", "embedding type: f16, f32, bf16 or q8_0")
	tokPaths := fs.String("tokenizer", "testdata/tokenizer/llama3.json.gz,testdata/tokenizer/opticks-bpe600.json",
		"comma-separated tokenizer.json candidates (.gz allowed); the first that exists is used")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("-out is required")
	}
	opts, err := ggufOptions(*tern, *float)
	if err != nil {
		return err
	}
	tok, tokPath, err := loadTokenizer(strings.Split(*tokPaths, ","))
	if err != nil {
		return err
	}
	var cfg model.Config
	switch *shape {
	case "2b4t":
		cfg = config2B4T(cmp.Or(*layers, 30))
	case "3b":
		cfg = config3B(cmp.Or(*layers, 26))
	case "8b":
		cfg = config8B(cmp.Or(*layers, 32))
	default:
		return fmt.Errorf("-shape %q: want 2b4t, 3b or 8b", *shape)
	}
	if *shape == "3b" && tok.VocabSize() > cfg.VocabSize {
		return fmt.Errorf("-shape 3b: tokenizer %s has %d tokens, more than 32002 (use testdata/tokenizer/llama2.json.gz)", tokPath, tok.VocabSize())
	}
	if *shape != "3b" && !strings.Contains(tokPath, "llama3") {
		// The small tokenizer has no LLaMA 3 special tokens.
		cfg.BOSTokenID, cfg.EOSTokenIDs = -1, nil
	}
	start := time.Now()
	w, err := randomWeights(cfg, *seed)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "randmodel: %d layers of random weights in %v; tokenizer %s\n", cfg.NumLayers, time.Since(start).Round(time.Millisecond), tokPath)
	start = time.Now()
	if err := model.WriteGGUF(*out, w, tok, append(opts, model.WithModelName("random-"+*shape))...); err != nil {
		return err
	}
	st, err := os.Stat(*out)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "randmodel: wrote %s (%.1f MiB) in %v\n", *out, float64(st.Size())/(1<<20), time.Since(start).Round(time.Millisecond))
	return nil
}

func ggufOptions(tern, float string) ([]model.GGUFOption, error) {
	var opts []model.GGUFOption
	tt, err := model.ParseTernaryType(tern)
	if err != nil {
		return nil, fmt.Errorf("-ternary: %w", err)
	}
	opts = append(opts, model.WithTernaryType(tt))
	types := map[string]gguf.Type{"f16": gguf.F16, "f32": gguf.F32, "bf16": gguf.BF16, "q8_0": gguf.Q8_0}
	t, ok := types[strings.ToLower(float)]
	if !ok {
		return nil, fmt.Errorf("-float %q: want f16, f32, bf16 or q8_0", float)
	}
	return append(opts, model.WithFloatType(t)), nil
}

// loadTokenizer parses the first candidate file that exists.
func loadTokenizer(paths []string) (*tokenizer.Tokenizer, string, error) {
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		if strings.HasSuffix(p, ".gz") {
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				return nil, "", fmt.Errorf("%s: %w", p, err)
			}
			if data, err = io.ReadAll(zr); err != nil {
				return nil, "", fmt.Errorf("%s: %w", p, err)
			}
		}
		tok, err := tokenizer.Parse(data)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", p, err)
		}
		return tok, p, nil
	}
	return nil, "", fmt.Errorf("no tokenizer found among %v (run from the repository root)", paths)
}
