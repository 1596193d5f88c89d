package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
)

// NewDecoder decodes request bodies as runtime.JSONPb does, with errors a
// REST client can act on: the field named as the API names it
// (max_tokens, not protojson's maxTokens), the value as sent, what is
// wanted, and no "proto:" internals. The gateway answers them 400.
func (m *ndjsonMarshaler) NewDecoder(r io.Reader) runtime.Decoder {
	d := m.JSONPb.NewDecoder(r)
	return runtime.DecoderFunc(func(v any) error { return readableDecodeError(d.Decode(v)) })
}

// Unmarshal is runtime.JSONPb's with NewDecoder's errors.
func (m *ndjsonMarshaler) Unmarshal(data []byte, v any) error {
	return readableDecodeError(m.JSONPb.Unmarshal(data, v))
}

var (
	// protojson: "proto: (line 1:43): invalid value for uint32 field maxTokens: -1",
	// "proto: syntax error (line 1:26): invalid UTF-8 in string". The space
	// after "proto:" is at random a no-break space (protobuf-go discourages
	// matching its messages: TestDecodeErrors says when they change).
	protojsonErr = regexp.MustCompile(`^proto:[\s\x{00a0}]*(syntax error\s*)?\(line (\d+):(\d+)\):\s*(.*)$`)
	invalidValue = regexp.MustCompile(`^invalid value for (\w+) field (\w+): (.*)$`)
)

// wantKind says what a field of a protobuf kind accepts, in JSON terms.
var wantKind = map[string]string{
	"bool":   "true or false",
	"string": "a string",
	"bytes":  "base64 text",
	"float":  "a number", "double": "a number",
	"int32": "an integer from -2147483648 to 2147483647", "sint32": "an integer from -2147483648 to 2147483647",
	"sfixed32": "an integer from -2147483648 to 2147483647",
	"uint32":   "an integer from 0 to 4294967295", "fixed32": "an integer from 0 to 4294967295",
	"int64": "an integer (a string for values beyond 2^53)", "sint64": "an integer (a string for values beyond 2^53)",
	"sfixed64": "an integer (a string for values beyond 2^53)",
	"uint64":   "an integer from 0 (a string for values beyond 2^53)", "fixed64": "an integer from 0 (a string for values beyond 2^53)",
	"enum":    "one of the enum's names",
	"message": "an object",
}

// readableDecodeError rewrites a protojson or encoding/json error (io.EOF,
// an empty body, passes unchanged: the gateway treats it as no body).
func readableDecodeError(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return err
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Errorf("request body is not valid JSON: %s (at byte %d)", syn.Error(), syn.Offset)
	}
	m := protojsonErr.FindStringSubmatch(err.Error())
	if m == nil {
		return errors.New(strings.TrimLeft(strings.TrimPrefix(err.Error(), "proto:"), " \u00a0"))
	}
	line, col, msg := m[2], m[3], m[4]
	if v := invalidValue.FindStringSubmatch(msg); v != nil {
		kind, field, value := v[1], snakeCase(v[2]), v[3]
		want := wantKind[kind]
		if want == "" {
			want = "a " + kind
		}
		return fmt.Errorf("invalid value for %s: %s (want %s)", field, value, want)
	}
	if m[1] != "" {
		return fmt.Errorf("request body is not valid JSON: %s (line %s, column %s)", msg, line, col)
	}
	return fmt.Errorf("request body: %s (line %s, column %s)", msg, line, col)
}

// snakeCase turns protojson's JSON field name (maxTokens) into the proto
// name the API documents (max_tokens).
func snakeCase(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
