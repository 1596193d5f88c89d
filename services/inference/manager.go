package inference

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/chat"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// ManagerOption configures a Manager.
type ManagerOption func(*managerConfig)

type managerConfig struct {
	budget    int64
	ttl       time.Duration
	janitor   time.Duration
	modelOpts []model.Option
	schedOpts []SchedulerOption
	log       *zap.Logger
	loadModel func(ctx context.Context, path string, opts ...model.Option) (*model.Model, error)
	wrapModel func(*model.Model) Model
	kvType    model.KVType // what the KV caches are sized in (NewServer sets it)
	planModel func(ctx context.Context, c model.Config) error
	// readsTrits says which BitLinear shapes the engine decodes from the
	// 1.6-bit layout (kernels.Engine.ReadsTritsFor); NewServer sets it.
	readsTrits func(rows, cols int) bool
}

// withTritReads counts the 1.6-bit copies of the shapes reads names in
// every model's footprint.
func withTritReads(reads func(rows, cols int) bool) ManagerOption {
	return func(c *managerConfig) { c.readsTrits = reads }
}

// withKVType sizes the KV caches counted against the budget in t's
// elements (the type the models are loaded with).
func withKVType(t model.KVType) ManagerOption { return func(c *managerConfig) { c.kvType = t } }

// WithMemoryBudget bounds the memory of the loaded models, estimated from
// their shapes: weights plus the KV caches of a full batch at the whole
// context (see footprint); 0 (default) means no bound.
func WithMemoryBudget(bytes int64) ManagerOption { return func(c *managerConfig) { c.budget = bytes } }

// WithIdleTTL unloads models unused for d (default 15 minutes; 0 never).
func WithIdleTTL(d time.Duration) ManagerOption { return func(c *managerConfig) { c.ttl = d } }

// WithJanitorInterval sets how often idle models are looked for (default a
// quarter of the TTL, at most a minute).
func WithJanitorInterval(d time.Duration) ManagerOption {
	return func(c *managerConfig) { c.janitor = d }
}

// WithModelOptions passes options to model.Load (e.g. model.WithEngine).
func WithModelOptions(o ...model.Option) ManagerOption {
	return func(c *managerConfig) { c.modelOpts = append(c.modelOpts, o...) }
}

// WithSchedulerOptions configures every model's scheduler.
func WithSchedulerOptions(o ...SchedulerOption) ManagerOption {
	return func(c *managerConfig) { c.schedOpts = append(c.schedOpts, o...) }
}

// WithManagerLogger logs loads and unloads.
func WithManagerLogger(l *zap.Logger) ManagerOption { return func(c *managerConfig) { c.log = l } }

// WithModelPlanner runs f with each model's configuration before its
// memory is reserved and it loads (on the caller's context, one call at a
// time): a node measures its kernel plan on the model's own shapes there
// (kernels.LoadPlan, cached per CPU, binary and shapes, then
// kernels.Engine.AdoptShapes), so that the model's 1.6-bit layout is packed
// for the shapes that read it, and counted in its footprint. An error is
// logged and the load goes on with the node's plan.
func WithModelPlanner(f func(ctx context.Context, c model.Config) error) ManagerOption {
	return func(c *managerConfig) { c.planModel = f }
}

// withModelWrapper lets tests interpose on Forward (e.g. to hold a step).
func withModelWrapper(f func(*model.Model) Model) ManagerOption {
	return func(c *managerConfig) { c.wrapModel = f }
}

// Manager keeps models loaded on this node: it loads them on first use
// through its Fetcher, keeps them within the memory budget by evicting the
// least recently used idle model, and unloads models idle past the TTL. Safe
// for concurrent use.
//
// A load runs on a goroutine of its own, checked before it starts (the
// configuration from config.json or the GGUF header, its shape limits and
// the memory it needs against the budget); every caller waiting for it
// (Acquire, Load) can give up, and once none is left the load is abandoned
// (its context is cancelled and the loader stops between tensors), so a
// client that goes away never leaves a load running for nobody.
type Manager struct {
	f   Fetcher
	cfg managerConfig

	mu      sync.Mutex
	entries map[string]*entry // by resolved reference, NAME@N
	planMu  sync.Mutex        // serialises WithModelPlanner's calls
	closed  bool
	loads   sync.WaitGroup // load goroutines

	stop chan struct{}
	done chan struct{}
}

