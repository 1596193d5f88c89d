package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/chat"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/sampling"
	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// generateFlags are the options of "bitnet generate".
type generateFlags struct {
	model, prompt, system, kernel string
	kvCache                       string
	maxTokens, topK, threads      int
	repeatLastN                   int
	temperature, topP, minP       float64
	repeatPenalty                 float64
	seed                          int64
	chat, special                 bool
	stops                         stringList
}

func parseGenerateFlags(args []string, stderr io.Writer) (*generateFlags, error) {
	g := &generateFlags{}
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&g.model, "model", "", "model: a Hugging Face directory or a .gguf file (required)")
	fs.StringVar(&g.prompt, "prompt", "", "prompt text (required)")
	fs.IntVar(&g.maxTokens, "max-tokens", 256, "maximum number of tokens to generate")
	fs.Float64Var(&g.temperature, "temperature", 0.8, "sampling temperature (0 = greedy)")
	fs.IntVar(&g.topK, "top-k", 40, "keep the k most likely tokens (0 = all)")
	fs.Float64Var(&g.topP, "top-p", 0.95, "keep the most likely tokens up to this total probability (1 = off)")
	fs.Float64Var(&g.minP, "min-p", 0.05, "drop tokens less likely than min-p times the most likely one (0 = off)")
	fs.Float64Var(&g.repeatPenalty, "repeat-penalty", 1.0, "repetition penalty (1 = off)")
	fs.IntVar(&g.repeatLastN, "repeat-last-n", 64, "previous tokens the repetition penalty looks at (0 = all)")
	fs.Int64Var(&g.seed, "seed", -1, "random seed (-1 = random); the same seed gives the same output")
	fs.Var(&g.stops, "stop", "stop before this string (repeatable)")
	fs.BoolVar(&g.chat, "chat", false, "wrap the prompt in the model's chat template")
	fs.StringVar(&g.system, "system", "", "system message (with --chat)")
	fs.BoolVar(&g.special, "special", false, "print special tokens (e.g. <|eot_id|>) in the output")
	fs.StringVar(&g.kernel, "kernel", "", "kernel path: generic, avx2, avx512 or neon (default: the best this CPU runs)")
	fs.IntVar(&g.threads, "threads", 0, "worker threads (default: GOMAXPROCS)")
	fs.StringVar(&g.kvCache, "kv-cache", "f16", "KV cache element type: f16 or f32")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("generate: unexpected argument %q", fs.Arg(0))
	case g.model == "":
		return nil, errors.New("generate: --model is required")
	case g.prompt == "":
		return nil, errors.New("generate: --prompt is required")
	case g.maxTokens < 0:
		return nil, fmt.Errorf("generate: --max-tokens = %d must be >= 0", g.maxTokens)
	case g.system != "" && !g.chat:
		return nil, errors.New("generate: --system needs --chat")
	case g.seed < -1:
		return nil, fmt.Errorf("generate: --seed = %d must be >= 0 (or -1 for random)", g.seed)
	}
	for _, s := range g.stops {
		if s == "" {
			return nil, errors.New("generate: --stop must not be empty")
		}
	}
	return g, nil
}

func (g *generateFlags) sampler() (*sampling.Sampler, error) {
	opts := []sampling.Option{
		sampling.WithTemperature(g.temperature),
		sampling.WithTopK(g.topK),
		sampling.WithTopP(g.topP),
		sampling.WithMinP(g.minP),
		sampling.WithRepetitionPenalty(g.repeatPenalty, g.repeatLastN),
	}
	if g.seed >= 0 {
		opts = append(opts, sampling.WithSeed(uint64(g.seed)))
	}
	return sampling.New(opts...)
}

// runGenerate implements "bitnet generate": it streams the continuation of a
// prompt to stdout as it is generated and prints timings to stderr.
func runGenerate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if remoteRequested(args) { // --remote ADDR: through the mesh (remote_generate.go)
		return runRemoteGenerate(ctx, args, stdout, stderr)
	}
	g, err := parseGenerateFlags(args, stderr)
	if err != nil {
		return err
	}
	s, err := g.sampler()
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	kv, err := model.ParseKVType(g.kvCache)
	if err != nil {
		return fmt.Errorf("generate: --kv-cache: %w", err)
	}
	eng, err := genEngine(g.kernel, g.threads)
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	defer eng.Close()
	start := time.Now()
	m, err := model.Load(g.model, model.WithEngine(eng), model.WithKVType(kv))
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	defer m.Close()
	load := time.Since(start)
	tok := m.Tokenizer()
	if tok == nil {
		return fmt.Errorf("generate: model %s has no tokenizer", g.model)
	}
	ids, err := promptTokens(g, tok, m.Config())
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	st, err := generate(ctx, m, tok, s, ids, g, stdout)
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	fmt.Fprintf(stderr, "\n[load %.2f s | prefill %d tokens in %.2f s, %.1f tok/s | decode %d tokens in %.2f s, %.1f tok/s | %s, %d threads | stop: %s]\n",
		load.Seconds(), len(ids), st.prefill.Seconds(), tokPerSec(len(ids), st.prefill),
		st.generated, st.decode.Seconds(), tokPerSec(st.decodeSteps, st.decode), eng.Path(), eng.Threads(), st.reason)
	return nil
}

