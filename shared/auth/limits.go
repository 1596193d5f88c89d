package auth

import (
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"

	"github.com/bitnet-mesh/bitnet-mesh/shared/errcode"
)

// limiter holds the token buckets and stream counts of every key seen by
// one server. Limits are local to the process, like Envoy's local rate
// limit: N routers admit up to N times a key's rate in all.
//
// The buckets are golang.org/x/time/rate limiters: the generated-token
// bucket is charged after the tokens are made and may go into debt
// (ReserveN without waiting), which then delays the key's next generation.
type limiter struct {
	mu   sync.Mutex
	keys map[string]*keyLimits // by key ID
}

type keyLimits struct {
	limits  Limits
	req     *rate.Limiter // nil: no request rate limit
	tok     *rate.Limiter // nil: no token quota
	streams int
}

func newLimiter() *limiter { return &limiter{keys: map[string]*keyLimits{}} }

func (l *limiter) get(id string, lim Limits) *keyLimits {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.keys[id]
	if k != nil && k.limits == lim {
		return k
	}
	k = &keyLimits{limits: lim}
	if lim.RequestsPerSecond > 0 {
		burst := lim.Burst
		if burst <= 0 {
			burst = max(1, int(math.Ceil(lim.RequestsPerSecond)))
		}
		k.req = rate.NewLimiter(rate.Limit(lim.RequestsPerSecond), burst)
	}
	if lim.TokensPerMinute > 0 {
		perMin := min(lim.TokensPerMinute, math.MaxInt32)
		k.tok = rate.NewLimiter(rate.Limit(float64(perMin)/60), int(perMin))
	}
	l.keys[id] = k
	return k
}

// exhausted is RESOURCE_EXHAUSTED with a RetryInfo of wait.
func exhausted(wait time.Duration, format string, args ...any) error {
	return errcode.WithRetry(codes.ResourceExhausted, wait, fmt.Sprintf(format, args...))
}

// admit charges one request of key id and, for a stream, takes a stream
// slot; release gives the slot back. checkTokens also refuses while the
// key's token bucket is empty.
func (l *limiter) admit(id string, lim Limits, stream, checkTokens bool, now time.Time) (k *keyLimits, release func(), err error) {
	k = l.get(id, lim)
	if k.req != nil {
		r := k.req.ReserveN(now, 1)
		wait := time.Second
		if r.OK() {
			wait = r.DelayFrom(now)
		}
		if wait > 0 {
			r.CancelAt(now)
			return nil, nil, exhausted(wait, "API key %s is over its rate limit of %g requests/s", id, lim.RequestsPerSecond)
		}
	}
	if checkTokens && k.tok != nil {
		if have := k.tok.TokensAt(now); have < 1 {
			wait := time.Duration((1 - have) / float64(k.tok.Limit()) * float64(time.Second))
			return nil, nil, exhausted(wait, "API key %s is over its quota of %d generated tokens/min", id, lim.TokensPerMinute)
		}
	}
	release = func() {}
	if stream && lim.MaxStreams > 0 {
		l.mu.Lock()
		if k.streams >= lim.MaxStreams {
			l.mu.Unlock()
			return nil, nil, exhausted(time.Second, "API key %s has %d streams open, its limit", id, lim.MaxStreams)
		}
		k.streams++
		l.mu.Unlock()
		var once sync.Once
		release = func() {
			once.Do(func() {
				l.mu.Lock()
				k.streams--
				l.mu.Unlock()
			})
		}
	}
	return k, release, nil
}

// chargeTokens takes n generated tokens from the key's bucket, going into
// debt when it is empty (the tokens are already made).
func (k *keyLimits) chargeTokens(n int, now time.Time) {
	if k == nil || k.tok == nil || n <= 0 {
		return
	}
	for n > 0 {
		c := min(n, k.tok.Burst())
		k.tok.ReserveN(now, c)
		n -= c
	}
}