// entry is one loaded (or loading) model version.
type entry struct {
	key     string
	local   Local
	ready   chan struct{} // closed when loading ended; err says how
	err     error
	waiters int                // callers waiting for the load (guarded by Manager.mu)
	cancel  context.CancelFunc // abandons the load

	model    *model.Model
	sched    *Scheduler
	tmpl     *chat.Template // the model's chat template (chat.Default when it has none)
	tmplErr  error          // why the model's template does not parse
	bytes    int64
	since    time.Time
	loadTook time.Duration

	inUse    atomic.Int32 // handles out (guarded by Manager.mu for increments)
	lastUsed atomic.Int64 // unix nanoseconds
}

// NewManager returns a manager over f and starts its janitor.
func NewManager(f Fetcher, opts ...ManagerOption) (*Manager, error) {
	if f == nil {
		return nil, fmt.Errorf("model manager: fetcher is nil: %w", ErrInvalid)
	}
	c := managerConfig{ttl: 15 * time.Minute, log: zap.NewNop(), loadModel: model.LoadContext}
	for _, o := range opts {
		o(&c)
	}
	if c.budget < 0 || c.ttl < 0 || c.janitor < 0 {
		return nil, invalidf("model manager: budget %d, ttl %v, janitor %v: want >= 0", c.budget, c.ttl, c.janitor)
	}
	if c.janitor == 0 {
		c.janitor = min(max(c.ttl/4, 10*time.Millisecond), time.Minute)
	}
	m := &Manager{f: f, cfg: c, entries: map[string]*entry{}, stop: make(chan struct{}), done: make(chan struct{})}
	go m.janitor()
	return m, nil
}

// Handle is a loaded model in use; Release it when the request is done so
// that the model can be evicted again.
type Handle struct {
	Ref       *modelv1.ModelRef
	Model     *model.Model
	Scheduler *Scheduler
	// Template is the model's chat template; TemplateErr is set instead
	// when the template the model ships cannot be parsed (chats fail with
	// it, plain prompts work).
	Template    *chat.Template
	TemplateErr error
	e           *entry
	once        sync.Once
}

// Release marks the model unused by this handle.
func (h *Handle) Release() {
	h.once.Do(func() {
		h.e.lastUsed.Store(time.Now().UnixNano())
		h.e.inUse.Add(-1)
	})
}

