// Package auth is the mesh's access control: API keys with scopes, the key
// table every service checks them against, the table of which scope each
// RPC needs, per-key rate limits and quotas, and the audit log.
//
// # Keys
//
// A key is "bnk_" + a 16-hex-digit ID + "_" + a 256-bit secret from
// crypto/rand (base64url), shown once when created. The registry stores
// only the secret's SHA-256 (Key.Hash) with the ID, name, scopes, expiry
// and limits; the ID makes lookups O(1) and names the key in logs. A plain
// SHA-256 is the right verifier here, not bcrypt or argon2: those slow
// down guessing of low-entropy passwords, but a 256-bit random secret
// cannot be guessed at any speed, and a fast hash keeps the per-request
// check (one SHA-256 and a constant-time compare) in the microseconds.
// This is what GitHub and Stripe tokens do.
//
// # Scopes
//
// read (models, versions, nodes, status, jobs), generate (Generate,
// Tokenize, Detokenize, the OpenAI-compatible routes), write (push, delete,
// aliases), jobs (create and cancel quantize and training jobs) and admin
// (keys, load and unload, and everything else). Policy is the one table of
// every RPC and the scope it needs; a test proves it covers every RPC of
// every service, and a method missing from it is refused.
//
// # Where keys are checked
//
// Every service holds a Table, refreshed from a Source every 2 s (and at
// once when a call names an unknown key ID, at most once a second): the
// registry reads its own store, every other service calls the registry's
// KeyService.SyncKeys with its own credentials (a service key, or its mTLS
// client certificate). A revoked key stops working everywhere within the
// refresh interval plus one call, well under the 10 s the mesh promises.
// When the registry is unreachable the table keeps the keys it knows for
// DefaultMaxStale (5 min), then fails closed: keyed calls get UNAVAILABLE
// until a sync succeeds.
//
// # The Guard
//
// A Guard wraps a server: gRPC interceptors (UnaryServerInterceptor,
// StreamServerInterceptor), a middleware for its REST port (Middleware)
// and a wrapper for HTTP routes outside the gRPC gateway (Handler). It
// reads "authorization: Bearer KEY" (REST: the Authorization header, which
// the gateway forwards as that metadata) and answers UNAUTHENTICATED (401)
// for a missing, malformed, unknown, revoked or expired key and
// PERMISSION_DENIED (403) naming the scope needed for a key without it.
// Health checks are always open.
//
// With mTLS (WithClientCertRequired) the TLS handshake rejects a client
// certificate from another CA, and the Guard refuses callers that sent
// none, except on open methods (Consul's and kubelet's health checks do
// not present one). A caller with a verified certificate and no key is a
// mesh service: it gets DefaultCertScopes (all but admin) when keys are
// required, everything otherwise. A key, when sent, always decides: the
// router forwards its caller's key to the node, so the node checks the
// user, not the router.
//
// # Limits
//
// Per key, within one server process (like Envoy's local rate limit):
// requests per second (token bucket with a burst), generated tokens per
// minute (charged as a stream sends token IDs; a key in debt waits before
// its next generation) and concurrent streams. Over a limit: RESOURCE_EXHAUSTED
// with a google.rpc.RetryInfo, which REST turns into 429 with
// Retry-After. Server-wide defaults apply to keys created without limits.
//
// # Audit
//
// Every mutating call (Rule.Mutating), allowed or refused, gets one line on
// the logger named "audit": principal kind and ID (the key ID, never the
// key), method, resource (the names the request gives, e.g. "name=tiny
// version=3"), result code, request ID and peer.
package auth
