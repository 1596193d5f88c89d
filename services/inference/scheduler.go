package inference

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/constrained"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/sampling"
	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
)

// Model is what a Scheduler needs of a model; *model.Model implements it.
type Model interface {
	Forward(ctx context.Context, steps []model.Step) error
	NewSequence() *model.Sequence
	Config() model.Config
	IsEOS(id int) bool
}

// DefaultMaxTokens is the generation limit of a Request without MaxTokens.
const DefaultMaxTokens = 256

// repetitionWindow is how many recent tokens the repetition penalty looks at
// (the API's documented 64).
const repetitionWindow = 64

// Request is one generation job for a Scheduler.
type Request struct {
	// Prompt is the token ids to complete (BOS included when wanted):
	// 1 to max_position_embeddings-1 ids in [0, vocab_size).
	Prompt []int
	// MaxTokens limits the generated tokens; 0 means DefaultMaxTokens.
	MaxTokens int
	// Sampling configures the request's own sampler (greedy when empty);
	// give sampling.WithSeed for reproducible draws.
	Sampling []sampling.Option
	// Stop strings end generation before their first occurrence.
	Stop []string
	// EndTokens end generation like the model's EOS (e.g. <|eot_id|> for chats).
	EndTokens []int
	// Logprobs asks for the log probability of every generated token, and
	// TopLogprobs (0 to sampling.MaxTopLogprobs) for the most likely
	// alternatives at each position too.
	Logprobs    bool
	TopLogprobs int
	// Grammar constrains the output (structured output): before each
	// step, the tokens that would break the document are masked, end
	// tokens are allowed only once it is complete, and generation stops
	// when nothing may follow. Stop strings cannot be combined with it.
	Grammar *constrained.Grammar
	// Embed makes the request an embedding: the prompt (1 to
	// max_position_embeddings ids) is prefilled in chunks like any other
	// and its final hidden states pooled (model.Step.Pool); the one final
	// Event carries Embedding, nothing is generated.
	Embed bool
}

// SchedulerOption configures a Scheduler.
type SchedulerOption func(*schedConfig)

type schedConfig struct {
	queueSize, maxBatch, maxBatchTokens, prefillChunk int
}

// WithQueueCapacity bounds the requests waiting for a batch slot (default 64);
// Submit fails with a *QueueFullError beyond it.
func WithQueueCapacity(n int) SchedulerOption { return func(c *schedConfig) { c.queueSize = n } }

// WithMaxBatch bounds the sequences generated together (default 16).
func WithMaxBatch(n int) SchedulerOption { return func(c *schedConfig) { c.maxBatch = n } }

// WithMaxBatchTokens bounds the tokens of one Forward call (default 256):
// decode tokens always go in, prompts fill the rest in chunks.
func WithMaxBatchTokens(n int) SchedulerOption {
	return func(c *schedConfig) { c.maxBatchTokens = n }
}

// WithPrefillChunk bounds the prompt tokens one request feeds per iteration
// (default 64), so that a long prompt does not stall the decodes of others.
func WithPrefillChunk(n int) SchedulerOption { return func(c *schedConfig) { c.prefillChunk = n } }

// Scheduler runs one model for many concurrent requests with continuous
// batching. Its owner goroutine starts in NewScheduler and stops in Close (or
// Drain); requests join and leave between steps.
type Scheduler struct {
	m    Model
	tok  *tokenizer.Tokenizer
	cfg  schedConfig
	mcfg model.Config

	ctx    context.Context // the loop's; cancelled by Close
	cancel context.CancelFunc
	done   chan struct{} // closed when the loop has exited
	wake   chan struct{} // Submit -> loop

	mu       sync.Mutex
	pending  []*job
	draining bool
	closed   bool

	// Owned by the loop goroutine.
	active []*job
	free   []*model.Sequence
	steps  []model.Step
	batch  []*job

	counters
	rate rateWindow

	vocabOnce sync.Once
	vocab     *constrained.Vocab
	eosIDs    []int // the model's end-of-sequence tokens
}