// Acquire returns the model ref names, loading it when needed. ref is the
// text form NAME, NAME@N or NAME:ALIAS.
func (m *Manager) Acquire(ctx context.Context, ref string) (*Handle, error) {
	r, err := modelv1.ParseRef(ref)
	if err != nil {
		return nil, err
	}
	if r.GetVersion() != 0 { // a loaded version needs no fetch
		if h, ok, err := m.tryAcquire(ctx, r.Text()); ok || err != nil {
			return h, err
		}
	}
	loc, err := m.f.Fetch(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", ref, err)
	}
	key := (&modelv1.ModelRef{Name: loc.Ref.GetName(), Version: loc.Ref.GetVersion()}).Text()
	for {
		if h, ok, err := m.tryAcquire(ctx, key); ok || err != nil {
			return h, err
		}
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, fmt.Errorf("model manager: %w", ErrClosed)
		}
		if _, ok := m.entries[key]; ok { // someone else started loading it
			m.mu.Unlock()
			continue
		}
		m.mu.Unlock()
		// The configuration is read (a GGUF's header only) and checked
		// before any memory is reserved or spent on the weights.
		mc, err := preConfig(loc)
		if err != nil {
			return nil, loadError(key, loc.Path, err)
		}
		// The plan on the model's shapes decides which matrices also get
		// the 1.6-bit layout, which the footprint counts; a model too large
		// for the budget anyway is refused before anything is measured.
		if m.cfg.planModel != nil {
			if err := m.cfg.fits(m.cfg.footprint(mc), key); err != nil {
				return nil, err
			}
			m.planMu.Lock() // one measurement at a time; the next caller reads its cache
			perr := m.cfg.planModel(ctx, mc)
			m.planMu.Unlock()
			if perr != nil {
				if ctx.Err() != nil {
					return nil, fmt.Errorf("load %s: %w", key, ctx.Err())
				}
				m.cfg.log.Warn("kernel plan on the model's shapes failed: the node's plan runs it", zap.String("model", key), zap.Error(perr))
			}
		}
		need := m.cfg.footprint(mc)
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, fmt.Errorf("model manager: %w", ErrClosed)
		}
		if _, ok := m.entries[key]; ok {
			m.mu.Unlock()
			continue
		}
		e := &entry{key: key, local: loc, ready: make(chan struct{}), bytes: need.total()}
		victims, err := m.makeRoomLocked(need, key)
		if err != nil {
			m.mu.Unlock()
			return nil, err
		}
		m.entries[key] = e
		lctx, cancel := context.WithCancel(context.Background())
		e.cancel = cancel
		m.loads.Add(1)
		m.mu.Unlock()
		go func() {
			defer m.loads.Done()
			defer cancel()
			// Evicted models drain first, so their memory is free before
			// the new one's is taken.
			m.closeEntries(lctx, victims, "evicted")
			m.load(lctx, e)
		}()
		// The next turn waits for the load like any other caller.
	}
}

// errAbandoned ends a load that every caller stopped waiting for; a caller
// that comes later starts it again.
var errAbandoned = errors.New("model load abandoned: no caller is waiting")

