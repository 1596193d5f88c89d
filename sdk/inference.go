package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
)

// InferenceClient calls bitnet.inference.v1 on an inference node or the
// router.
type InferenceClient struct {
	rpc inferencev1.InferenceServiceClient
}

// RPC returns the generated client, for calls this type does not wrap.
func (c *InferenceClient) RPC() inferencev1.InferenceServiceClient { return c.rpc }

// Generate starts a generation and returns its token stream:
//
//	s, err := c.Generate(ctx, req)
//	if err != nil { ... }
//	defer s.Close()
//	for s.Next() { fmt.Print(s.Text()) }
//	if err := s.Err(); err != nil { ... }
//	last := s.Final() // finish reason, usage, timings, node, kernel
func (c *InferenceClient) Generate(ctx context.Context, req *inferencev1.GenerateRequest) (*GenerateStream, error) {
	op := fmt.Sprintf("generate with %q", req.GetModel())
	sctx, cancel := context.WithCancel(ctx)
	stream, err := c.rpc.Generate(sctx, req)
	if err != nil {
		cancel()
		return nil, wrap(op, err)
	}
	return &GenerateStream{op: op, stream: stream, cancel: cancel}, nil
}

// GenerateStream iterates over the messages of one generation. It is not
// safe for concurrent use.
type GenerateStream struct {
	op     string
	stream inferencev1.InferenceService_GenerateClient
	cancel context.CancelFunc
	cur    *inferencev1.GenerateResponse
	final  *inferencev1.GenerateResponse
	err    error
	done   bool
}

// Next advances to the next message; false at the end of the stream or on
// an error (see Err).
func (s *GenerateStream) Next() bool {
	if s.done {
		return false
	}
	msg, err := s.stream.Recv()
	if err != nil {
		s.done, s.cur = true, nil
		if !errors.Is(err, io.EOF) {
			s.err = wrap(s.op, err)
		}
		s.cancel()
		return false
	}
	s.cur = msg
	if msg.GetFinishReason() != inferencev1.FinishReason_FINISH_REASON_UNSPECIFIED || msg.GetUsage() != nil {
		s.final = msg
	}
	return true
}

// Text returns the current message's text delta.
func (s *GenerateStream) Text() string { return s.cur.GetText() }

// Response returns the current message.
func (s *GenerateStream) Response() *inferencev1.GenerateResponse { return s.cur }

// Final returns the last message, the one with the finish reason, usage,
// timings and serving node; nil until it has arrived.
func (s *GenerateStream) Final() *inferencev1.GenerateResponse { return s.final }

// Err returns the error that ended the stream, nil after a normal end.
func (s *GenerateStream) Err() error { return s.err }

// Close stops the generation (the server sees a cancellation) and releases
// the stream. It is safe to call more than once.
func (s *GenerateStream) Close() {
	s.done = true
	s.cancel()
}

// GenerateText runs a generation to its end, calling onText (when not nil)
// with each text delta, and returns the final message.
func (c *InferenceClient) GenerateText(ctx context.Context, req *inferencev1.GenerateRequest, onText func(string) error) (*inferencev1.GenerateResponse, error) {
	s, err := c.Generate(ctx, req)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	for s.Next() {
		if onText != nil && s.Text() != "" {
			if err := onText(s.Text()); err != nil {
				return nil, err
			}
		}
	}
	return s.Final(), s.Err()
}

// Tokenize returns the token IDs (and token strings) of text for model.
func (c *InferenceClient) Tokenize(ctx context.Context, model, text string) (*inferencev1.TokenizeResponse, error) {
	resp, err := c.rpc.Tokenize(ctx, &inferencev1.TokenizeRequest{Model: model, Text: text})
	if err != nil {
		return nil, wrap(fmt.Sprintf("tokenize with %q", model), err)
	}
	return resp, nil
}

// Embed embeds texts (or pre-tokenized inputs) with an embedding model,
// e.g. BitNet-embedding-0.6B: one vector per input, in input order (see
// inferencev1.EmbedRequest for dimensions and encodings).
func (c *InferenceClient) Embed(ctx context.Context, req *inferencev1.EmbedRequest) (*inferencev1.EmbedResponse, error) {
	resp, err := c.rpc.Embed(ctx, req)
	if err != nil {
		return nil, wrap(fmt.Sprintf("embed with %q", req.GetModel()), err)
	}
	return resp, nil
}

// ListNodes lists the inference nodes with their hardware and load; require
// (feature flags or kernel paths) and model narrow the list when set.
func (c *InferenceClient) ListNodes(ctx context.Context, model string, require ...string) ([]*inferencev1.Node, error) {
	resp, err := c.rpc.ListNodes(ctx, &inferencev1.ListNodesRequest{Model: model, Require: require})
	if err != nil {
		return nil, wrap("list nodes", err)
	}
	return resp.GetNodes(), nil
}

// ListModels lists the servable models and where they are loaded,
// following the pages.
func (c *InferenceClient) ListModels(ctx context.Context, prefix string) ([]*inferencev1.ServableModel, error) {
	var out []*inferencev1.ServableModel
	token := ""
	for {
		resp, err := c.rpc.ListModels(ctx, &inferencev1.ListModelsRequest{NamePrefix: prefix, PageToken: token, PageSize: 1000})
		if err != nil {
			return nil, wrap("list servable models", err)
		}
		out = append(out, resp.GetModels()...)
		token = resp.GetNextPageToken()
		if token == "" {
			return out, nil
		}
	}
}
