package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/bitnet-mesh/bitnet-mesh/cmd/bitnet/internal/config"
	"github.com/bitnet-mesh/bitnet-mesh/shared/chat"
	"github.com/bitnet-mesh/bitnet-mesh/shared/hardware"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/sampling"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
)

// generateFlags are the options of "bitnet generate", local or remote.
type generateFlags struct {
	model, prompt, system   string
	maxTokens, topK         int
	repeatLastN             int
	temperature, topP, minP float64
	repeatPenalty           float64
	seed                    int64
	chat, special, echo     bool
	stops, require          []string
	kernel, kvCache, head   string // resolved settings
	metal                   string
	plan                    kernels.PlanMode
	threads                 int
	i2sBlock                ternary.I2SBlock
}

func newGenerateCmd(env config.Lookup) *cobra.Command {
	g := &generateFlags{}
	c := &cobra.Command{
		Use:   "generate --model PATH|REF --prompt TEXT [flags]",
		Short: "Generate text with a local model, or through the mesh with --remote",
		Long: `Stream the continuation of a prompt to stdout, with timings on stderr.

Locally, --model is a Hugging Face directory or a .gguf file. With --remote ADDR
the request goes to the mesh (router or "bitnet up") and --model is a registry
reference NAME, NAME@N or NAME:ALIAS. With BITNET_REMOTE set, generate goes
through the mesh unless --model names a local file or directory (--remote ""
forces a local run). Both take the same sampling flags.`,
		Example: `  bitnet generate --model /tmp/opticks --prompt "Light is" --temperature 0 --max-tokens 32
  bitnet generate --model model.gguf --prompt "Hello" --chat --system "Be brief." --seed 7
  bitnet generate --remote 127.0.0.1:50051 --model opticks@1 --prompt "Light" --require avx2`,
		Args: noArgs,
	}
	set := config.Bind(c, append(slices.Clone(config.Client), config.Kernel, config.KernelPlan, config.Metal, config.Head, config.I2SBlock, config.Threads, config.KVCache)...)
	fs := c.Flags()
	fs.StringVar(&g.model, "model", "", "model: a Hugging Face directory or .gguf file; with --remote a registry reference NAME[@N|:ALIAS] (required)")
	fs.StringVar(&g.prompt, "prompt", "", "prompt text (required)")
	fs.IntVar(&g.maxTokens, "max-tokens", 256, "maximum number of tokens to generate")
	fs.Float64Var(&g.temperature, "temperature", 0.8, "sampling temperature (0 = greedy)")
	fs.IntVar(&g.topK, "top-k", 40, "keep the k most likely tokens (0 = all)")
	fs.Float64Var(&g.topP, "top-p", 0.95, "keep the most likely tokens up to this total probability (1 = off)")
	fs.Float64Var(&g.minP, "min-p", 0.05, "drop tokens less likely than min-p times the most likely one (0 = off)")
	fs.Float64Var(&g.repeatPenalty, "repeat-penalty", 1.0, "repetition penalty (1 = off)")
	fs.IntVar(&g.repeatLastN, "repeat-last-n", 64, "previous tokens the repetition penalty looks at (0 = all)")
	fs.Int64Var(&g.seed, "seed", -1, "random seed (-1 = random); the same seed gives the same output")
	fs.StringArrayVar(&g.stops, "stop", nil, "stop before this string (repeatable)")
	fs.BoolVar(&g.chat, "chat", false, "wrap the prompt in the model's chat template")
	fs.StringVar(&g.system, "system", "", "system message (with --chat)")
	fs.BoolVar(&g.special, "special", false, "print special tokens (e.g. <|eot_id|>) in the output (local only)")
	fs.BoolVar(&g.echo, "echo", false, "print the prompt before the generated text")
	fs.StringArrayVar(&g.require, "require", nil, "hardware the model must run on, e.g. avx512 or avx512vnni: this machine's, or with --remote the serving node's (repeatable)")
	c.RunE = func(c *cobra.Command, _ []string) error {
		v, err := set.Resolve(env)
		if err != nil {
			return fmt.Errorf("generate: %w", err)
		}
		g.kernel, g.threads, g.kvCache = config.Kernel.Get(v), config.Threads.Get(v), config.KVCache.Get(v)
		g.head, g.plan, g.metal = config.Head.Get(v), kernels.PlanMode(config.KernelPlan.Get(v)), config.Metal.Get(v)
		g.i2sBlock = ternary.I2SBlock(config.I2SBlock.Get(v))
		if err := g.check(); err != nil {
			return err
		}
		if useRemote(v, g.model) {
			if c.Flags().Changed("repeat-last-n") && g.repeatLastN != 64 {
				return errors.New("generate: --repeat-last-n: the mesh's repetition penalty looks at the last 64 tokens; drop the flag with --remote")
			}
			return remoteGenerate(c.Context(), clientFrom(v), g, c.OutOrStdout(), c.ErrOrStderr())
		}
		if err := checkLocalHardware(g.require); err != nil {
			return err
		}
		return localGenerate(c.Context(), g, c.OutOrStdout(), c.ErrOrStderr())
	}
	return c
}

