package openai

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/constrained"
)

// untilFull is max_tokens when the request sets none: the node stops when
// the context is full.
const untilFull = 1 << 30

// maxStops bounds the stop strings of a request.
const maxStops = 16

// baseRequest validates the parameters chat and completions share and
// fills a GenerateRequest with them.
func baseRequest(p *samplingParams, maxTokens *int64, defaultMax int64) (*inferencev1.GenerateRequest, error) {
	if p.Model == "" {
		return nil, invalid("model", "you must provide a model parameter")
	}
	req := &inferencev1.GenerateRequest{Model: p.Model, MaxTokens: uint32(defaultMax), Temperature: proto.Float32(1)}
	if maxTokens != nil {
		if *maxTokens < 1 || *maxTokens > untilFull {
			return nil, invalid("max_tokens", "max_tokens %d: want 1 to %d", *maxTokens, untilFull)
		}
		req.MaxTokens = uint32(*maxTokens)
	}
	if t := p.Temperature; t != nil {
		if !(*t >= 0 && *t <= 2) {
			return nil, invalid("temperature", "temperature %v: want 0 to 2", *t)
		}
		req.Temperature = proto.Float32(float32(*t))
	}
	if tp := p.TopP; tp != nil {
		switch {
		case !(*tp >= 0 && *tp <= 1):
			return nil, invalid("top_p", "top_p %v: want 0 to 1", *tp)
		case *tp == 0: // only the most likely token
			req.Temperature = proto.Float32(0)
		default:
			req.TopP = proto.Float32(float32(*tp))
		}
	}
	if p.N != nil && *p.N != 1 {
		return nil, invalid("n", "n %d: only n=1 is supported (send n requests)", *p.N)
	}
	if len(p.Stop) > maxStops {
		return nil, invalid("stop", "%d stop sequences: at most %d", len(p.Stop), maxStops)
	}
	for _, s := range p.Stop {
		if s != "" {
			req.Stop = append(req.Stop, s)
		}
	}
	if p.Seed != nil {
		req.Seed = proto.Uint64(uint64(*p.Seed))
	}
	for _, pen := range []struct {
		name string
		v    *float64
		dst  **float32
	}{{"presence_penalty", p.PresencePenalty, &req.PresencePenalty}, {"frequency_penalty", p.FrequencyPenalty, &req.FrequencyPenalty}} {
		if pen.v == nil {
			continue
		}
		if !(*pen.v >= -2 && *pen.v <= 2) {
			return nil, invalid(pen.name, "%s %v: want -2 to 2", pen.name, *pen.v)
		}
		*pen.dst = proto.Float32(float32(*pen.v))
	}
	if len(p.LogitBias) > 0 && string(p.LogitBias) != "null" && string(p.LogitBias) != "{}" {
		return nil, unsupported("logit_bias", "")
	}
	if p.TopK != nil {
		if *p.TopK < -1 {
			return nil, invalid("top_k", "top_k %d: want -1 (off) or more", *p.TopK)
		}
		req.TopK = uint32(max(*p.TopK, 0))
	}
	if p.MinP != nil {
		if !(*p.MinP >= 0 && *p.MinP <= 1) {
			return nil, invalid("min_p", "min_p %v: want 0 to 1", *p.MinP)
		}
		req.MinP = float32(*p.MinP)
	}
	if rp := p.RepetitionPenalty; rp != nil {
		if !(*rp > 0 && *rp <= 10) {
			return nil, invalid("repetition_penalty", "repetition_penalty %v: want above 0, at most 10", *rp)
		}
		req.RepetitionPenalty = proto.Float32(float32(*rp))
	}
	if rf := p.ResponseFormat; rf != nil {
		switch rf.Type {
		case "", "text":
		case "json_object":
			req.ResponseFormat = &inferencev1.ResponseFormat{Type: inferencev1.ResponseFormatType_RESPONSE_FORMAT_TYPE_JSON_OBJECT}
		case "json_schema":
			if rf.JSONSchema == nil || len(rf.JSONSchema.Schema) == 0 || string(rf.JSONSchema.Schema) == "null" {
				return nil, invalid("response_format", "response_format json_schema needs json_schema.schema")
			}
			if _, err := constrained.CompileSchema(rf.JSONSchema.Schema); err != nil {
				return nil, invalid("response_format", "%v", err)
			}
			req.ResponseFormat = &inferencev1.ResponseFormat{Type: inferencev1.ResponseFormatType_RESPONSE_FORMAT_TYPE_JSON_SCHEMA, JsonSchema: string(rf.JSONSchema.Schema)}
		default:
			return nil, invalid("response_format", "response_format type %q: want text, json_object or json_schema", rf.Type)
		}
		if req.ResponseFormat != nil && len(req.Stop) > 0 {
			return nil, invalid("stop", "stop cannot be combined with response_format %s: a stop sequence could cut the document", rf.Type)
		}
	}
	if b := p.Bitnet; b != nil {
		req.Require, req.PreferKernel = b.Require, b.PreferKernel
	}
	return req, nil
}

