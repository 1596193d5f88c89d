package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
)

// remoteRequested reports whether a "bitnet generate" command line names
// --remote, i.e. should run on the mesh (runRemoteGenerate) instead of a
// local model. BITNET_REMOTE alone does not switch generate to remote.
func remoteRequested(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == "remote" {
			return true
		}
	}
	return false
}

// runRemoteGenerate implements "bitnet generate --remote ADDR --model REF
// --prompt TEXT": stream the generated text of a registry model served by
// the mesh to stdout. It accepts the local command's flags; sampling flags
// the user did not set are left to the server's defaults, and local-only
// ones (--threads, --special) are ignored.
func runRemoteGenerate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rf := addRemoteFlags(fs)
	model := fs.String("model", "", "model reference NAME[@N|:ALIAS] (required)")
	prompt := fs.String("prompt", "", "prompt text (required)")
	maxTokens := fs.Int("max-tokens", 256, "maximum number of tokens to generate")
	temperature := fs.Float64("temperature", 0.8, "sampling temperature (0 = greedy)")
	topK := fs.Int("top-k", 40, "keep the k most likely tokens (0 = all)")
	topP := fs.Float64("top-p", 0.95, "keep the most likely tokens up to this total probability")
	minP := fs.Float64("min-p", 0.05, "drop tokens less likely than min-p times the most likely one")
	repeatPenalty := fs.Float64("repeat-penalty", 1.0, "repetition penalty (1 = off)")
	seed := fs.Int64("seed", -1, "random seed (-1 = random)")
	chat := fs.Bool("chat", false, "send the prompt as a chat message (the server applies the template)")
	system := fs.String("system", "", "system message (with --chat)")
	kernel := fs.String("kernel", "", "preferred kernel path of the serving node")
	echo := fs.Bool("echo", false, "print the prompt before the generated text")
	var stops, require stringsFlag
	fs.Var(&stops, "stop", "stop before this string (repeatable)")
	fs.Var(&require, "require", "hardware the serving node must have, e.g. avx512 (repeatable)")
	fs.Int("threads", 0, "ignored with --remote")
	fs.Int("repeat-last-n", 64, "ignored with --remote")
	fs.Bool("special", false, "ignored with --remote")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 0:
		return fmt.Errorf("generate: unexpected argument %q", pos[0])
	case *model == "":
		return fmt.Errorf("generate: --model is required (a registry reference with --remote)")
	case *prompt == "":
		return fmt.Errorf("generate: --prompt is required")
	case *maxTokens < 0:
		return fmt.Errorf("generate: --max-tokens %d, want >= 0", *maxTokens)
	}
	if _, err := modelv1.ParseRef(*model); err != nil {
		return fmt.Errorf("generate: --model: %w", err)
	}
	req := &inferencev1.GenerateRequest{Model: *model, MaxTokens: uint32(*maxTokens), Stop: stops, Require: require, PreferKernel: *kernel, Echo: *echo}
	if *chat {
		if *system != "" {
			req.Messages = append(req.Messages, &inferencev1.ChatMessage{Role: inferencev1.Role_ROLE_SYSTEM, Content: *system})
		}
		req.Messages = append(req.Messages, &inferencev1.ChatMessage{Role: inferencev1.Role_ROLE_USER, Content: *prompt})
	} else {
		req.Prompt = *prompt
	}
	// Only what the user set: the server's defaults apply otherwise.
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "temperature":
			req.Temperature = ptrTo(float32(*temperature))
		case "top-k":
			req.TopK = uint32(max(*topK, 0))
		case "top-p":
			req.TopP = ptrTo(float32(*topP))
		case "min-p":
			req.MinP = float32(*minP)
		case "repeat-penalty":
			req.RepetitionPenalty = ptrTo(float32(*repeatPenalty))
		case "seed":
			if *seed >= 0 {
				req.Seed = ptrTo(uint64(*seed))
			}
		}
	})
	ctx, c, done, err := rf.dial(ctx)
	if err != nil {
		return err
	}
	defer done()
	final, err := c.Inference().GenerateText(ctx, req, func(s string) error {
		_, err := io.WriteString(stdout, s)
		return err
	})
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(stdout); err != nil {
		return err
	}
	if !rf.quiet && final != nil {
		t := final.GetTimings()
		fmt.Fprintf(stderr, "%s on %s (%s): %d prompt + %d generated tokens, first token %.1f ms, %.1f tok/s, finish %s\n",
			final.GetModel().Text(), dash(final.GetNode()), dash(final.GetKernel()),
			final.GetUsage().GetPromptTokens(), final.GetUsage().GetCompletionTokens(),
			t.GetFirstTokenMs(), t.GetTokensPerSecond(),
			strings.ToLower(strings.TrimPrefix(final.GetFinishReason().String(), "FINISH_REASON_")))
	}
	return nil
}

func ptrTo[T any](v T) *T { return &v }
