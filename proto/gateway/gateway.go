// Package gateway configures the grpc-gateway REST front of the bitnet
// services, so that every server speaks the same JSON:
//
//   - fields are named as in the protos (`max_tokens`, `finish_reason`), both
//     in requests and responses, as the OpenAPI specs (package openapi) say;
//     enums are written by name, fields at their zero value are left out,
//     except that a unary response writes its own empty lists and maps
//     (GET /v1/mesh/models on an empty registry is {"models": []}, not {});
//   - unknown request fields are rejected (INVALID_ARGUMENT, HTTP 400), so a
//     misspelt parameter is an error rather than silently ignored;
//   - server streams (Generate, WatchJob, DownloadBlob) are newline-delimited
//     JSON (Content-Type application/x-ndjson), one response message per
//     line, unwrapped; a stream message with a string field "text" (a
//     Generate delta) always writes it, even when empty; an error after the
//     first line ends the stream with a line
//     {"error": {"code": N, "message": "...", "details": [...]}};
//   - the X-Request-Id header (requestid.Header) reaches the gRPC handler as
//     metadata, and is not echoed back a second time as
//     Grpc-Metadata-X-Request-Id (the HTTP server sets X-Request-Id).
//
// The package knows no service: it is the JSON convention shared/server's
// gateway applies to whatever services register on it.
//
// A service registers its generated handler on NewServeMux():
//
//	mux := gateway.NewServeMux()
//	err := inferencev1.RegisterInferenceServiceHandlerClient(ctx, mux, client)
package gateway

import (
	"bytes"
	"net/textproto"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/bitnet-mesh/bitnet-mesh/shared/requestid"
)

// NDJSONContentType is the Content-Type of server-streaming responses.
const NDJSONContentType = "application/x-ndjson"

// Marshaler returns the JSON marshaler the bitnet REST gateways use for every
// content type (see the package doc).
func Marshaler() runtime.Marshaler {
	return &ndjsonMarshaler{JSONPb: runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}}
}

// MuxOptions returns the ServeMux options NewServeMux applies.
func MuxOptions() []runtime.ServeMuxOption {
	return []runtime.ServeMuxOption{
		runtime.WithMarshalerOption(runtime.MIMEWildcard, Marshaler()),
		runtime.WithIncomingHeaderMatcher(incomingHeader),
		runtime.WithOutgoingHeaderMatcher(outgoingHeader),
	}
}

// NewServeMux returns a gateway mux with MuxOptions, then opts (which may
// override them).
func NewServeMux(opts ...runtime.ServeMuxOption) *runtime.ServeMux {
	return runtime.NewServeMux(append(MuxOptions(), opts...)...)
}

// incomingHeader forwards the request ID besides the gateway's defaults.
func incomingHeader(key string) (string, bool) {
	if textproto.CanonicalMIMEHeaderKey(key) == requestid.Header {
		return strings.ToLower(requestid.Header), true
	}
	return runtime.DefaultHeaderMatcher(key)
}

// outgoingHeader passes response metadata as Grpc-Metadata-* headers, but
// for the request ID, which the HTTP server has set already.
func outgoingHeader(key string) (string, bool) {
	if textproto.CanonicalMIMEHeaderKey(key) == requestid.Header {
		return "", false
	}
	return runtime.MetadataHeaderPrefix + key, true
}

// ndjsonMarshaler is runtime.JSONPb that writes each message of a server
// stream bare on its line (the gateway hands it {"result": msg}) and labels
// streams as NDJSON.
type ndjsonMarshaler struct {
	runtime.JSONPb
}

// Marshal unwraps the gateway's stream envelope {"result": msg}.
func (m *ndjsonMarshaler) Marshal(v any) ([]byte, error) {
	env, ok := v.(map[string]any)
	if !ok || len(env) != 1 {
		return m.marshalUnary(v)
	}
	msg, ok := env["result"]
	if !ok {
		return m.marshalUnary(v)
	}
	b, err := m.JSONPb.Marshal(msg)
	if err != nil {
		return nil, err
	}
	if pm, ok := msg.(proto.Message); ok && emptyText(pm) {
		b = withEmptyText(b)
	}
	return b, nil
}

// marshalUnary marshals a whole response (or an error body) as JSONPb,
// with the response's empty lists written out (withEmptyLists).
func (m *ndjsonMarshaler) marshalUnary(v any) ([]byte, error) {
	b, err := m.JSONPb.Marshal(v)
	if err != nil {
		return nil, err
	}
	if msg, ok := v.(proto.Message); ok {
		b = withEmptyLists(msg, b, m.UseProtoNames)
	}
	return b, nil
}

// emptyText reports whether m has a singular string field "text" that is
// empty (and so left out by protojson).
func emptyText(m proto.Message) bool {
	r := m.ProtoReflect()
	f := r.Descriptor().Fields().ByName("text")
	return f != nil && f.Kind() == protoreflect.StringKind && f.Cardinality() != protoreflect.Repeated && r.Get(f).String() == ""
}

// withEmptyText adds "text": "" to a JSON object without a text field: every
// line of a REST Generate stream carries its text delta, even an empty one
// (the last line often is), so clients can concatenate line["text"].
func withEmptyText(obj []byte) []byte {
	obj = bytes.TrimSpace(obj)
	if len(obj) < 2 || obj[0] != '{' {
		return obj
	}
	rest := bytes.TrimSpace(obj[1:])
	out := []byte(`{"text":""`)
	if len(rest) > 0 && rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, rest...)
}

// StreamContentType is the Content-Type of server-streaming responses.
func (m *ndjsonMarshaler) StreamContentType(any) string { return NDJSONContentType }
