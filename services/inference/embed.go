package inference

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// MaxEmbedInputs bounds the inputs of one Embed request (as OpenAI's
// embeddings endpoint does).
const MaxEmbedInputs = 2048

// embedWindow is how many of one request's inputs wait in the scheduler at
// once: enough to fill a batch, few enough to leave room in the queue for
// other requests.
const embedWindow = 16

// Embed implements InferenceService: every input becomes one embedding
// request of the model's scheduler (a prompt prefill batched with the other
// requests), submitted embedWindow at a time.
func (s *Server) Embed(ctx context.Context, req *inferencev1.EmbedRequest) (*inferencev1.EmbedResponse, error) {
	begin := time.Now()
	if err := s.checkRequire(req.GetRequire()); err != nil {
		return nil, toStatus(err)
	}
	if req.GetModel() == "" {
		return nil, status.Error(codes.InvalidArgument, "model is required")
	}
	n := len(req.GetInputs()) + len(req.GetTokenInputs())
	switch {
	case len(req.GetInputs()) > 0 && len(req.GetTokenInputs()) > 0:
		return nil, status.Error(codes.InvalidArgument, "give exactly one of inputs and token_inputs")
	case n == 0:
		return nil, status.Error(codes.InvalidArgument, "no inputs to embed")
	case n > MaxEmbedInputs:
		return nil, status.Errorf(codes.InvalidArgument, "%d inputs, at most %d per request", n, MaxEmbedInputs)
	}
	enc := req.GetEncoding()
	switch enc {
	case inferencev1.EmbeddingEncoding_EMBEDDING_ENCODING_UNSPECIFIED:
		enc = inferencev1.EmbeddingEncoding_EMBEDDING_ENCODING_FLOAT
	case inferencev1.EmbeddingEncoding_EMBEDDING_ENCODING_FLOAT, inferencev1.EmbeddingEncoding_EMBEDDING_ENCODING_INT8,
		inferencev1.EmbeddingEncoding_EMBEDDING_ENCODING_BINARY:
	default:
		return nil, status.Errorf(codes.InvalidArgument, "unknown encoding %d", enc)
	}
	h, err := s.mgr.Acquire(ctx, req.GetModel())
	if err != nil {
		return nil, toStatus(err)
	}
	defer h.Release()
	c := h.Model.Config()
	if !c.IsEmbedding() {
		return nil, toStatus(fmt.Errorf("model %s (%s family) is not an embedding model: %w", h.Ref.Text(), c.Family(), ErrUnsupported))
	}
	dims := int(req.GetDimensions())
	if dims == 0 {
		dims = c.HiddenSize
	}
	if dims > c.HiddenSize {
		return nil, status.Errorf(codes.InvalidArgument, "dimensions %d: the model's embeddings have %d", dims, c.HiddenSize)
	}
	inputs, err := embedInputs(req, h.Model, c)
	if err != nil {
		return nil, toStatus(err)
	}
	vecs, err := s.embedAll(ctx, h, inputs)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &inferencev1.EmbedResponse{Dimensions: uint32(dims), Encoding: enc, Node: s.node, Kernel: s.kernel, Model: h.Ref}
	tokens := 0
	for i, v := range vecs {
		v = v[:dims]
		if dims < c.HiddenSize && c.NormalizeEmbeddings {
			model.NormalizeL2(v) // a truncated unit vector is renormalised (Matryoshka)
		}
		e := &inferencev1.Embedding{Index: uint32(i), Tokens: uint32(len(inputs[i]))}
		encodeEmbedding(e, v, enc)
		resp.Embeddings = append(resp.Embeddings, e)
		tokens += len(inputs[i])
	}
	resp.Usage = &modelv1.Usage{PromptTokens: uint32(tokens), TotalTokens: uint32(tokens)}
	resp.TotalMs = float64(time.Since(begin).Microseconds()) / 1e3
	s.log.Debug("embedded", zap.String("model", h.Ref.Text()), zap.Int("inputs", n), zap.Int("tokens", tokens),
		zap.Duration("total", time.Since(begin)))
	return resp, nil
}

