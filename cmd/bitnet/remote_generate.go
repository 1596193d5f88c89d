package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
)

// remoteGenerate implements "bitnet generate --remote ADDR --model REF
// --prompt TEXT": stream the generated text of a registry model served by
// the mesh to stdout. It sends the same sampling values a local run uses
// (the flags' defaults included), and --kernel means what it means locally:
// the model runs on that kernel path (a node that has it is required, one
// that runs it preferred; stderr says when the node ran another).
// Local-only settings (--threads, --kv-cache, --special) do not apply.
func remoteGenerate(ctx context.Context, rf client, g *generateFlags, stdout, stderr io.Writer) error {
	if _, err := modelv1.ParseRef(g.model); err != nil {
		return fmt.Errorf("generate: --model: %w", err)
	}
	req := remoteRequest(g)
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
	if g.kernel != "" && final != nil && final.GetKernel() != "" && final.GetKernel() != g.kernel && !rf.quiet {
		fmt.Fprintf(stderr, "note: no node runs the %s kernel path; %s ran on %s\n", g.kernel, dash(final.GetNode()), final.GetKernel())
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

// remoteRequest is the GenerateRequest of g: every sampling value is sent,
// so local and remote runs of the same flags sample alike.
func remoteRequest(g *generateFlags) *inferencev1.GenerateRequest {
	req := &inferencev1.GenerateRequest{
		Model: g.model, MaxTokens: uint32(g.maxTokens), Stop: g.stops, Require: g.require, Echo: g.echo,
		Temperature:       ptrTo(float32(g.temperature)),
		TopK:              uint32(max(g.topK, 0)),
		TopP:              ptrTo(float32(g.topP)),
		MinP:              float32(g.minP),
		RepetitionPenalty: ptrTo(float32(g.repeatPenalty)),
	}
	if g.kernel != "" {
		req.PreferKernel = g.kernel
		if !slices.Contains(req.Require, g.kernel) {
			req.Require = append(slices.Clone(req.Require), g.kernel)
		}
	}
	if g.seed >= 0 {
		req.Seed = ptrTo(uint64(g.seed))
	}
	if g.chat {
		if g.system != "" {
			req.Messages = append(req.Messages, &inferencev1.ChatMessage{Role: inferencev1.Role_ROLE_SYSTEM, Content: g.system})
		}
		req.Messages = append(req.Messages, &inferencev1.ChatMessage{Role: inferencev1.Role_ROLE_USER, Content: g.prompt})
	} else {
		req.Prompt = g.prompt
	}
	return req
}

func ptrTo[T any](v T) *T { return &v }
