package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// runPerplexity implements
// bitnet perplexity --model PATH (--text FILE | --tokens FILE) [--ctx N] [--json] [--kernel P] [--threads N].
func runPerplexity(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("perplexity", flag.ContinueOnError)
	fs.SetOutput(stderr)
	modelPath := fs.String("model", "", "model: Hugging Face directory or .gguf file (required)")
	textFile := fs.String("text", "", "text file to tokenize and score")
	tokensFile := fs.String("tokens", "", "file of whitespace-separated token ids to score")
	window := fs.Int("ctx", 0, "window size in tokens (0: all, up to the model's context)")
	asJSON := fs.Bool("json", false, `print {"tokens": int, "nll_mean": float, "ppl": float}`)
	bos := fs.Bool("bos", false, "prepend the BOS token to the text's tokens (--text only)")
	kernel := fs.String("kernel", "", "kernel path: generic, avx2, avx512 or neon (default: $"+kernels.EnvPath+" or the best)")
	threads := fs.Int("threads", 0, "kernel threads (default: all cores)")
	kvCache := fs.String("kv-cache", "f32", "KV cache element type: f32 (exact) or f16")
	headFmt := fs.String("head", envOr(model.EnvHeadFormat, string(model.DefaultHeadFormat)), "output head storage: int8, int6 or int4 (env "+model.EnvHeadFormat+")")
	headF32 := fs.Bool("head-f32", false, "exact float32 output head and embeddings, like the reference (slower) instead of int8")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bitnet perplexity --model PATH (--text FILE | --tokens FILE) [--ctx N] [--json] [--kernel P] [--threads N]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("perplexity: unexpected argument %q", fs.Arg(0))
	}
	if *modelPath == "" {
		return errors.New("perplexity: --model is required")
	}
	if (*textFile == "") == (*tokensFile == "") {
		return errors.New("perplexity: give exactly one of --text and --tokens")
	}
	if *window < 0 || *window == 1 {
		return fmt.Errorf("perplexity: --ctx %d must be 0 or at least 2", *window)
	}
	kv, err := model.ParseKVType(*kvCache)
	if err != nil {
		return fmt.Errorf("perplexity: --kv-cache: %w", err)
	}
	eng, err := pplEngine(*kernel, *threads)
	if err != nil {
		return fmt.Errorf("perplexity: %w", err)
	}
	defer eng.Close()
	start := time.Now()
	head, err := kernels.ParseHeadFormat(*headFmt)
	if err != nil {
		return fmt.Errorf("perplexity: --head: %w", err)
	}
	m, err := model.Load(*modelPath, model.WithEngine(eng), model.WithHeadInt8(!*headF32), model.WithKVType(kv), model.WithHeadFormat(head))
	if err != nil {
		return fmt.Errorf("perplexity: %w", err)
	}
	defer m.Close()
	load := time.Since(start)

	var ids []int
	if *tokensFile != "" {
		ids, err = readTokenIDs(*tokensFile)
	} else {
		ids, err = tokenizeFile(m, *textFile, *bos)
	}
	if err != nil {
		return fmt.Errorf("perplexity: %w", err)
	}
	start = time.Now()
	res, err := m.Perplexity(ctx, ids, *window)
	if err != nil {
		return fmt.Errorf("perplexity: %w", err)
	}
	el := time.Since(start)
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "tokens: %d\nnll_mean: %.6f\nppl: %.4f\n", res.Tokens, res.NLLMean, res.PPL)
	fmt.Fprintf(stderr, "load %.2fs, scored %d tokens in %.2fs (%.1f tokens/s, kernel %s, %d threads)\n",
		load.Seconds(), len(ids), el.Seconds(), float64(len(ids))/el.Seconds(), eng.Path(), eng.Threads())
	return nil
}

// pplEngine builds the kernel engine from --kernel (else $BITNET_KERNEL, else
// the best path) and --threads.
func pplEngine(kernel string, threads int) (*kernels.Engine, error) {
	var p kernels.Path
	if kernel != "" {
		var err error
		if p, err = kernels.ParsePath(kernel); err != nil {
			return nil, err
		}
	} else if ep, ok, err := kernels.PathFromEnv(os.Getenv); err != nil {
		return nil, err
	} else if ok {
		p = ep
	}
	return kernels.New(kernels.WithPath(p), kernels.WithThreads(threads))
}

// readTokenIDs reads whitespace-separated non-negative token ids.
func readTokenIDs(path string) ([]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	fields := strings.Fields(string(b))
	ids := make([]int, len(fields))
	for i, f := range fields {
		v, err := strconv.Atoi(f)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%s: token %d: %q is not a token id", path, i, f)
		}
		ids[i] = v
	}
	return ids, nil
}

// tokenizeFile encodes a text file with the model's tokenizer.
func tokenizeFile(m *model.Model, path string, bos bool) ([]int, error) {
	tok := m.Tokenizer()
	if tok == nil {
		return nil, errors.New("the model has no tokenizer: use --tokens")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ids []int
	if bos {
		id := m.Config().BOSTokenID
		if id < 0 {
			return nil, errors.New("--bos: the model has no bos_token_id")
		}
		ids = append(ids, id)
	}
	return append(ids, tok.Encode(string(b))...), nil
}
