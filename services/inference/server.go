package inference

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/bitnet-mesh/bitnet-mesh/shared/telemetry"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/chat"
	"github.com/bitnet-mesh/bitnet-mesh/shared/constrained"
	"github.com/bitnet-mesh/bitnet-mesh/shared/hardware"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/memlimit"
	"github.com/bitnet-mesh/bitnet-mesh/shared/metrics"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/sampling"
)

// Option configures a Server.
type Option func(*serverConfig)

type serverConfig struct {
	node, address, version string
	engine                 *kernels.Engine
	kernelCap              kernels.Path
	hw                     *hardware.Report
	log                    *zap.Logger
	mgrOpts                []ManagerOption
	schedOpts              []SchedulerOption
	metrics                *metrics.Registry
	kvType                 model.KVType
}

// WithKVType sets the KV cache element type of the models the node loads
// (default model.KVFloat16, as llama.cpp: half the memory and the attention
// reads of float32, per position of every sequence).
func WithKVType(t model.KVType) Option { return func(c *serverConfig) { c.kvType = t } }

// WithNodeName names the node in responses (default: the host name).
func WithNodeName(name string) Option { return func(c *serverConfig) { c.node = name } }

// WithAddress is the gRPC address NodeInfo reports.
func WithAddress(addr string) Option { return func(c *serverConfig) { c.address = addr } }

// WithVersion is the software version NodeInfo reports.
func WithVersion(v string) Option { return func(c *serverConfig) { c.version = v } }

// WithEngine runs every model on e (the caller keeps ownership and closes
// it); its path is the node's kernel. Without it the server makes an engine
// on the best path up to the kernel cap and closes it in Close.
func WithEngine(e *kernels.Engine) Option { return func(c *serverConfig) { c.engine = e } }

// WithKernelCap caps the node's kernel path (operators, tests): the hardware
// report and the engine use nothing faster than p.
func WithKernelCap(p kernels.Path) Option { return func(c *serverConfig) { c.kernelCap = p } }

// WithHardware sets the hardware report instead of detecting it.
func WithHardware(r hardware.Report) Option { return func(c *serverConfig) { c.hw = &r } }

// WithLogger logs requests and model loads (default: none).
func WithLogger(l *zap.Logger) Option { return func(c *serverConfig) { c.log = l } }

// WithQueueSize bounds each model's request queue (WithQueueCapacity).
func WithQueueSize(n int) Option {
	return func(c *serverConfig) { c.schedOpts = append(c.schedOpts, WithQueueCapacity(n)) }
}

// WithScheduler configures every model's scheduler.
func WithScheduler(o ...SchedulerOption) Option {
	return func(c *serverConfig) { c.schedOpts = append(c.schedOpts, o...) }
}

// WithManager configures the model manager (budget, TTL, model options).
// Without WithMemoryBudget the budget is memlimit's default: 80% of the
// container's memory limit, else half the machine's memory.
func WithManager(o ...ManagerOption) Option {
	return func(c *serverConfig) { c.mgrOpts = append(c.mgrOpts, o...) }
}

// Server implements bitnet.inference.v1.InferenceService for one node.
type Server struct {
	inferencev1.UnimplementedInferenceServiceServer

	mgr       *Manager
	node      string
	address   string
	version   string
	hw        hardware.Report
	kernel    string
	engine    *kernels.Engine
	ownEngine bool
	log       *zap.Logger
	start     time.Time
	cpu       cpuMeter
	metrics   *nodeMetrics
}

