package sdk

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	authv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/auth/v1"
	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	quantizerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/quantizer/v1"
	registryv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/registry/v1"
)

// DefaultUserAgent prefixes the gRPC user agent of SDK clients.
const DefaultUserAgent = "bitnet-sdk/v1"

// Option configures Dial.
type Option func(*options)

type options struct {
	tls       *tls.Config
	retry     RetryPolicy
	requestID string
	userAgent string
	apiKey    string
	dialOpts  []grpc.DialOption
}

// RetryPolicy says how unary calls are retried: up to MaxAttempts calls in
// all, waiting a random time in [d/2, d] before retry n, where d is
// Backoff*2^(n-1) capped at MaxBackoff.
type RetryPolicy struct {
	MaxAttempts int
	Backoff     time.Duration
	MaxBackoff  time.Duration
}

// DefaultRetry is the policy without WithRetry.
func DefaultRetry() RetryPolicy {
	return RetryPolicy{MaxAttempts: 4, Backoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second}
}

// WithTLS uses TLS with cfg (nil: the system roots) instead of an insecure
// connection.
func WithTLS(cfg *tls.Config) Option {
	return func(o *options) {
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		o.tls = cfg
	}
}

// WithRetry makes unary calls retry up to maxAttempts calls in all (1 disables
// retries) with exponential backoff starting at backoff.
func WithRetry(maxAttempts int, backoff time.Duration) Option {
	return func(o *options) {
		o.retry.MaxAttempts = maxAttempts
		o.retry.Backoff = backoff
	}
}

// WithRequestID sends id as the x-request-id of every call, so that the
// servers' logs of one user action share it. Without it each call (with its
// retries) gets a fresh ID unless the context carries one
// (ContextWithRequestID).
func WithRequestID(id string) Option { return func(o *options) { o.requestID = id } }

// WithUserAgent puts ua before the SDK's own user agent.
func WithUserAgent(ua string) Option { return func(o *options) { o.userAgent = ua } }

// WithDialOptions adds raw gRPC dial options (e.g. a custom dialer in tests).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOpts = append(o.dialOpts, opts...) }
}

// Client is a connection to a mesh endpoint (a `bitnet up` process, a
// router or a single service) with typed sub-clients. It is safe for
// concurrent use; Close it when done.
type Client struct {
	conn      *grpc.ClientConn
	retry     RetryPolicy
	registry  *RegistryClient
	inference *InferenceClient
	quantizer *QuantizerClient
	keys      *KeysClient
}

// Dial connects to addr ("host:port"). The connection is made lazily: an
// unreachable address shows up as UNAVAILABLE on the first call (after the
// retries), not here; ctx only bounds the setup.
func Dial(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if addr == "" {
		return nil, fmt.Errorf("dial: empty address, want host:port")
	}
	o := options{retry: DefaultRetry()}
	for _, fn := range opts {
		fn(&o)
	}
	if o.retry.MaxAttempts < 1 {
		o.retry.MaxAttempts = 1
	}
	if o.retry.MaxBackoff < o.retry.Backoff {
		o.retry.MaxBackoff = o.retry.Backoff
	}
	creds := insecure.NewCredentials()
	if o.tls != nil {
		creds = credentials.NewTLS(o.tls)
	}
	ua := DefaultUserAgent
	if o.userAgent != "" {
		ua = o.userAgent + " " + ua
	}
	dialOpts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithUserAgent(ua),
		grpc.WithChainUnaryInterceptor(requestIDUnary(o.requestID), retryUnary(o.retry)),
		grpc.WithChainStreamInterceptor(requestIDStream(o.requestID)),
	}
	if o.apiKey != "" {
		dialOpts = append(dialOpts, grpc.WithPerRPCCredentials(bearerCreds{o.apiKey}))
	}
	dialOpts = append(dialOpts, o.dialOpts...)
	conn, err := grpc.NewClient(addr, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	c := &Client{conn: conn, retry: o.retry}
	c.registry = &RegistryClient{c: c, rpc: registryv1.NewRegistryServiceClient(conn)}
	c.inference = &InferenceClient{rpc: inferencev1.NewInferenceServiceClient(conn)}
	c.quantizer = &QuantizerClient{rpc: quantizerv1.NewQuantizerServiceClient(conn), retry: o.retry}
	c.keys = &KeysClient{rpc: authv1.NewKeyServiceClient(conn)}
	return c, nil
}

// Close closes the connection; calls in flight fail.
func (c *Client) Close() error { return c.conn.Close() }

// Conn returns the underlying connection, for services the SDK does not wrap.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Registry returns the registry client.
func (c *Client) Registry() *RegistryClient { return c.registry }

// Inference returns the inference (or router) client.
func (c *Client) Inference() *InferenceClient { return c.inference }

// Quantizer returns the quantizer client.
func (c *Client) Quantizer() *QuantizerClient { return c.quantizer }
