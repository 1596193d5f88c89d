package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Source is where a Table reads keys: the registry's store in process, or
// the registry's KeyService over gRPC.
type Source interface {
	// SyncKeys returns every active key and the table's revision; when
	// since equals the current revision it may return changed=false and no
	// keys.
	SyncKeys(ctx context.Context, since uint64) (rev uint64, keys []Key, changed bool, err error)
}

// SourceFunc adapts a function to Source.
type SourceFunc func(ctx context.Context, since uint64) (uint64, []Key, bool, error)

// SyncKeys calls f.
func (f SourceFunc) SyncKeys(ctx context.Context, since uint64) (uint64, []Key, bool, error) {
	return f(ctx, since)
}

// Defaults of a Table.
const (
	// DefaultRefresh is how often a Table polls its Source: a key revoked
	// at the registry stops working everywhere within this time plus one
	// call (the bound is 10 s).
	DefaultRefresh = 2 * time.Second
	// DefaultMaxStale is how long a Table keeps accepting the keys it knows
	// when its Source fails (the registry is unreachable); after that every
	// keyed call fails closed with UNAVAILABLE until a refresh succeeds.
	DefaultMaxStale = 5 * time.Minute
	// missRefreshEvery bounds the refreshes that unknown key IDs (and calls
	// while the table is unsynced or stale) trigger: a key created a moment
	// ago works at once; random IDs cannot flood the registry.
	missRefreshEvery = time.Second
)

// Table is the in-memory key table every service checks keys against. It
// is refreshed from a Source by Run (and at once by Kick, or when a call
// names a key ID it does not know). Safe for concurrent use.
type Table struct {
	src      Source
	refresh  time.Duration
	maxStale time.Duration
	log      *zap.Logger
	now      func() time.Time

	mu       sync.RWMutex
	keys     map[string]*Key // by ID
	rev      uint64
	synced   time.Time // last successful sync; zero: never
	lastErr  error
	lastMiss time.Time

	static map[string]*Key // AddStatic's keys, kept across syncs

	syncMu sync.Mutex // one sync at a time
	kick   chan struct{}
}

// TableOption configures a Table.
type TableOption func(*Table)

// WithRefresh sets the poll interval (default DefaultRefresh).
func WithRefresh(d time.Duration) TableOption { return func(t *Table) { t.refresh = d } }

// WithMaxStale sets how long known keys keep working while the Source
// fails (default DefaultMaxStale).
func WithMaxStale(d time.Duration) TableOption { return func(t *Table) { t.maxStale = d } }

// WithTableLogger logs failed and recovered syncs (default none).
func WithTableLogger(l *zap.Logger) TableOption { return func(t *Table) { t.log = l } }

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) TableOption { return func(t *Table) { t.now = now } }

// NewTable returns an empty table over src; call Sync (or Run) to fill it.
func NewTable(src Source, opts ...TableOption) (*Table, error) {
	t := &Table{src: src, refresh: DefaultRefresh, maxStale: DefaultMaxStale, log: zap.NewNop(), now: time.Now,
		keys: map[string]*Key{}, static: map[string]*Key{}, kick: make(chan struct{}, 1)}
	for _, o := range opts {
		o(t)
	}
	switch {
	case src == nil:
		return nil, errors.New("auth: key table without a source")
	case t.refresh <= 0 || t.maxStale <= 0:
		return nil, fmt.Errorf("auth: key refresh %v and max staleness %v must be positive", t.refresh, t.maxStale)
	}
	return t, nil
}

// Sync reads the Source once.
func (t *Table) Sync(ctx context.Context) error {
	t.syncMu.Lock()
	defer t.syncMu.Unlock()
	t.mu.RLock()
	since := t.rev
	if t.synced.IsZero() {
		since = 0
	}
	t.mu.RUnlock()
	rev, keys, changed, err := t.src.SyncKeys(ctx, since)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		if t.lastErr == nil {
			t.log.Warn("key table sync failed; known keys keep working until the table is stale",
				zap.Duration("max_stale", t.maxStale), zap.Error(err))
		}
		t.lastErr = err
		return fmt.Errorf("auth: sync keys: %w", err)
	}
	if t.lastErr != nil {
		t.log.Info("key table sync recovered", zap.Uint64("revision", rev))
	}
	t.lastErr = nil
	t.synced = t.now()
	if changed || rev != t.rev {
		m := make(map[string]*Key, len(keys)+len(t.static))
		for i := range keys {
			k := keys[i]
			m[k.ID] = &k
		}
		for id, k := range t.static {
			m[id] = k
		}
		t.keys, t.rev = m, rev
	}
	return nil
}

// AddStatic adds a key that lives only in this table (not in the
// Source): `bitnet up` gives its in-process inference node such a key for
// its calls to the registry, so nothing is stored or left to revoke.
func (t *Table) AddStatic(k Key) {
	t.mu.Lock()
	defer t.mu.Unlock()
	kk := k
	t.static[k.ID] = &kk
	t.keys[k.ID] = &kk
}

// Kick asks Run to sync now (e.g. right after a key was created or revoked
// in this process).
func (t *Table) Kick() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// Run syncs every refresh interval (and on Kick) until ctx is done.
func (t *Table) Run(ctx context.Context) {
	tick := time.NewTicker(t.refresh)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-t.kick:
		}
		sctx, cancel := context.WithTimeout(ctx, max(t.refresh, 5*time.Second))
		_ = t.Sync(sctx) // logged; stale keys keep working for maxStale
		cancel()
	}
}

// Revision is the revision of the last successful sync.
func (t *Table) Revision() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.rev
}

// Len is the number of keys known.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.keys)
}

// Lookup checks a bearer key. Errors are gRPC statuses: UNAUTHENTICATED for
// a malformed, unknown, wrong or expired key; UNAVAILABLE when the table is
// stale (never synced, or its Source has failed for longer than the max
// staleness), so keys fail closed when the registry is gone for long.
func (t *Table) Lookup(ctx context.Context, bearer string) (*Key, error) {
	tok, err := ParseToken(bearer)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, "invalid API key: "+err.Error())
	}
	k, err := t.lookup(tok.ID)
	if (err != nil || k == nil) && t.missRefresh() {
		// A key created a moment ago elsewhere, or a table not synced yet
		// (this service started before the registry) or stale: sync once,
		// then look again.
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_ = t.Sync(sctx)
		cancel()
		k, err = t.lookup(tok.ID)
	}
	if err != nil {
		return nil, err
	}
	switch {
	case k == nil || !k.Matches(tok):
		return nil, status.Error(codes.Unauthenticated, "invalid API key: unknown or revoked")
	case k.Expired(t.now()):
		return nil, status.Errorf(codes.Unauthenticated, "API key %s expired at %s", k.ID, k.ExpireTime.UTC().Format(time.RFC3339))
	}
	return k, nil
}

func (t *Table) lookup(id string) (*Key, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.synced.IsZero() {
		return nil, status.Error(codes.Unavailable, "API keys cannot be checked yet: the key table has not been read from the registry")
	}
	if age := t.now().Sub(t.synced); age > t.maxStale {
		return nil, status.Errorf(codes.Unavailable, "API keys cannot be checked: the key table is %v old (registry unreachable: %v)",
			age.Round(time.Second), t.lastErr)
	}
	return t.keys[id], nil
}

// missRefresh reports whether an unknown ID may trigger a sync now.
func (t *Table) missRefresh() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if now.Sub(t.lastMiss) < missRefreshEvery {
		return false
	}
	t.lastMiss = now
	return true
}