// NewServer returns a server whose models come from f. Close it to unload
// them.
func NewServer(f Fetcher, opts ...Option) (*Server, error) {
	c := serverConfig{log: zap.NewNop(), kvType: model.KVFloat16}
	for _, o := range opts {
		o(&c)
	}
	if c.node == "" {
		c.node, _ = os.Hostname()
	}
	var hw hardware.Report
	if c.hw != nil {
		hw = *c.hw
	} else {
		cap := c.kernelCap
		if cap == "" && c.engine != nil {
			cap = c.engine.Path()
		}
		r, err := hardware.Detect(hardware.WithKernelCap(cap))
		if err != nil {
			return nil, fmt.Errorf("inference server: %w", err)
		}
		hw = r
	}
	s := &Server{node: c.node, address: c.address, version: c.version, hw: hw, log: c.log, start: time.Now()}
	s.cpu.utilization() // baseline
	s.engine = c.engine
	if s.engine == nil {
		e, err := kernels.New(kernels.WithPath(hw.BestKernel))
		if err != nil {
			return nil, fmt.Errorf("inference server: kernel engine %s: %w", hw.BestKernel, err)
		}
		s.engine, s.ownEngine = e, true
	}
	s.kernel = string(s.engine.Path())
	mopts := []ManagerOption{WithManagerLogger(c.log)}
	if hw.MemoryBytes > 0 {
		// The container's limit when there is one (memlimit), else half
		// the host's memory.
		lim, err := memlimit.Detect(memlimit.WithHostMemory(hw.MemoryBytes))
		if err != nil {
			c.log.Warn("memory limit unreadable: the budget is half the host's memory", zap.Error(err))
			lim = memlimit.Limit{Bytes: int64(hw.MemoryBytes), Source: memlimit.Host}
		}
		mopts = append(mopts, WithMemoryBudget(lim.Budget()))
	}
	mopts = append(mopts, c.mgrOpts...)
	reads := func(rows, cols int) bool {
		return s.engine.ReadsTritsFor(false, rows, cols) || s.engine.ReadsTritsFor(true, rows, cols)
	}
	mopts = append(mopts, WithModelOptions(model.WithEngine(s.engine), model.WithKVType(c.kvType)), WithSchedulerOptions(c.schedOpts...), withKVType(c.kvType), withTritReads(reads))
	mgr, err := NewManager(f, mopts...)
	if err != nil {
		if s.ownEngine {
			s.engine.Close()
		}
		return nil, fmt.Errorf("inference server: %w", err)
	}
	s.mgr = mgr
	reg := c.metrics
	if reg == nil {
		reg = metrics.NewRegistry()
	}
	if s.metrics, err = newNodeMetrics(reg, s); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// Register adds the service to a gRPC server.
func (s *Server) Register(r grpc.ServiceRegistrar) { inferencev1.RegisterInferenceServiceServer(r, s) }

// Manager returns the server's model manager.
func (s *Server) Manager() *Manager { return s.mgr }

// Node returns the node name; Kernel the kernel path it runs.
func (s *Server) Node() string { return s.node }

// Kernel returns the kernel path the node's models run on.
func (s *Server) Kernel() string { return s.kernel }

// Hardware returns the node's hardware report (for Consul Meta).
func (s *Server) Hardware() hardware.Report { return s.hw }

// Close unloads every model (requests in flight end) and releases the engine
// the server made.
func (s *Server) Close() error {
	err := s.mgr.Close()
	if s.ownEngine {
		s.engine.Close()
	}
	return err
}

// Generate implements InferenceService.
func (s *Server) Generate(req *inferencev1.GenerateRequest, stream grpc.ServerStreamingServer[inferencev1.GenerateResponse]) error {
	ctx := stream.Context()
	if err := s.checkRequire(req.GetRequire()); err != nil {
		return toStatus(err)
	}
	if req.GetModel() == "" {
		return status.Error(codes.InvalidArgument, "model is required")
	}
	h, r, out, err := s.submit(ctx, req)
	if err != nil {
		return toStatus(err)
	}
	abandoned := false
	defer func() {
		if !abandoned {
			h.Release()
		}
	}()
	tok := h.Model.Tokenizer()
	// By version, not alias: one series per loaded version.
	version := (&modelv1.ModelRef{Name: h.Ref.GetName(), Version: h.Ref.GetVersion()}).Text()
	first := true
	echo := ""
	if req.GetEcho() {
		echo = req.GetPrompt()
		if len(req.GetMessages()) > 0 || len(req.GetPromptTokenIds()) > 0 {
			echo = strings.ToValidUTF8(tok.DecodeSkipSpecial(r.Prompt), "\uFFFD")
		}
	}
	for {
		ev, err := out.Recv(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			// The client is gone: the scheduler drops the request at its
			// next step and sends a final event; count it then.
			abandoned = true
			go s.finishAbandoned(h, out)
			return toStatus(err)
		}
		if ev.Err != nil {
			return toStatus(ev.Err)
		}
		s.metrics.token(version, ev)
		msg := &inferencev1.GenerateResponse{Text: ev.Text, TokenIds: toU32(ev.TokenIDs), Logprobs: logprobsProto(tok, ev.Logprobs)}
		if first || ev.Final {
			msg.Node, msg.Kernel, msg.Model = s.node, s.kernel, h.Ref
		}
		if first && echo != "" {
			msg.Text = echo + msg.Text
		}
		first = false
		if ev.Final {
			msg.FinishReason = finishProto(ev.Finish)
			msg.Usage = &modelv1.Usage{PromptTokens: uint32(ev.Usage.PromptTokens), CompletionTokens: uint32(ev.Usage.CompletionTokens),
				TotalTokens: uint32(ev.Usage.PromptTokens + ev.Usage.CompletionTokens)}
			msg.Timings = timingsProto(ev.Timings)
			s.metrics.finished(version, ev)
			phaseSpans(ctx, version, time.Now(), ev)
		}
		if err := stream.Send(msg); err != nil {
			if !ev.Final { // the client is gone (see above)
				abandoned = true
				go s.finishAbandoned(h, out)
			}
			return err
		}
		if ev.Final {
			s.log.Debug("generated", zap.String("model", h.Ref.Text()), zap.Stringer("finish", ev.Finish),
				zap.Int("prompt_tokens", ev.Usage.PromptTokens), zap.Int("completion_tokens", ev.Usage.CompletionTokens),
				zap.Duration("first_token", ev.Timings.FirstToken), zap.Duration("total", ev.Timings.Total))
			return nil
		}
	}
}

// abandonWait bounds how long finishAbandoned waits for the final event of
// a request whose client left (the scheduler sends it at its next step).
const abandonWait = time.Minute

// finishAbandoned waits for the final event of a request whose client left,
// records it in the metrics (finish reason cancelled, the tokens it did
// generate) and releases the model, which stays in use until then.
func (s *Server) finishAbandoned(h *Handle, out *Stream) {
	defer h.Release()
	ctx, cancel := context.WithTimeout(context.Background(), abandonWait)
	defer cancel()
	version := (&modelv1.ModelRef{Name: h.Ref.GetName(), Version: h.Ref.GetVersion()}).Text()
	for {
		ev, err := out.Recv(ctx)
		if err != nil {
			return
		}
		s.metrics.token(version, ev)
		if ev.Final {
			s.metrics.finished(version, ev)
			return
		}
	}
}

// submit acquires the model and queues the request. A model unloaded between
// the two (its scheduler draining) is acquired again, once.
func (s *Server) submit(ctx context.Context, req *inferencev1.GenerateRequest) (*Handle, Request, *Stream, error) {
	for attempt := 0; ; attempt++ {
		h, err := s.mgr.Acquire(ctx, req.GetModel())
		if err != nil {
			return nil, Request{}, nil, err
		}
		r, err := buildRequest(req, h)
		if err != nil {
			h.Release()
			return nil, Request{}, nil, err
		}
		out, err := h.Scheduler.Submit(ctx, r)
		if err == nil {
			return h, r, out, nil
		}
		h.Release()
		if !errors.Is(err, ErrClosed) || attempt > 0 {
			return nil, Request{}, nil, err
		}
	}
}

// buildRequest turns a GenerateRequest into a scheduler Request: the prompt
// after BOS (as `bitnet generate` does), the token IDs as given, or the chat
// through the model's template.
func buildRequest(req *inferencev1.GenerateRequest, h *Handle) (Request, error) {
	var r Request
	tok := h.Model.Tokenizer()
	ids, isChat, err := promptIDs(req.GetPrompt(), req.GetMessages(), req.GetPromptTokenIds(), req.GetChatTemplateArgs(), true, h)
	if err != nil {
		return r, err
	}
	r.Prompt = ids
	if isChat {
		tmpl := h.Template
		if tmpl == nil {
			tmpl = chat.Default()
		}
		r.EndTokens = tmpl.EndTokens(tok)
	}
	r.MaxTokens = int(req.GetMaxTokens())
	for _, st := range req.GetStop() {
		if st != "" {
			r.Stop = append(r.Stop, st)
		}
	}
	temp := 0.8
	if req.Temperature != nil {
		temp = float64(req.GetTemperature())
	}
	r.Sampling = append(r.Sampling, sampling.WithTemperature(temp), sampling.WithTopK(int(req.GetTopK())),
		sampling.WithMinP(float64(req.GetMinP())))
	if req.TopP != nil {
		r.Sampling = append(r.Sampling, sampling.WithTopP(float64(req.GetTopP())))
	}
	if req.RepetitionPenalty != nil {
		r.Sampling = append(r.Sampling, sampling.WithRepetitionPenalty(float64(req.GetRepetitionPenalty()), repetitionWindow))
	}
	if req.PresencePenalty != nil || req.FrequencyPenalty != nil {
		r.Sampling = append(r.Sampling, sampling.WithPenalties(float64(req.GetPresencePenalty()), float64(req.GetFrequencyPenalty())))
	}
	if req.Seed != nil {
		r.Sampling = append(r.Sampling, sampling.WithSeed(req.GetSeed()))
	}
	if req.GetTopLogprobs() > 0 && !req.GetLogprobs() {
		return r, invalidf("top_logprobs needs logprobs")
	}
	r.Logprobs, r.TopLogprobs = req.GetLogprobs(), int(req.GetTopLogprobs())
	if r.Grammar, err = grammarOf(req.GetResponseFormat()); err != nil {
		return r, err
	}
	return r, nil
}

// grammarOf compiles a response format (nil for free text).
func grammarOf(f *inferencev1.ResponseFormat) (*constrained.Grammar, error) {
	switch f.GetType() {
	case inferencev1.ResponseFormatType_RESPONSE_FORMAT_TYPE_UNSPECIFIED:
		if f.GetJsonSchema() != "" {
			return nil, invalidf("response_format: json_schema given without type JSON_SCHEMA")
		}
		return nil, nil
	case inferencev1.ResponseFormatType_RESPONSE_FORMAT_TYPE_JSON_OBJECT:
		return constrained.JSONObject(), nil
	case inferencev1.ResponseFormatType_RESPONSE_FORMAT_TYPE_JSON_SCHEMA:
		if f.GetJsonSchema() == "" {
			return nil, invalidf("response_format: type JSON_SCHEMA needs json_schema")
		}
		g, err := constrained.CompileSchema([]byte(f.GetJsonSchema()))
		if err != nil {
			return nil, fmt.Errorf("response_format: %w: %w", err, ErrInvalid)
		}
		return g, nil
	}
	return nil, invalidf("response_format: unknown type %d", f.GetType())
}

// promptIDs encodes exactly one of prompt, msgs and ids. A prompt gets BOS
// when bos is set and the model has one; a chat starts with BOS by its
// template; token IDs are taken as they are.
func promptIDs(prompt string, msgs []*inferencev1.ChatMessage, ids []uint32, args *structpb.Struct, bos bool, h *Handle) ([]int, bool, error) {
	given := 0
	for _, b := range []bool{prompt != "", len(msgs) > 0, len(ids) > 0} {
		if b {
			given++
		}
	}
	if given != 1 {
		return nil, false, invalidf("give exactly one of prompt, messages and prompt_token_ids (got prompt of %d bytes, %d messages, %d token IDs)", len(prompt), len(msgs), len(ids))
	}
	tok := h.Model.Tokenizer()
	c := h.Model.Config()
	switch {
	case len(ids) > 0:
		out := make([]int, len(ids))
		for i, id := range ids {
			if int64(id) >= int64(c.VocabSize) {
				return nil, false, invalidf("prompt token %d: id %d out of range [0,%d)", i, id, c.VocabSize)
			}
			out[i] = int(id)
		}
		return out, false, nil
	case len(msgs) > 0:
		if h.TemplateErr != nil {
			return nil, false, fmt.Errorf("the model's chat template: %w: %w", h.TemplateErr, ErrInvalid)
		}
		cm := make([]chat.Message, len(msgs))
		for i, m := range msgs {
			role, err := roleName(m.GetRole())
			if err != nil {
				return nil, false, fmt.Errorf("message %d: %w", i, err)
			}
			cm[i] = chat.Message{Role: role, Content: m.GetContent()}
		}
		tmpl := h.Template
		if tmpl == nil {
			tmpl = chat.Default()
		}
		text, err := tmpl.Apply(cm, chat.Options{AddGenerationPrompt: true, Vars: templateArgs(args)})
		if err != nil {
			return nil, false, fmt.Errorf("%w: %w", err, ErrInvalid)
		}
		return tok.Encode(text), true, nil
	}
	var out []int
	if bos {
		if id := c.BOSTokenID; id >= 0 {
			out = append(out, id)
		} else if id, ok := tok.BOS(); ok {
			out = append(out, id)
		}
	}
	return append(out, tok.EncodeOrdinary(prompt)...), false, nil
}

// templateArgs converts chat_template_args for the template: numbers
// without a fraction become integers, as JSON numbers do in Python.
func templateArgs(s *structpb.Struct) map[string]any {
	if s == nil {
		return nil
	}
	m := s.AsMap()
	var fix func(v any) any
	fix = func(v any) any {
		switch v := v.(type) {
		case float64:
			if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
				return int64(v)
			}
		case map[string]any:
			for k, x := range v {
				v[k] = fix(x)
			}
		case []any:
			for i, x := range v {
				v[i] = fix(x)
			}
		}
		return v
	}
	for k, v := range m {
		m[k] = fix(v)
	}
	return m
}

