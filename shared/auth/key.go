package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Token format: "bnk_" + 16 hex digits of key ID + "_" + 43 base64url
// characters of a 256-bit random secret. The ID is public (it names the key
// in lists, logs and audit lines); the secret is what proves possession.
const (
	TokenPrefix = "bnk_"
	idBytes     = 8
	secretBytes = 32
	idLen       = 2 * idBytes
	secretLen   = 43 // base64.RawURLEncoding of 32 bytes
	// TokenLen is the length of every token.
	TokenLen = len(TokenPrefix) + idLen + 1 + secretLen
)

// ErrMalformedToken is returned by ParseToken for a string that is not a
// bitnet API key.
var ErrMalformedToken = errors.New("malformed API key, want bnk_<id>_<secret>")

// Token is a parsed API key.
type Token struct {
	ID     string // 16 lowercase hex digits
	Secret []byte // 32 bytes
}

// NewToken makes a random key from crypto/rand.
func NewToken() (Token, error) {
	b := make([]byte, idBytes+secretBytes)
	if _, err := rand.Read(b); err != nil {
		return Token{}, fmt.Errorf("auth: random key: %w", err)
	}
	return Token{ID: hex.EncodeToString(b[:idBytes]), Secret: b[idBytes:]}, nil
}

// String is the key as users hold it: bnk_<id>_<secret>.
func (t Token) String() string {
	return TokenPrefix + t.ID + "_" + base64.RawURLEncoding.EncodeToString(t.Secret)
}

// Hash is the verifier stored for the key: SHA-256 of the secret.
func (t Token) Hash() [sha256.Size]byte { return sha256.Sum256(t.Secret) }

// ParseToken splits a key into its ID and secret, checking the format only.
func ParseToken(s string) (Token, error) {
	if len(s) != TokenLen || !strings.HasPrefix(s, TokenPrefix) || s[len(TokenPrefix)+idLen] != '_' {
		return Token{}, ErrMalformedToken
	}
	id := s[len(TokenPrefix) : len(TokenPrefix)+idLen]
	for _, c := range []byte(id) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return Token{}, ErrMalformedToken
		}
	}
	secret, err := base64.RawURLEncoding.Strict().DecodeString(s[len(TokenPrefix)+idLen+1:])
	if err != nil || len(secret) != secretBytes {
		return Token{}, ErrMalformedToken
	}
	return Token{ID: id, Secret: secret}, nil
}

// ValidKeyID reports whether id has the form of a key ID.
func ValidKeyID(id string) bool {
	if len(id) != idLen {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

// Limits are per-key rate limits and quotas; a zero field means the
// server-wide default (see Defaults), a negative one (in a default) means
// no limit.
type Limits struct {
	// RequestsPerSecond refills the request bucket; Burst is its size.
	RequestsPerSecond float64 `json:"requests_per_second,omitempty"`
	Burst             int     `json:"burst,omitempty"`
	// TokensPerMinute refills the generated-token bucket (its size: one
	// minute's worth).
	TokensPerMinute int64 `json:"tokens_per_minute,omitempty"`
	// MaxStreams bounds the key's concurrent streaming calls.
	MaxStreams int `json:"max_streams,omitempty"`
}

// Over fills the zero fields of l from def.
func (l Limits) Over(def Limits) Limits {
	if l.RequestsPerSecond == 0 {
		l.RequestsPerSecond = def.RequestsPerSecond
	}
	if l.Burst == 0 {
		l.Burst = def.Burst
	}
	if l.TokensPerMinute == 0 {
		l.TokensPerMinute = def.TokensPerMinute
	}
	if l.MaxStreams == 0 {
		l.MaxStreams = def.MaxStreams
	}
	return l
}

// Validate rejects negative or non-finite per-key limits.
func (l Limits) Validate() error {
	if l.RequestsPerSecond < 0 || l.RequestsPerSecond != l.RequestsPerSecond || l.RequestsPerSecond > 1e9 ||
		l.Burst < 0 || l.TokensPerMinute < 0 || l.MaxStreams < 0 {
		return fmt.Errorf("limits %+v: want finite values >= 0 (0 = the server default)", l)
	}
	return nil
}

// Key is a stored API key: everything but the secret, which is kept only
// as its SHA-256 (Hash).
type Key struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Scopes     Scopes            `json:"scopes"`
	Hash       [sha256.Size]byte `json:"hash"`
	CreateTime time.Time         `json:"create_time"`
	ExpireTime time.Time         `json:"expire_time,omitzero"` // zero: never
	Limits     Limits            `json:"limits,omitzero"`
}

// Expired reports whether the key has expired at now.
func (k *Key) Expired(now time.Time) bool {
	return !k.ExpireTime.IsZero() && !now.Before(k.ExpireTime)
}

// Matches reports, in constant time, whether t's secret hashes to k.Hash.
func (k *Key) Matches(t Token) bool {
	h := t.Hash()
	return subtle.ConstantTimeCompare(h[:], k.Hash[:]) == 1
}

// MaxKeyNameLen bounds key names.
const MaxKeyNameLen = 64

// ValidateKeyName checks a key name: 1-64 of [A-Za-z0-9._-], starting
// with a letter or digit.
func ValidateKeyName(name string) error {
	if name == "" || len(name) > MaxKeyNameLen {
		return fmt.Errorf("key name %q: want 1-%d characters", name, MaxKeyNameLen)
	}
	for i, c := range []byte(name) {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || i > 0 && (c == '.' || c == '_' || c == '-')
		if !ok {
			return fmt.Errorf("key name %q: want letters, digits, '.', '_' or '-', starting with a letter or digit", name)
		}
	}
	return nil
}