// templateArgs parses chat_template_kwargs (a JSON object).
func templateArgs(raw json.RawMessage) (*structpb.Struct, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, invalid("chat_template_kwargs", "chat_template_kwargs must be a JSON object")
	}
	s, err := structpb.NewStruct(m)
	if err != nil {
		return nil, invalid("chat_template_kwargs", "%v", err)
	}
	return s, nil
}

// run is one Generate call whose first message has arrived.
type run struct {
	stream grpc.ServerStreamingClient[inferencev1.GenerateResponse]
	first  *inferencev1.GenerateResponse
	node   string
	kernel string
	model  string
}

// start calls Generate and waits for the first message, so that errors
// before it become the response's status and its node and kernel the
// headers.
func (h *Handler) start(r *http.Request, req *inferencev1.GenerateRequest) (*run, error) {
	stream, err := h.client.Generate(outgoing(r), req)
	if err == nil {
		var first *inferencev1.GenerateResponse
		first, err = stream.Recv()
		if err == nil {
			return &run{stream: stream, first: first, node: first.GetNode(), kernel: first.GetKernel(), model: first.GetModel().Text()}, nil
		}
	}
	if errors.Is(err, io.EOF) {
		return nil, status.Error(codes.Unavailable, "the inference node ended the stream without an answer")
	}
	if status.Code(err) == codes.NotFound {
		e := notFound(req.GetModel())
		e.Message += " (" + status.Convert(err).Message() + ")"
		return nil, e
	}
	return nil, err
}

// next returns the messages in order (the first one first); io.EOF after
// the last.
func (rn *run) next() (*inferencev1.GenerateResponse, error) {
	if m := rn.first; m != nil {
		rn.first = nil
		return m, nil
	}
	return rn.stream.Recv()
}

func (rn *run) setHeaders(w http.ResponseWriter) {
	if rn.node != "" {
		w.Header().Set("x-bitnet-node", rn.node)
	}
	if rn.kernel != "" {
		w.Header().Set("x-bitnet-kernel", rn.kernel)
	}
}

func (rn *run) meta(last *inferencev1.GenerateResponse) *meta {
	m := &meta{Node: rn.node, Kernel: rn.kernel, Model: rn.model}
	if t := last.GetTimings(); t != nil {
		if b, err := (protojson.MarshalOptions{UseProtoNames: true}).Marshal(t); err == nil {
			m.Timings = b
		}
	}
	return m
}

func finishReason(f inferencev1.FinishReason) string {
	if f == inferencev1.FinishReason_FINISH_REASON_STOP {
		return "stop"
	}
	return "length" // max tokens or the context
}

func usageOf(m *inferencev1.GenerateResponse) usage {
	u := m.GetUsage()
	return usage{PromptTokens: int(u.GetPromptTokens()), CompletionTokens: int(u.GetCompletionTokens()), TotalTokens: int(u.GetTotalTokens())}
}

func byteList(b []byte) []int {
	out := make([]int, len(b))
	for i, c := range b {
		out[i] = int(c)
	}
	return out
}

func lp(v float32) float64 {
	if math.IsInf(float64(v), -1) || math.IsNaN(float64(v)) {
		return -9999
	}
	return float64(v)
}

// chatLogprobsOf converts a message's log probabilities to OpenAI's
// chat shape.
func chatLogprobsOf(lps []*inferencev1.TokenLogprob) []tokenLogprob {
	out := make([]tokenLogprob, 0, len(lps))
	for _, l := range lps {
		t := tokenLogprob{Token: l.GetToken(), Logprob: lp(l.GetLogprob()), Bytes: byteList(l.GetBytes()), TopLogprobs: []topLogprob{}}
		for _, a := range l.GetTopLogprobs() {
			t.TopLogprobs = append(t.TopLogprobs, topLogprob{Token: a.GetToken(), Logprob: lp(a.GetLogprob()), Bytes: byteList(a.GetBytes())})
		}
		out = append(out, t)
	}
	return out
}

// sse writes Server-Sent Events.
type sse struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func startSSE(w http.ResponseWriter) *sse {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	return &sse{w: w, rc: http.NewResponseController(w)}
}

func (s *sse) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := s.w.Write(append(append([]byte("data: "), b...), '\n', '\n')); err != nil {
		return err
	}
	return s.rc.Flush()
}

// includedUsage is the usage of a stream's final chunk when
// stream_options.include_usage asks for it, else nil.
func includedUsage(o *streamOptions, last *inferencev1.GenerateResponse) *usage {
	if o == nil || !o.IncludeUsage {
		return nil
	}
	u := usageOf(last)
	return &u
}

// end closes a stream: the usage chunk when withUsage, then [DONE].
func (s *sse) end(usageChunk any, withUsage bool) {
	if withUsage && s.send(usageChunk) != nil {
		return
	}
	_ = s.done()
}

func (s *sse) done() error {
	if _, err := io.WriteString(s.w, "data: [DONE]\n\n"); err != nil {
		return err
	}
	return s.rc.Flush()
}

// fail ends a stream whose headers are sent with an error event.
func (s *sse) fail(err error) {
	e := fromError(err)
	if e.Status == 499 {
		return
	}
	_ = s.send(e.body())
}

// runeLen counts characters as OpenAI's text_offset does.
func runeLen(s string) int { return utf8.RuneCountInString(s) }