// embedInputs tokenizes the request's texts (the model's prefix and suffix
// tokens around each) or checks its token inputs, truncating to the context
// when asked.
func embedInputs(req *inferencev1.EmbedRequest, m *model.Model, c model.Config) ([][]int, error) {
	var out [][]int
	for i, ti := range req.GetTokenInputs() {
		ids := make([]int, len(ti.GetIds()))
		for k, id := range ti.GetIds() {
			if int64(id) >= int64(c.VocabSize) {
				return nil, invalidf("input %d token %d: id %d out of range [0,%d)", i, k, id, c.VocabSize)
			}
			ids[k] = int(id)
		}
		out = append(out, ids)
	}
	tok := m.Tokenizer()
	if len(req.GetInputs()) > 0 && tok == nil {
		return nil, fmt.Errorf("model has no tokenizer: give token_inputs: %w", ErrUnsupported)
	}
	for _, text := range req.GetInputs() {
		out = append(out, model.EmbedIDs(c, tok, text))
	}
	for i, ids := range out {
		if len(ids) == 0 {
			return nil, invalidf("input %d is empty", i)
		}
		if len(ids) > c.MaxPositions {
			if !req.GetTruncate() {
				return nil, invalidf("input %d has %d tokens, the model's context holds %d (set truncate to cut it)", i, len(ids), c.MaxPositions)
			}
			// Keep the start and the closing tokens that pooling reads.
			keep := ids[:c.MaxPositions-len(c.EmbedSuffix)]
			if len(req.GetTokenInputs()) > 0 {
				keep = ids[:c.MaxPositions]
			} else {
				keep = append(keep, c.EmbedSuffix...)
			}
			out[i] = keep
		}
	}
	return out, nil
}

// embedAll runs every input through the model's scheduler, at most
// embedWindow at a time, and returns the embeddings in input order. A full
// queue while some of ours are in flight waits for one of them; a full
// queue with none of ours in flight fails the request (RESOURCE_EXHAUSTED).
func (s *Server) embedAll(ctx context.Context, h *Handle, inputs [][]int) ([][]float32, error) {
	ctx, cancel := context.WithCancel(ctx) // ends the rest when one fails
	defer cancel()
	type result struct {
		i   int
		v   []float32
		err error
	}
	results := make(chan result, len(inputs))
	out := make([][]float32, len(inputs))
	inFlight, next, done := 0, 0, 0
	wait := func() error {
		r := <-results
		inFlight--
		done++
		if r.err != nil {
			return r.err
		}
		out[r.i] = r.v
		return nil
	}
	for done < len(inputs) {
		for next < len(inputs) && inFlight < embedWindow {
			st, err := h.Scheduler.Submit(ctx, Request{Prompt: inputs[next], Embed: true})
			if errors.Is(err, ErrQueueFull) && inFlight > 0 {
				break // wait for one of ours, then try again
			}
			if err != nil {
				for inFlight > 0 { // let the submitted ones end (cancelled)
					cancel()
					_ = wait()
				}
				return nil, fmt.Errorf("input %d: %w", next, err)
			}
			go func(i int, st *Stream) { // the stream's reader: ends with the stream
				for {
					ev, err := st.Recv(ctx)
					if err == nil && ev.Err != nil {
						err = ev.Err
					}
					if err != nil || ev.Final {
						results <- result{i, ev.Embedding, err}
						return
					}
				}
			}(next, st)
			inFlight++
			next++
		}
		if err := wait(); err != nil {
			cancel()
			for inFlight > 0 {
				_ = wait()
			}
			return nil, err
		}
	}
	return out, nil
}

// encodeEmbedding fills e with v in encoding enc.
func encodeEmbedding(e *inferencev1.Embedding, v []float32, enc inferencev1.EmbeddingEncoding) {
	switch enc {
	case inferencev1.EmbeddingEncoding_EMBEDDING_ENCODING_INT8:
		var mx float32
		for _, x := range v {
			mx = max(mx, float32(math.Abs(float64(x))))
		}
		e.Int8Values = make([]int32, len(v))
		if mx == 0 {
			return
		}
		e.Scale = mx / 127
		inv := 127 / mx
		for i, x := range v {
			e.Int8Values[i] = int32(min(max(math.RoundToEven(float64(x*inv)), -127), 127))
		}
	case inferencev1.EmbeddingEncoding_EMBEDDING_ENCODING_BINARY:
		e.Binary = make([]byte, (len(v)+7)/8)
		for i, x := range v {
			if x > 0 {
				e.Binary[i/8] |= 0x80 >> (i % 8)
			}
		}
	default:
		e.Values = v
	}
}