func roleName(r inferencev1.Role) (string, error) {
	switch r {
	case inferencev1.Role_ROLE_UNSPECIFIED, inferencev1.Role_ROLE_USER:
		return chat.RoleUser, nil
	case inferencev1.Role_ROLE_SYSTEM:
		return chat.RoleSystem, nil
	case inferencev1.Role_ROLE_ASSISTANT:
		return chat.RoleAssistant, nil
	}
	return "", invalidf("unknown role %d", r)
}

// checkRequire fails with ErrUnmet naming the first constraint this node
// does not meet.
func (s *Server) checkRequire(req []string) error {
	for _, r := range req {
		ok, err := s.hw.Has(r)
		if err != nil {
			return fmt.Errorf("require %q: %w: %w", r, err, ErrInvalid)
		}
		if !ok {
			return fmt.Errorf("node %s (kernel %s) does not offer %q: %w", s.node, s.kernel, r, ErrUnmet)
		}
	}
	return nil
}

// Tokenize implements InferenceService.
func (s *Server) Tokenize(ctx context.Context, req *inferencev1.TokenizeRequest) (*inferencev1.TokenizeResponse, error) {
	if req.GetModel() == "" {
		return nil, status.Error(codes.InvalidArgument, "model is required")
	}
	h, err := s.mgr.Acquire(ctx, req.GetModel())
	if err != nil {
		return nil, toStatus(err)
	}
	defer h.Release()
	tok := h.Model.Tokenizer()
	ids, _, err := promptIDs(req.GetText(), req.GetMessages(), nil, nil, req.GetAddSpecialTokens(), h)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &inferencev1.TokenizeResponse{TokenIds: toU32(ids), Tokens: make([]string, len(ids)), Model: h.Ref}
	added := map[string]bool{}
	for _, a := range tok.AddedTokens() {
		added[a.Content] = true
	}
	for i, id := range ids {
		t, _ := tok.Token(id)
		if !added[t] {
			t = byteLevel(t)
		}
		resp.Tokens[i] = strings.ToValidUTF8(t, "\uFFFD")
	}
	return resp, nil
}

