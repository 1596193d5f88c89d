package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
)

// remoteGenerate implements "bitnet generate --remote ADDR --model REF
// --prompt TEXT": stream the generated text of a registry model served by
// the mesh to stdout. Sampling flags the user did not set are left to the
// server's defaults, and local-only ones (--threads, --special) are ignored.
func remoteGenerate(ctx context.Context, rf client, g *generateFlags, changed func(string) bool, stdout, stderr io.Writer) error {
	switch {
	case g.model == "":
		return fmt.Errorf("generate: --model is required (a registry reference with --remote)")
	case g.prompt == "":
		return fmt.Errorf("generate: --prompt is required")
	case g.maxTokens < 0:
		return fmt.Errorf("generate: --max-tokens %d, want >= 0", g.maxTokens)
	}
	if _, err := modelv1.ParseRef(g.model); err != nil {
		return fmt.Errorf("generate: --model: %w", err)
	}
	req := &inferencev1.GenerateRequest{Model: g.model, MaxTokens: uint32(g.maxTokens), Stop: g.stops, Require: g.require, PreferKernel: g.kernel, Echo: g.echo}
	if g.chat {
		if g.system != "" {
			req.Messages = append(req.Messages, &inferencev1.ChatMessage{Role: inferencev1.Role_ROLE_SYSTEM, Content: g.system})
		}
		req.Messages = append(req.Messages, &inferencev1.ChatMessage{Role: inferencev1.Role_ROLE_USER, Content: g.prompt})
	} else {
		req.Prompt = g.prompt
	}
	// Only what the user set: the server's defaults apply otherwise.
	if changed("temperature") {
		req.Temperature = ptrTo(float32(g.temperature))
	}
	if changed("top-k") {
		req.TopK = uint32(max(g.topK, 0))
	}
	if changed("top-p") {
		req.TopP = ptrTo(float32(g.topP))
	}
	if changed("min-p") {
		req.MinP = float32(g.minP)
	}
	if changed("repeat-penalty") {
		req.RepetitionPenalty = ptrTo(float32(g.repeatPenalty))
	}
	if changed("seed") && g.seed >= 0 {
		req.Seed = ptrTo(uint64(g.seed))
	}
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