// counters are read by Stats from any goroutine.
type counters struct {
	queueDepth, activeSeqs, batchSize atomic.Int64
	forwards, batchedForwards         atomic.Uint64
	maxBatchSeen                      atomic.Int64
	batchSum                          atomic.Uint64                            // sequences over every Forward call
	kvTokens                          atomic.Int64                             // positions cached over the batch's sequences
	batchHist                         [len(BatchSizeBuckets) + 1]atomic.Uint64 // Forward calls by size bucket (last: above)
	promptTokens, generatedTokens     atomic.Uint64
	submitted, completed, cancelled   atomic.Uint64
	rejected, failed                  atomic.Uint64
	reqNanosEWMA                      atomic.Int64 // admitted -> finished, smoothed
}

// Scheduler defaults (docs/deploy.md sizes the KV cache from
// DefaultMaxBatch).
const (
	DefaultMaxBatch     = 16
	DefaultQueueSize    = 64
	DefaultPrefillChunk = 64
	defaultBatchTokens  = 256
)

// newSchedConfig applies opts to the defaults.
func newSchedConfig(opts []SchedulerOption) schedConfig {
	c := schedConfig{queueSize: DefaultQueueSize, maxBatch: DefaultMaxBatch, maxBatchTokens: defaultBatchTokens, prefillChunk: DefaultPrefillChunk}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// NewScheduler starts a scheduler for m, decoding text with tok.
func NewScheduler(m Model, tok *tokenizer.Tokenizer, opts ...SchedulerOption) (*Scheduler, error) {
	if m == nil || tok == nil {
		return nil, fmt.Errorf("scheduler: model and tokenizer are required: %w", ErrInvalid)
	}
	c := newSchedConfig(opts)
	switch {
	case c.queueSize < 0:
		return nil, invalidf("scheduler: queue size %d, want >= 0", c.queueSize)
	case c.maxBatch < 1:
		return nil, invalidf("scheduler: max batch %d, want >= 1", c.maxBatch)
	case c.maxBatchTokens < c.maxBatch:
		return nil, invalidf("scheduler: max batch tokens %d, want >= max batch %d", c.maxBatchTokens, c.maxBatch)
	case c.prefillChunk < 1:
		return nil, invalidf("scheduler: prefill chunk %d, want >= 1", c.prefillChunk)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Scheduler{
		m: m, tok: tok, cfg: c, mcfg: m.Config(),
		ctx: ctx, cancel: cancel,
		done: make(chan struct{}), wake: make(chan struct{}, 1),
	}
	go s.run()
	return s, nil
}

// job is a request in the scheduler.
type job struct {
	ctx       context.Context
	req       Request
	max       int
	out       *Stream
	sampler   *sampling.Sampler
	matcher   *constrained.Matcher // nil without a grammar
	allowed   []uint64             // the matcher's mask
	forced    bool                 // the token budget restricted the grammar: the output was shortened
	top       []sampling.TokenLogprob
	stop      *sampling.StopMatcher
	dec       *tokenizer.StreamDecoder
	seq       *model.Sequence
	fed       int   // prompt tokens in the cache
	next      []int // the token to feed in the next decode step
	history   []int // prompt + generated, for the repetition penalty
	logits    []float32
	hidden    []float32 // Step.Hidden of an embedding job
	pooled    []float32 // an embedding job's pooled states so far
	generated int
	chunk     int // tokens this job feeds in the current step

	submitted, admitted, prompted, first time.Time
	// last is when the latest generated token (end token excluded) was
	// sampled: the start of the next token's gap (Event.TokenGap).
	last time.Time
}

// Submit queues req; its events arrive on the returned Stream. ctx is the
// request's: when it ends, the request leaves at the next step boundary.
func (s *Scheduler) Submit(ctx context.Context, req Request) (*Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	j, err := s.newJob(ctx, req)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	switch {
	case s.closed || s.draining:
		s.mu.Unlock()
		return nil, fmt.Errorf("scheduler: %w", ErrClosed)
	case len(s.pending) >= s.cfg.queueSize && len(s.pending)+int(s.activeSeqs.Load()) >= s.cfg.maxBatch:
		n := len(s.pending)
		s.mu.Unlock()
		s.rejected.Add(1)
		return nil, &QueueFullError{Waiting: n, Capacity: s.cfg.queueSize, RetryAfter: s.retryAfter(n)}
	}
	s.pending = append(s.pending, j)
	s.queueDepth.Store(int64(len(s.pending)))
	s.mu.Unlock()
	s.submitted.Add(1)
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return j.out, nil
}

// newJob validates req and prepares its per-request state.
func (s *Scheduler) newJob(ctx context.Context, req Request) (*job, error) {
	n := len(req.Prompt)
	if n == 0 {
		return nil, invalidf("empty prompt")
	}
	switch {
	case req.Embed && !s.mcfg.IsEmbedding():
		return nil, fmt.Errorf("%s is not an embedding model (it has no pooling): %w", s.mcfg.Architecture, ErrUnsupported)
	case !req.Embed && s.mcfg.IsEmbedding():
		return nil, fmt.Errorf("%s is an embedding model: it has no output head to generate with (use Embed): %w", s.mcfg.Family(), ErrUnsupported)
	case req.Embed && n > s.mcfg.MaxPositions:
		return nil, invalidf("input of %d tokens, the context holds %d (max_position_embeddings)", n, s.mcfg.MaxPositions)
	case !req.Embed && n >= s.mcfg.MaxPositions:
		return nil, invalidf("prompt of %d tokens, the context holds %d (max_position_embeddings)", n, s.mcfg.MaxPositions)
	}
	for i, id := range req.Prompt {
		if id < 0 || id >= s.mcfg.VocabSize {
			return nil, invalidf("prompt token %d: id %d out of range [0,%d)", i, id, s.mcfg.VocabSize)
		}
	}
	if req.MaxTokens < 0 {
		return nil, invalidf("max tokens %d, want >= 0", req.MaxTokens)
	}
	sm, err := sampling.New(req.Sampling...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, ErrInvalid) // err says "sampling: ..."
	}
	if req.TopLogprobs < 0 || req.TopLogprobs > sampling.MaxTopLogprobs {
		return nil, invalidf("top_logprobs %d, want 0 to %d", req.TopLogprobs, sampling.MaxTopLogprobs)
	}
	if req.Grammar != nil && len(req.Stop) > 0 {
		return nil, invalidf("stop strings cannot be combined with a response format: a stop string could cut the document")
	}
	j := &job{
		ctx: ctx, req: req, max: req.MaxTokens, out: newStream(), sampler: sm,
		stop: sampling.NewStopMatcher(req.Stop...), dec: s.tok.NewDecoder(tokenizer.SkipSpecial()),
		history: append(make([]int, 0, n+16), req.Prompt...), next: make([]int, 1),
		submitted: time.Now(),
	}
	if j.max == 0 {
		j.max = DefaultMaxTokens
	}
	if req.Grammar != nil {
		v := s.Vocab()
		j.matcher = req.Grammar.NewMatcher(v)
		j.allowed = make([]uint64, v.MaskWords())
	}
	return j, nil
}

// Vocab returns the model's vocabulary for constrained decoding, built on
// first use (in the caller's goroutine: it takes a moment for a large
// vocabulary) and shared by every request.
func (s *Scheduler) Vocab() *constrained.Vocab {
	s.vocabOnce.Do(func() {
		s.vocab = constrained.VocabOf(s.tok, s.mcfg.VocabSize)
		for id := range s.mcfg.VocabSize {
			if s.m.IsEOS(id) {
				s.eosIDs = append(s.eosIDs, id)
			}
		}
	})
	return s.vocab
}

// retryAfter estimates when a queue slot frees: the requests ahead over the
// batch width times the mean request time.
func (s *Scheduler) retryAfter(waiting int) time.Duration {
	per := time.Duration(s.reqNanosEWMA.Load())
	if per <= 0 {
		per = time.Second
	}
	d := per * time.Duration(waiting+1) / time.Duration(s.cfg.maxBatch)
	return min(max(d, 100*time.Millisecond), 30*time.Second)
}

// Drain stops accepting requests, lets those queued and in flight finish, then
// stops the loop. When ctx ends first the rest are cancelled (Close).
func (s *Scheduler) Drain(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.Close()
		return ctx.Err()
	}
}