// Detokenize implements InferenceService.
func (s *Server) Detokenize(ctx context.Context, req *inferencev1.DetokenizeRequest) (*inferencev1.DetokenizeResponse, error) {
	if req.GetModel() == "" {
		return nil, status.Error(codes.InvalidArgument, "model is required")
	}
	h, err := s.mgr.Acquire(ctx, req.GetModel())
	if err != nil {
		return nil, toStatus(err)
	}
	defer h.Release()
	vocab := h.Model.Config().VocabSize
	ids := make([]int, len(req.GetTokenIds()))
	for i, id := range req.GetTokenIds() {
		if int64(id) >= int64(vocab) {
			return nil, toStatus(invalidf("token %d: id %d out of range [0,%d)", i, id, vocab))
		}
		ids[i] = int(id)
	}
	tok := h.Model.Tokenizer()
	text := tok.Decode(ids)
	if req.GetSkipSpecialTokens() {
		text = tok.DecodeSkipSpecial(ids)
	}
	return &inferencev1.DetokenizeResponse{Text: strings.ToValidUTF8(text, "\uFFFD")}, nil
}

// ListNodes implements InferenceService: the router's job.
func (s *Server) ListNodes(context.Context, *inferencev1.ListNodesRequest) (*inferencev1.ListNodesResponse, error) {
	return nil, status.Error(codes.Unimplemented, "ListNodes is served by the router; ask this node with NodeInfo")
}

