package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// pplResult is the score of a text under llama-perplexity's protocol.
type pplResult struct {
	Chunks  int     `json:"chunks"`
	Tokens  int     `json:"tokens"` // tokens scored
	NLLMean float64 `json:"nll_mean"`
	PPL     float64 `json:"ppl"`
}

func runPPL(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ppl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	modelPath := fs.String("model", "", "model: .gguf file or Hugging Face directory (required)")
	textPath := fs.String("text", "", "text file (required)")
	n := fs.Int("ctx", 128, "chunk size in tokens, like llama-perplexity -c")
	chunks := fs.Int("chunks", 0, "score at most this many chunks (0: all), like --chunks")
	headF32 := fs.Bool("head-f32", true, "float32 output head and embeddings (llama.cpp multiplies by the F16 token_embd)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *modelPath == "" || *textPath == "" {
		return fmt.Errorf("ppl: -model and -text are required\n%s", usage)
	}
	text, err := os.ReadFile(*textPath)
	if err != nil {
		return fmt.Errorf("ppl: %w", err)
	}
	m, err := model.Load(*modelPath, model.WithHeadInt8(!*headF32))
	if err != nil {
		return fmt.Errorf("ppl: %w", err)
	}
	defer m.Close()
	bos := m.Config().BOSTokenID
	tokens := m.Tokenizer().EncodeOrdinary(string(text))
	if bos >= 0 {
		tokens = append([]int{bos}, tokens...)
	}
	res, err := llamaPerplexity(ctx, m, tokens, *n, *chunks, bos)
	if err != nil {
		return fmt.Errorf("ppl: %s: %w", *textPath, err)
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "chunks %d, tokens scored %d, nll_mean %.6f\nFinal estimate: PPL = %.4f\n", res.Chunks, res.Tokens, res.NLLMean, res.PPL)
	return nil
}

// llamaPerplexity scores tokens like llama.cpp's tools/perplexity
// (perplexity(), ppl_stride 0): chunks of n tokens from the start, the first
// token of each replaced by bos (when bos >= 0), the successors of positions
// [n/2, n-1) scored. Trailing tokens that do not fill a chunk are dropped.
func llamaPerplexity(ctx context.Context, m *model.Model, tokens []int, n, maxChunks, bos int) (pplResult, error) {
	if n < 4 || n > m.Config().MaxPositions {
		return pplResult{}, fmt.Errorf("ctx %d must be in [4, max_position_embeddings = %d]", n, m.Config().MaxPositions)
	}
	if len(tokens) < 2*n {
		return pplResult{}, fmt.Errorf("%d tokens, need at least 2*ctx = %d (as llama-perplexity)", len(tokens), 2*n)
	}
	nChunks := len(tokens) / n
	if maxChunks > 0 {
		nChunks = min(nChunks, maxChunks)
	}
	vocab := m.Config().VocabSize
	first := n / 2
	seq := m.NewSequence()
	chunk := make([]int, n)
	var sum float64
	scored := 0
	for c := 0; c < nChunks; c++ {
		copy(chunk, tokens[c*n:(c+1)*n])
		if bos >= 0 {
			chunk[0] = bos
		}
		seq.Reset()
		steps := []model.Step{{Seq: seq, Tokens: chunk, AllLogits: true}}
		if err := m.Forward(ctx, steps); err != nil {
			return pplResult{}, fmt.Errorf("chunk %d: %w", c, err)
		}
		logits := steps[0].Logits
		for j := first; j < n-1; j++ {
			sum += nll(logits[j*vocab:(j+1)*vocab], chunk[j+1])
			scored++
		}
	}
	mean := sum / float64(scored)
	return pplResult{Chunks: nChunks, Tokens: scored, NLLMean: mean, PPL: math.Exp(mean)}, nil
}

// nll returns -log softmax(logits)[id] in float64.
func nll(logits []float32, id int) float64 {
	mx := math.Inf(-1)
	for _, v := range logits {
		mx = math.Max(mx, float64(v))
	}
	var s float64
	for _, v := range logits {
		s += math.Exp(float64(v) - mx)
	}
	return math.Log(s) - (float64(logits[id]) - mx)
}