// useRemote says whether generate runs through the mesh: with --remote ADDR
// (--remote "" forces a local run), or with BITNET_REMOTE set unless
// --model names a local file or directory.
func useRemote(v *config.Values, model string) bool {
	switch v.Source(config.Remote).Origin {
	case config.FromFlag:
		return config.Remote.Get(v) != ""
	case config.FromEnv:
		_, err := os.Stat(model)
		return model == "" || err != nil
	}
	return false
}

// check validates the flags, local or remote.
func (g *generateFlags) check() error {
	switch {
	case g.model == "":
		return errors.New("generate: --model is required")
	case g.prompt == "":
		return errors.New("generate: --prompt is required")
	case g.maxTokens < 0 || g.maxTokens > math.MaxUint32:
		return fmt.Errorf("generate: --max-tokens %d, want 0 to %d", g.maxTokens, uint32(math.MaxUint32))
	case g.system != "" && !g.chat:
		return errors.New("generate: --system needs --chat")
	case g.seed < -1:
		return fmt.Errorf("generate: --seed = %d must be >= 0 (or -1 for random)", g.seed)
	case !utf8.ValidString(g.prompt) || !utf8.ValidString(g.system):
		return errors.New("generate: --prompt and --system must be valid UTF-8")
	}
	if _, err := g.sampler(); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	for _, s := range g.stops {
		if s == "" || !utf8.ValidString(s) {
			return errors.New("generate: --stop must be non-empty UTF-8")
		}
	}
	return nil
}

// checkLocalHardware checks --require against this machine, as the router
// checks it against a node.
func checkLocalHardware(require []string) error {
	if len(require) == 0 {
		return nil
	}
	hw, err := hardware.Detect()
	if err != nil {
		return fmt.Errorf("generate: --require: %w", err)
	}
	for _, r := range require {
		ok, err := hw.Has(r)
		if err != nil {
			return fmt.Errorf("generate: --require: %w", err)
		}
		if !ok {
			var has []string
			for _, name := range hardware.Requirements() {
				if ok, _ := hw.Has(name); ok {
					has = append(has, name)
				}
			}
			return fmt.Errorf("generate: --require %s: this machine does not have it (it has %s)", r, strings.Join(has, ", "))
		}
	}
	return nil
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

// localGenerate streams the continuation of a prompt to stdout as it is
// generated and prints timings to stderr.
func localGenerate(ctx context.Context, g *generateFlags, stdout, stderr io.Writer) error {
	s, err := g.sampler()
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	kv, err := model.ParseKVType(g.kvCache)
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	eng, err := genEngine(g.kernel, g.plan, g.metal, g.threads, planMeasure(g.model, kernels.HeadFormat(g.head)))
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	defer eng.Close()
	start := time.Now()
	m, err := model.Load(g.model, model.WithEngine(eng.Engine), model.WithKVType(kv), model.WithHeadFormat(kernels.HeadFormat(g.head)),
		model.WithI2SBlock(g.i2sBlock))
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
	if g.echo {
		if _, err := io.WriteString(stdout, g.prompt); err != nil {
			return err
		}
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