// Close stops the loop at the next step boundary; requests still queued or
// in flight end with ErrClosed. It does not close the model.
func (s *Scheduler) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	<-s.done
	return nil
}

// run is the engine loop, the only goroutine that touches active jobs and
// calls Forward.
func (s *Scheduler) run() {
	defer close(s.done)
	for {
		s.mu.Lock()
		if s.ctx.Err() != nil {
			pending := s.pending
			s.pending = nil
			s.queueDepth.Store(0)
			s.mu.Unlock()
			for _, j := range append(pending, s.active...) {
				s.finish(j, FinishError, fmt.Errorf("scheduler: %w", ErrClosed))
			}
			s.active = nil
			s.activeSeqs.Store(0)
			return
		}
		s.admitLocked()
		idle := len(s.active) == 0
		if idle && s.draining && len(s.pending) == 0 {
			s.closed = true
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		if idle {
			select {
			case <-s.wake:
			case <-s.ctx.Done():
			}
			continue
		}
		s.step()
	}
}

// admitLocked drops cancelled requests from the queue and moves waiting ones
// into the batch while there is room. s.mu is held.
func (s *Scheduler) admitLocked() {
	keep := s.pending[:0]
	for _, j := range s.pending {
		if err := j.ctx.Err(); err != nil {
			s.finish(j, FinishCancelled, err)
			continue
		}
		if len(s.active) < s.cfg.maxBatch {
			j.admitted = time.Now()
			j.seq = s.sequence()
			s.active = append(s.active, j)
			continue
		}
		keep = append(keep, j)
	}
	clear(s.pending[len(keep):])
	s.pending = keep
	s.queueDepth.Store(int64(len(keep)))
	s.activeSeqs.Store(int64(len(s.active)))
}

// sequence returns an empty sequence, reusing a freed one's cache memory.
func (s *Scheduler) sequence() *model.Sequence {
	if n := len(s.free); n > 0 {
		q := s.free[n-1]
		s.free = s.free[:n-1]
		return q
	}
	return s.m.NewSequence()
}

// release returns a finished job's sequence to the free list at once.
func (s *Scheduler) release(j *job) {
	if j.seq == nil {
		return
	}
	j.seq.Reset()
	if len(s.free) < s.cfg.maxBatch {
		s.free = append(s.free, j.seq)
	}
	j.seq = nil
}

// step runs one iteration: drops cancelled requests, builds one Forward call
// from every decode token and prompt chunks within the token budget, then
// samples and streams a token for every request whose logits are final.
func (s *Scheduler) step() {
	live := s.active[:0]
	for _, j := range s.active {
		if err := j.ctx.Err(); err != nil {
			s.finish(j, FinishCancelled, err)
			continue
		}
		live = append(live, j)
	}
	clear(s.active[len(live):])
	s.active = live
	s.activeSeqs.Store(int64(len(live)))
	if len(live) == 0 {
		return
	}

	steps, batch := s.steps[:0], s.batch[:0]
	budget := s.cfg.maxBatchTokens
	for _, j := range live { // decodes first: one token each
		if j.fed == len(j.req.Prompt) {
			j.chunk = 1
			steps = append(steps, model.Step{Seq: j.seq, Tokens: j.next, Logits: j.logits})
			batch = append(batch, j)
			budget--
		}
	}
	for _, j := range live { // then prompt chunks, oldest first
		if j.fed == len(j.req.Prompt) || (budget <= 0 && len(steps) > 0) {
			continue
		}
		n := min(len(j.req.Prompt)-j.fed, s.cfg.prefillChunk, max(budget, 1))
		j.chunk = n
		steps = append(steps, model.Step{Seq: j.seq, Tokens: j.req.Prompt[j.fed : j.fed+n], Logits: j.logits,
			Pool: j.req.Embed, Hidden: j.hidden})
		batch = append(batch, j)
		budget -= n
	}
	s.steps, s.batch = steps, batch
	s.batchSize.Store(int64(len(steps)))

	err := s.m.Forward(s.ctx, steps)
	if err != nil {
		if s.ctx.Err() != nil {
			return // closing: run fails everything
		}
		for _, j := range batch {
			s.finish(j, FinishError, fmt.Errorf("forward of %d sequences: %w", len(batch), err))
		}
		s.dropFinished()
		return
	}
	s.forwards.Add(1)
	if len(steps) > 1 {
		s.batchedForwards.Add(1)
	}
	if n := int64(len(steps)); n > s.maxBatchSeen.Load() {
		s.maxBatchSeen.Store(n)
	}
	s.batchHist[batchBucket(len(steps))].Add(1)
	s.batchSum.Add(uint64(len(steps)))
	kv := 0
	for _, j := range live {
		if j.seq != nil {
			kv += j.seq.Len()
		}
	}
	s.kvTokens.Store(int64(kv))
	now := time.Now()
	generated := 0
	for i, j := range batch {
		j.logits, j.hidden = steps[i].Logits, steps[i].Hidden
		steps[i] = model.Step{}
		if err := j.ctx.Err(); err != nil { // ended during the step: send nothing more
			s.finish(j, FinishCancelled, err)
			continue
		}
		if j.fed < len(j.req.Prompt) {
			j.fed += j.chunk
			s.promptTokens.Add(uint64(j.chunk))
			if j.req.Embed {
				s.pool(j)
			}
			if j.fed < len(j.req.Prompt) {
				continue
			}
			j.prompted = now
		}
		if j.req.Embed {
			model.FinishEmbedding(s.mcfg, j.pooled, len(j.req.Prompt))
			s.finishWith(j, Event{Embedding: j.pooled}, FinishStop, nil)
			continue
		}
		s.advance(j, now)
		generated++
	}
	s.generatedTokens.Add(uint64(generated))
	s.rate.add(now, generated)
	s.dropFinished()
}

// pool adds the pooled states of j's latest chunk to j.pooled (last-token
// pooling keeps only the latest).
func (s *Scheduler) pool(j *job) {
	if j.pooled == nil {
		j.pooled = make([]float32, len(j.hidden))
	}
	if s.mcfg.Pooling != model.PoolMean {
		clear(j.pooled)
	}
	for i, v := range j.hidden {
		j.pooled[i] += v
	}
}

// dropFinished removes jobs whose stream ended from the batch.
func (s *Scheduler) dropFinished() {
	live := s.active[:0]
	for _, j := range s.active {
		if j.seq != nil {
			live = append(live, j)
		}
	}
	clear(s.active[len(live):])
	s.active = live
	s.activeSeqs.Store(int64(len(live)))
}

// advance samples j's next token from its logits and streams it. The
// logits are j's own: penalties and the grammar's mask apply in place.
func (s *Scheduler) advance(j *job, now time.Time) {
	x := j.logits
	j.sampler.Penalize(x, j.history)
	if j.matcher != nil {
		budget := min(j.max-j.generated, s.mcfg.MaxPositions-j.seq.Len())
		if j.matcher.Mask(j.allowed, budget) {
			j.forced = true
		}
		if j.matcher.CanEnd() {
			for _, id := range s.eosIDs {
				constrained.Allow(j.allowed, id)
			}
			for _, id := range j.req.EndTokens {
				constrained.Allow(j.allowed, id)
			}
		}
		constrained.ApplyMask(x, j.allowed)
	}
	var logZ float64
	if j.req.Logprobs {
		logZ, j.top = sampling.Logprobs(x, j.req.TopLogprobs, j.top[:0])
	}
	id, err := j.sampler.Pick(x)
	if err != nil {
		s.finish(j, FinishError, fmt.Errorf("sample: %w", err))
		return
	}
	if j.first.IsZero() {
		j.first = now
		s.rate.firstToken(now, now.Sub(j.submitted))
	}
	if s.m.IsEOS(id) || contains(j.req.EndTokens, id) {
		s.finish(j, FinishEOS, nil)
		return
	}
	var gap time.Duration
	if !j.last.IsZero() {
		gap = now.Sub(j.last)
	}
	j.last = now
	j.generated++
	j.sampler.Accept(id)
	j.history = append(j.history, id)
	if len(j.history) > 4*repetitionWindow { // keep the window the penalty reads, bounded
		j.history = append(j.history[:0], j.history[len(j.history)-repetitionWindow:]...)
	}
	text, hit := j.stop.Push(j.dec.Add(id))
	ev := Event{Text: text, TokenIDs: []int{id}, TokenGap: gap}
	if j.req.Logprobs {
		ev.Logprobs = []TokenLogprob{{ID: id, Logprob: sampling.Logprob(x, id, logZ), Top: append([]sampling.TokenLogprob(nil), j.top...)}}
	}
	if j.matcher != nil {
		if err := j.matcher.Accept(id); err != nil {
			s.finishWith(j, ev, FinishError, fmt.Errorf("structured output: %w", err))
			return
		}
		if j.matcher.Done() {
			s.finishWith(j, ev, FinishStop, nil)
			return
		}
	}
	switch {
	case hit:
		s.finishWith(j, ev, FinishStop, nil)
	case j.generated >= j.max:
		s.finishWith(j, ev, FinishLength, nil)
	case j.seq.Len() >= s.mcfg.MaxPositions:
		s.finishWith(j, ev, FinishContext, nil)
	default:
		j.next[0] = id
		j.out.send(ev)
	}
}

func contains(ids []int, id int) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// finish ends j with an empty final event.
func (s *Scheduler) finish(j *job, reason FinishReason, err error) {
	s.finishWith(j, Event{}, reason, err)
}

// finishWith sends ev as j's final event and frees j's sequence. Held-back
// text is flushed unless a stop string or an error ended the request.
func (s *Scheduler) finishWith(j *job, ev Event, reason FinishReason, err error) {
	now := time.Now()
	if reason != FinishStop && err == nil {
		t, _ := j.stop.Push(j.dec.Flush())
		ev.Text += t + j.stop.Flush()
	}
	if j.forced && (reason == FinishStop || reason == FinishEOS) {
		reason = FinishLength // the budget closed the document early
	}
	ev.Final, ev.Finish, ev.Err = true, reason, err
	ev.Usage = Usage{PromptTokens: len(j.req.Prompt), CompletionTokens: j.generated}
	ev.Timings = j.timings(now)
	if !j.admitted.IsZero() {
		s.updateEWMA(now.Sub(j.admitted))
	}
	switch {
	case reason == FinishCancelled:
		s.cancelled.Add(1)
	case err != nil:
		s.failed.Add(1)
	default:
		s.completed.Add(1)
	}
	// Retire j before its client sees the final event, so that the load a
	// node reports right after (to the router, in NodeInfo and metrics)
	// no longer counts it; dropFinished later stores the same count.
	if j.seq != nil {
		s.activeSeqs.Add(-1)
	}
	s.release(j)
	j.out.send(ev)
}

func (s *Scheduler) updateEWMA(d time.Duration) {
	old := s.reqNanosEWMA.Load()
	if old == 0 {
		s.reqNanosEWMA.Store(int64(d))
		return
	}
	s.reqNanosEWMA.Store(old + (int64(d)-old)/8)
}

// timings computes a job's timings at its end.
func (j *job) timings(end time.Time) Timings {
	t := Timings{Total: end.Sub(j.submitted)}
	if j.admitted.IsZero() {
		t.Queue = t.Total
		return t
	}
	t.Queue = j.admitted.Sub(j.submitted)
	if !j.prompted.IsZero() {
		t.Prompt = j.prompted.Sub(j.admitted)
		if t.Prompt > 0 {
			t.PromptTokensPerSecond = float64(len(j.req.Prompt)) / t.Prompt.Seconds()
		}
	}
	if !j.first.IsZero() {
		t.FirstToken = j.first.Sub(j.submitted)
		t.Generation = end.Sub(j.first)
		if j.generated > 1 && t.Generation > 0 {
			t.TokensPerSecond = float64(j.generated-1) / t.Generation.Seconds()
		}
	}
	return t
}

// Stats is a snapshot of a scheduler's load and counters.
type Stats struct {
	QueueDepth    int // requests waiting
	QueueCapacity int
	Active        int // sequences in the batch
	MaxBatch      int
	BatchSize     int // steps in the latest Forward call
	// Forwards counts Forward calls; BatchedForwards those with more than one
	// sequence (continuous batching at work); MaxBatchSeen the largest.
	Forwards, BatchedForwards uint64
	MaxBatchSeen              int
	PromptTokens              uint64
	GeneratedTokens           uint64
	Submitted, Completed      uint64
	Cancelled, Rejected       uint64
	Failed                    uint64
	// TokensPerSecond is generated tokens per second over the last minute.
	TokensPerSecond float64
	// P50FirstToken is the median time to first token over the last minute.
	P50FirstToken time.Duration
	// KVTokens is the positions held in the running sequences' KV caches
	// (after the latest Forward call).
	KVTokens int
	// BatchSizes counts Forward calls by batch size: BatchSizes[i] those
	// of at most BatchSizeBuckets[i] sequences (not cumulative), the last
	// those above every bucket.
	BatchSizes [len(BatchSizeBuckets) + 1]uint64
	// BatchSizeSum is the sequences over every Forward call.
	BatchSizeSum uint64
}

// BatchSizeBuckets are the upper bounds of Stats.BatchSizes.
var BatchSizeBuckets = [...]int{1, 2, 4, 8, 16, 32, 64, 128}

// batchBucket is the index in Stats.BatchSizes of a Forward of n sequences.
func batchBucket(n int) int {
	for i, b := range BatchSizeBuckets {
		if n <= b {
			return i
		}
	}
	return len(BatchSizeBuckets)
}

// PrefillChunk is the most prompt tokens one sequence feeds per step.
func (s *Scheduler) PrefillChunk() int { return s.cfg.prefillChunk }

// Stats returns the current counters; safe from any goroutine.
func (s *Scheduler) Stats() Stats {
	tps, p50 := s.rate.read(time.Now())
	st := Stats{
		QueueDepth: int(s.queueDepth.Load()), QueueCapacity: s.cfg.queueSize,
		Active: int(s.activeSeqs.Load()), MaxBatch: s.cfg.maxBatch, BatchSize: int(s.batchSize.Load()),
		Forwards: s.forwards.Load(), BatchedForwards: s.batchedForwards.Load(),
		MaxBatchSeen: int(s.maxBatchSeen.Load()),
		PromptTokens: s.promptTokens.Load(), GeneratedTokens: s.generatedTokens.Load(),
		Submitted: s.submitted.Load(), Completed: s.completed.Load(),
		Cancelled: s.cancelled.Load(), Rejected: s.rejected.Load(), Failed: s.failed.Load(),
		TokensPerSecond: tps, P50FirstToken: p50, KVTokens: int(s.kvTokens.Load()),
		BatchSizeSum: s.batchSum.Load(),
	}
	for i := range st.BatchSizes {
		st.BatchSizes[i] = s.batchHist[i].Load()
	}
	return st
}
