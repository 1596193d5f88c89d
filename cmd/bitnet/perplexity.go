package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bitnet-mesh/bitnet-mesh/cmd/bitnet/internal/config"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// newPerplexityCmd is
// bitnet perplexity --model PATH (--text FILE | --tokens FILE) [--ctx N] [--json] [--kernel P] [--threads N].
func newPerplexityCmd(env config.Lookup) *cobra.Command {
	var (
		modelPath, textFile, tokensFile string
		window                          int
		asJSON, bos, headF32            bool
	)
	c := &cobra.Command{
		Use:   "perplexity --model PATH (--text FILE | --tokens FILE) [--ctx N] [--json] [flags]",
		Short: "Score a text with a local model (perplexity)",
		Long: `Score a text (or a file of token IDs) with a local model: a Hugging Face
directory or a .gguf file. Prints the token count, mean negative log-likelihood
and perplexity. The KV cache is f32 here by default, for exact scores.`,
		Example: `  bitnet perplexity --model /tmp/opticks --text "$(go env GOROOT)/src/testdata/Isaac.Newton-Opticks.txt" --ctx 128
  bitnet perplexity --model model.gguf --tokens ids.txt --json --kernel generic`,
		Args: noArgs,
	}
	set := config.Bind(c, config.Kernel, config.Metal, config.Threads, config.KVCache.WithDefault("f32"), config.Head, config.I2SBlock)
	f := c.Flags()
	f.StringVar(&modelPath, "model", "", "model: Hugging Face directory or .gguf file (required)")
	f.StringVar(&textFile, "text", "", "text file to tokenize and score")
	f.StringVar(&tokensFile, "tokens", "", "file of whitespace-separated token ids to score")
	f.IntVar(&window, "ctx", 0, "window size in tokens (0: all, up to the model's context)")
	f.BoolVar(&asJSON, "json", false, `print {"tokens": int, "nll_mean": float, "ppl": float}`)
	f.BoolVar(&bos, "bos", false, "prepend the BOS token to the text's tokens (--text only)")
	f.BoolVar(&headF32, "head-f32", false, "exact float32 output head and embeddings, like the reference (slower) instead of int8")
	c.RunE = func(c *cobra.Command, _ []string) error {
		if modelPath == "" {
			return errors.New("perplexity: --model is required")
		}
		if (textFile == "") == (tokensFile == "") {
			return errors.New("perplexity: give exactly one of --text and --tokens")
		}
		if window < 0 || window == 1 {
			return fmt.Errorf("perplexity: --ctx %d must be 0 or at least 2", window)
		}
		v, err := set.Resolve(env)
		if err != nil {
			return fmt.Errorf("perplexity: %w", err)
		}
		return perplexity(c.Context(), v, modelPath, textFile, tokensFile, window, asJSON, bos, headF32, c.OutOrStdout(), c.ErrOrStderr())
	}
	return c
}

func perplexity(ctx context.Context, v *config.Values, modelPath, textFile, tokensFile string, window int, asJSON, bos, headF32 bool, stdout, stderr io.Writer) error {
	kv, err := model.ParseKVType(config.KVCache.Get(v))
	if err != nil {
		return fmt.Errorf("perplexity: %w", err)
	}
	eng, err := genEngine(config.Kernel.Get(v), kernels.PlanStatic, config.Metal.Get(v), config.Threads.Get(v), kernels.MeasureConfig{}) // scoring: speed does not matter
	if err != nil {
		return fmt.Errorf("perplexity: %w", err)
	}
	defer eng.Close()
	start := time.Now()
	m, err := model.Load(modelPath, model.WithEngine(eng.Engine), model.WithHeadInt8(!headF32), model.WithKVType(kv),
		model.WithHeadFormat(kernels.HeadFormat(config.Head.Get(v))), model.WithI2SBlock(ternary.I2SBlock(config.I2SBlock.Get(v))))
	if err != nil {
		return fmt.Errorf("perplexity: %w", err)
	}
	defer m.Close()
	load := time.Since(start)

	var ids []int
	if tokensFile != "" {
		ids, err = readTokenIDs(tokensFile)
	} else {
		ids, err = tokenizeFile(m, textFile, bos)
	}
	if err != nil {
		return fmt.Errorf("perplexity: %w", err)
	}
	start = time.Now()
	res, err := m.Perplexity(ctx, ids, window)
	if err != nil {
		return fmt.Errorf("perplexity: %w", err)
	}
	el := time.Since(start)
	if asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "tokens: %d\nnll_mean: %.6f\nppl: %.4f\n", res.Tokens, res.NLLMean, res.PPL)
	fmt.Fprintf(stderr, "load %.2fs, scored %d tokens in %.2fs (%.1f tokens/s, kernel %s, %d threads)\n",
		load.Seconds(), len(ids), el.Seconds(), float64(len(ids))/el.Seconds(), eng.Path(), eng.Threads())
	return nil
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