func tokPerSec(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// promptTokens encodes the prompt: through the chat template with --chat
// (which starts with BOS), else as plain text after BOS when the model has
// one, like llama.cpp.
func promptTokens(g *generateFlags, tok *tokenizer.Tokenizer, c model.Config) ([]int, error) {
	var ids []int
	if g.chat {
		var msgs []chat.Message
		if g.system != "" {
			msgs = append(msgs, chat.Message{Role: chat.RoleSystem, Content: g.system})
		}
		msgs = append(msgs, chat.Message{Role: chat.RoleUser, Content: g.prompt})
		tmpl, err := chat.Load(g.model, tok)
		if err != nil {
			return nil, err
		}
		text, err := tmpl.Apply(msgs, chat.Options{AddGenerationPrompt: true})
		if err != nil {
			return nil, err
		}
		ids = tok.Encode(text)
	} else {
		if c.BOSTokenID >= 0 {
			ids = append(ids, c.BOSTokenID)
		}
		ids = append(ids, tok.EncodeOrdinary(g.prompt)...)
	}
	if len(ids) == 0 {
		return nil, errors.New("the prompt encodes to no tokens")
	}
	if len(ids) >= c.MaxPositions {
		return nil, fmt.Errorf("the prompt has %d tokens; the context holds %d (max_position_embeddings)", len(ids), c.MaxPositions)
	}
	return ids, nil
}

// genStats are the counts and times of one generation.
type genStats struct {
	generated, decodeSteps int
	prefill, decode        time.Duration // time in Forward
	reason                 string
}

// generate runs the prompt, then samples one token at a time and streams the
// decoded text through the stop matcher until EOS (or <|eot_id|> with
// --chat), a stop string, the token limit or the context limit.
func generate(ctx context.Context, m *model.Model, tok *tokenizer.Tokenizer, s *sampling.Sampler, prompt []int, g *generateFlags, out io.Writer) (genStats, error) {
	st := genStats{reason: "max-tokens"}
	var ends []int // the chat template's end-of-turn tokens
	if g.chat {
		tmpl, err := chat.Load(g.model, tok)
		if err != nil {
			return st, err
		}
		ends = tmpl.EndTokens(tok)
	}
	seq := m.NewSequence()
	steps := []model.Step{{Seq: seq, Tokens: prompt}}
	start := time.Now()
	if err := m.Forward(ctx, steps); err != nil {
		return st, err
	}
	st.prefill = time.Since(start)
	history := append([]int(nil), prompt...)
	var decOpts []tokenizer.DecoderOption
	if !g.special {
		decOpts = append(decOpts, tokenizer.SkipSpecial())
	}
	dec := tok.NewDecoder(decOpts...)
	stop := sampling.NewStopMatcher(g.stops...)
	maxPos := m.Config().MaxPositions
	for st.generated < g.maxTokens {
		id, err := s.TrySample(steps[0].Logits, history)
		if err != nil {
			return st, err
		}
		if m.IsEOS(id) || slices.Contains(ends, id) {
			st.reason = "eos"
			break
		}
		st.generated++
		history = append(history, id)
		text, hit := stop.Push(dec.Add(id))
		if _, err := io.WriteString(out, text); err != nil {
			return st, err
		}
		if hit {
			st.reason = "stop string"
			return st, nil
		}
		if st.generated == g.maxTokens {
			break
		}
		if seq.Len() >= maxPos {
			st.reason = fmt.Sprintf("context full (%d positions)", maxPos)
			break
		}
		steps[0].Tokens = append(steps[0].Tokens[:0:0], id)
		start = time.Now()
		if err := m.Forward(ctx, steps); err != nil {
			return st, err
		}
		st.decode += time.Since(start)
		st.decodeSteps++
	}
	text, _ := stop.Push(dec.Flush())
	_, err := io.WriteString(out, text+stop.Flush())
	return st, err
}
