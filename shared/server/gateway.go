package server

import (
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/bitnet-mesh/bitnet-mesh/shared/logging"
)

// NDJSONContentType is the media type of server-streamed REST responses.
const NDJSONContentType = "application/x-ndjson"

// Marshaler is the gateway's JSON codec: proto field names as the API
// defines them (max_tokens, not maxTokens), unknown request fields rejected,
// and server streams as NDJSON with one message per line. The gateway wraps
// each streamed message as {"result": msg}; Marshaler unwraps it so a line
// is the message itself. A stream that fails midway ends with a line
// {"error": {"code": N, "message": "..."}}.
type Marshaler struct {
	runtime.JSONPb
}

// NewMarshaler returns the default gateway Marshaler.
func NewMarshaler() *Marshaler {
	return &Marshaler{JSONPb: runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true},
		UnmarshalOptions: protojson.UnmarshalOptions{},
	}}
}

// Marshal unwraps the gateway's stream envelope, then marshals as JSONPb.
func (m *Marshaler) Marshal(v any) ([]byte, error) {
	if env, ok := v.(map[string]any); ok && len(env) == 1 {
		if inner, ok := env["result"]; ok {
			return m.JSONPb.Marshal(inner)
		}
	}
	return m.JSONPb.Marshal(v)
}

// StreamContentType is the Content-Type of server streams.
func (m *Marshaler) StreamContentType(any) string { return NDJSONContentType }

// Delimiter ends every streamed message.
func (m *Marshaler) Delimiter() []byte { return []byte("\n") }

func defaultMuxOptions() []runtime.ServeMuxOption {
	return []runtime.ServeMuxOption{
		runtime.WithMarshalerOption(runtime.MIMEWildcard, NewMarshaler()),
		runtime.WithIncomingHeaderMatcher(func(key string) (string, bool) {
			if strings.EqualFold(key, logging.RequestIDHeader) {
				return logging.RequestIDHeader, true
			}
			return runtime.DefaultHeaderMatcher(key)
		}),
		runtime.WithOutgoingHeaderMatcher(func(key string) (string, bool) {
			if key == logging.RequestIDHeader {
				return "", false // the HTTP middleware has set X-Request-Id already
			}
			return runtime.MetadataHeaderPrefix + key, true
		}),
	}
}