// tryAcquire takes a handle on a loaded key, waiting for a load in progress
// (as one of its waiters: the last to give up abandons it). ok is false
// when the key is not there (or its load was abandoned).
func (m *Manager) tryAcquire(ctx context.Context, key string) (*Handle, bool, error) {
	m.mu.Lock()
	e, ok := m.entries[key]
	loading := ok && !isClosed(e.ready)
	if loading {
		e.waiters++
	}
	m.mu.Unlock()
	if !ok {
		return nil, false, nil
	}
	select {
	case <-e.ready:
	case <-ctx.Done():
		m.mu.Lock()
		if e.waiters--; e.waiters == 0 && !isClosed(e.ready) {
			e.cancel() // nobody waits any more
		}
		m.mu.Unlock()
		return nil, false, ctx.Err()
	}
	if loading {
		m.mu.Lock()
		e.waiters--
		m.mu.Unlock()
	}
	if errors.Is(e.err, errAbandoned) {
		return nil, false, nil // a caller that came late: load it again
	}
	if e.err != nil {
		return nil, false, e.err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.entries[key] != e { // unloaded meanwhile
		return nil, false, nil
	}
	e.inUse.Add(1)
	e.lastUsed.Store(time.Now().UnixNano())
	return &Handle{Ref: &modelv1.ModelRef{Name: e.local.Ref.GetName(), Version: e.local.Ref.GetVersion()},
		Model: e.model, Scheduler: e.sched, Template: e.tmpl, TemplateErr: e.tmplErr, e: e}, true, nil
}

// load loads e's model and starts its scheduler, then marks e ready; ctx
// ends when the load is abandoned (or the manager closes).
func (m *Manager) load(ctx context.Context, e *entry) {
	start := time.Now()
	mod, err := m.cfg.loadModel(ctx, e.local.Path, m.cfg.modelOpts...)
	switch {
	case err != nil && ctx.Err() != nil:
		err = fmt.Errorf("load %s: %w", e.key, errAbandoned)
	case err != nil:
		err = loadError(e.key, e.local.Path, err)
	case mod.Tokenizer() == nil:
		mod.Close()
		err = fmt.Errorf("model %s has no tokenizer: %w", e.key, ErrBadModel)
	}
	var sched *Scheduler
	if err == nil {
		var sm Model = mod
		if m.cfg.wrapModel != nil {
			sm = m.cfg.wrapModel(mod)
		}
		sched, err = NewScheduler(sm, mod.Tokenizer(), m.cfg.schedOpts...)
		if err != nil {
			mod.Close()
		}
	}
	var tmpl *chat.Template
	var tmplErr error
	if err == nil {
		if tmpl, tmplErr = chat.Load(e.local.Path, mod.Tokenizer()); tmplErr != nil {
			m.cfg.log.Warn("model chat template unusable", zap.String("model", e.key), zap.Error(tmplErr))
		}
	}
	m.mu.Lock()
	if err != nil {
		e.err = err
		delete(m.entries, e.key)
	} else {
		e.model, e.sched, e.since = mod, sched, time.Now()
		e.loadTook = time.Since(start)
		e.tmpl, e.tmplErr = tmpl, tmplErr
		e.bytes = m.cfg.footprint(mod.Config()).total() + mod.DeviceBytes() // GPU copies count too
		e.lastUsed.Store(time.Now().UnixNano())
	}
	close(e.ready)
	m.mu.Unlock()
	if err != nil {
		m.cfg.log.Warn("model load failed", zap.String("model", e.key), zap.Error(err))
		return
	}
	m.cfg.log.Info("model loaded", zap.String("model", e.key), zap.String("path", e.local.Path),
		zap.Int64("bytes", e.bytes), zap.Duration("took", time.Since(start)))
}

// footprint is the memory a loaded model may take: its weights
// (model.ServeBytes: 2-bit ternary linears and the int8 head, plus a float32
// embedding when it is not tied) and the KV caches of a full batch of
// sequences at the model's whole context, what the scheduler may hold at
// once. A model is loaded only when all of it fits the budget, so a full
// batch of long requests cannot take the node past its memory limit.
type footprint struct {
	weights, trits, kv int64
	seqs, ctx          int
	kvType             model.KVType
}

func (f footprint) total() int64 { return f.weights + f.trits + f.kv }

// String spells the numbers out for the over-budget message.
func (f footprint) String() string {
	trits := ""
	if f.trits > 0 {
		trits = " + 1.6-bit copies " + model.FormatBytes(f.trits)
	}
	return fmt.Sprintf("%s (weights %s%s + %s KV cache %s for --max-batch %d x %d-token context)",
		model.FormatBytes(f.total()), model.FormatBytes(f.weights), trits, f.kvType, model.FormatBytes(f.kv), f.seqs, f.ctx)
}

// fits returns an error wrapping ErrOverBudget when fp exceeds the budget
// even with nothing else loaded.
func (c managerConfig) fits(fp footprint, key string) error {
	if c.budget > 0 && fp.total() > c.budget {
		return fmt.Errorf("model %s needs about %s; the memory budget is %s (%d bytes): lower --max-batch or raise --memory-budget: %w",
			key, fp, model.FormatBytes(c.budget), c.budget, ErrOverBudget)
	}
	return nil
}

func (c managerConfig) footprint(mc model.Config) footprint {
	seqs := newSchedConfig(c.schedOpts).maxBatch
	return footprint{
		weights: mc.ServeBytes(), trits: mc.TritsBytes(c.readsTrits), kv: mc.KVBytes(c.kvType, seqs, mc.MaxPositions),
		seqs: seqs, ctx: mc.MaxPositions, kvType: c.kvType,
	}
}

// preConfig is a model's configuration read before loading it: a Hugging
// Face config.json, or a GGUF file's header (model.InspectGGUF, which also
// checks its tensors' names and shapes). A configuration that fails its
// checks fails here, before anything is reserved.
func preConfig(loc Local) (model.Config, error) {
	if strings.EqualFold(filepath.Ext(loc.Path), ".gguf") {
		return model.InspectGGUF(loc.Path, false)
	}
	return model.LoadConfigHF(loc.Path)
}

// loadError is a failed load as clients see it: the model's reference in
// place of this node's paths, wrapping ErrBadModel (FAILED_PRECONDITION:
// the stored files are wrong, the request is not) unless the cause says
// otherwise (over the budget, a context error).
func loadError(key, path string, err error) error {
	msg := err.Error()
	if path != "" {
		msg = strings.ReplaceAll(msg, path, key)
	}
	kind := ErrBadModel
	switch {
	case errors.Is(err, model.ErrOverBudget):
		kind = ErrOverBudget
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return &redactedError{msg: "load " + key + ": " + msg, kind: kind, err: err}
}

// redactedError carries a message rewritten for clients; errors.Is sees
// both its kind and the original error.
type redactedError struct {
	msg  string
	kind error
	err  error
}

func (e *redactedError) Error() string   { return e.msg }
func (e *redactedError) Unwrap() []error { return []error{e.kind, e.err} }

// makeRoomLocked picks least recently used idle models to evict so that need
// more bytes fit the budget. m.mu is held; the victims leave the map.
func (m *Manager) makeRoomLocked(fp footprint, key string) ([]*entry, error) {
	if m.cfg.budget == 0 {
		return nil, nil
	}
	need := fp.total()
	if err := m.cfg.fits(fp, key); err != nil {
		return nil, err
	}
	var used int64
	var idle []*entry
	for _, e := range m.entries {
		used += e.bytes
		if isClosed(e.ready) && e.err == nil && e.inUse.Load() == 0 {
			idle = append(idle, e)
		}
	}
	slices.SortFunc(idle, func(a, b *entry) int { return int(min(max(a.lastUsed.Load()-b.lastUsed.Load(), -1), 1)) })
	var victims []*entry
	for len(idle) > 0 && used+need > m.cfg.budget {
		v := idle[0]
		idle = idle[1:]
		if v.sched.Stats().Active+v.sched.Stats().QueueDepth > 0 {
			continue
		}
		delete(m.entries, v.key)
		used -= v.bytes
		victims = append(victims, v)
	}
	if used+need > m.cfg.budget {
		for _, v := range victims { // keep them: eviction would not suffice
			m.entries[v.key] = v
		}
		return nil, fmt.Errorf("model %s needs about %s; %s of the memory budget %s are taken by models in use: %w",
			key, fp, model.FormatBytes(used), model.FormatBytes(m.cfg.budget), ErrOverBudget)
	}
	return victims, nil
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// closeEntries drains the schedulers of entries already out of the map (their
// requests in flight finish unless ctx ends) and closes their models.
func (m *Manager) closeEntries(ctx context.Context, es []*entry, why string) {
	for _, e := range es {
		<-e.ready
		if e.err != nil {
			continue
		}
		_ = e.sched.Drain(ctx)
		e.model.Close()
		m.cfg.log.Info("model unloaded", zap.String("model", e.key), zap.String("why", why))
	}
}

// LoadedInfo describes a loaded model version.
type LoadedInfo struct {
	Ref           *modelv1.ModelRef
	Path          string
	Format        modelv1.ModelFormat
	Quant         modelv1.QuantType
	Bytes         int64
	ContextLength int
	Family        model.Family // the model's family
	Embedding     bool         // an embedding model (Embed, not Generate)
	Active        int          // requests generating or queued
	LoadTime      time.Time
	LoadDuration  time.Duration // reading the model and starting its scheduler
	LastUsed      time.Time
	Stats         Stats
}

func (e *entry) info() LoadedInfo {
	st := e.sched.Stats()
	return LoadedInfo{
		Ref:  &modelv1.ModelRef{Name: e.local.Ref.GetName(), Version: e.local.Ref.GetVersion()},
		Path: e.local.Path, Format: e.local.Format, Quant: e.local.Quant, Bytes: e.bytes,
		ContextLength: e.model.Config().MaxPositions, Active: st.Active + st.QueueDepth,
		Family: e.model.Config().Family(), Embedding: e.model.Config().IsEmbedding(),
		LoadTime: e.since, LoadDuration: e.loadTook, LastUsed: time.Unix(0, e.lastUsed.Load()), Stats: st,
	}
}

// Load loads ref ahead of traffic and returns what is loaded.
func (m *Manager) Load(ctx context.Context, ref string) (LoadedInfo, error) {
	h, err := m.Acquire(ctx, ref)
	if err != nil {
		return LoadedInfo{}, err
	}
	defer h.Release()
	return h.e.info(), nil
}

// Unload unloads ref's loaded versions (every version of NAME for a bare
// name). Requests in flight finish first, unless ctx ends.
func (m *Manager) Unload(ctx context.Context, ref string) ([]LoadedInfo, error) {
	r, err := modelv1.ParseRef(ref)
	if err != nil {
		return nil, err
	}
	if r.GetAlias() != "" {
		loc, err := m.f.Fetch(ctx, r)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", ref, err)
		}
		r = &modelv1.ModelRef{Name: loc.Ref.GetName(), Version: loc.Ref.GetVersion()}
	}
	m.mu.Lock()
	var out []*entry
	for k, e := range m.entries {
		if (r.GetVersion() != 0 && k == r.Text()) || (r.GetVersion() == 0 && strings.HasPrefix(k, r.GetName()+"@")) {
			if isClosed(e.ready) && e.err == nil {
				delete(m.entries, k)
				out = append(out, e)
			}
		}
	}
	m.mu.Unlock()
	infos := make([]LoadedInfo, 0, len(out))
	for _, e := range out {
		infos = append(infos, e.info())
	}
	m.closeEntries(ctx, out, "unload request")
	return infos, nil
}

// Loaded lists the loaded versions by reference.
func (m *Manager) Loaded() []LoadedInfo {
	m.mu.Lock()
	var es []*entry
	for _, e := range m.entries {
		if isClosed(e.ready) && e.err == nil {
			es = append(es, e)
		}
	}
	m.mu.Unlock()
	out := make([]LoadedInfo, 0, len(es))
	for _, e := range es {
		out = append(out, e.info())
	}
	slices.SortFunc(out, func(a, b LoadedInfo) int { return strings.Compare(a.Ref.Text(), b.Ref.Text()) })
	return out
}

// Budget returns the memory budget (0: none) and the bytes the loaded models
// take.
func (m *Manager) Budget() (budget, used int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.entries {
		used += e.bytes
	}
	return m.cfg.budget, used
}

// Fetcher returns the manager's fetcher.
func (m *Manager) Fetcher() Fetcher { return m.f }

// janitor unloads models idle past the TTL until Close.
func (m *Manager) janitor() {
	defer close(m.done)
	if m.cfg.ttl == 0 {
		<-m.stop
		return
	}
	t := time.NewTicker(m.cfg.janitor)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case now := <-t.C:
			m.unloadIdle(now)
		}
	}
}

func (m *Manager) unloadIdle(now time.Time) {
	cutoff := now.Add(-m.cfg.ttl).UnixNano()
	m.mu.Lock()
	var idle []*entry
	for k, e := range m.entries {
		if isClosed(e.ready) && e.err == nil && e.inUse.Load() == 0 && e.lastUsed.Load() < cutoff {
			st := e.sched.Stats()
			if st.Active+st.QueueDepth == 0 {
				delete(m.entries, k)
				idle = append(idle, e)
			}
		}
	}
	m.mu.Unlock()
	m.closeEntries(context.Background(), idle, "idle")
}

// Close stops the janitor and unloads every model; requests in flight end
// with ErrClosed.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	var all []*entry
	for k, e := range m.entries {
		delete(m.entries, k)
		all = append(all, e)
	}
	for _, e := range all {
		if e.cancel != nil && !isClosed(e.ready) {
			e.cancel()
		}
	}
	m.mu.Unlock()
	close(m.stop)
	<-m.done
	m.loads.Wait()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no draining: cancel in-flight requests now
	m.closeEntries(ctx, all, "shutdown")
	return nil
}