// phaseSpans records a finished generation's phases as child spans of the
// request's span, from its timings: node.queue (waiting for a batch slot),
// node.prefill (the prompt) and node.decode (first token to last).
func phaseSpans(ctx context.Context, model string, end time.Time, ev Event) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return
	}
	t := ev.Timings
	submitted := end.Add(-t.Total)
	admitted := submitted.Add(t.Queue)
	attrs := trace.WithAttributes(attribute.String("bitnet.model", model))
	span := func(name string, from, to time.Time, kv ...attribute.KeyValue) {
		_, sp := telemetry.Start(ctx, "github.com/bitnet-mesh/bitnet-mesh/services/inference", name, attrs,
			trace.WithTimestamp(from), trace.WithAttributes(kv...))
		sp.End(trace.WithTimestamp(to))
	}
	span("node.queue", submitted, admitted)
	if t.Prompt > 0 {
		span("node.prefill", admitted, admitted.Add(t.Prompt), attribute.Int("bitnet.prompt_tokens", ev.Usage.PromptTokens))
	}
	if t.FirstToken > 0 {
		first := submitted.Add(t.FirstToken)
		span("node.decode", first, end, attribute.Int("bitnet.completion_tokens", ev.Usage.CompletionTokens),
			attribute.String("bitnet.finish_reason", ev.Finish.String()))
	}
}
