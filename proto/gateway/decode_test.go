package gateway

import (
	"io"
	"strings"
	"testing"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
)

// TestDecodeErrors: request bodies that do not decode get messages naming
// the field as the API does and the value as sent, without protojson's
// internals.
func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		body, want string
	}{
		{`{"model": "m", "max_tokens": -1}`, "invalid value for max_tokens: -1 (want an integer from 0 to 4294967295)"},
		{`{"model": "m", "max_tokens": "lots"}`, `invalid value for max_tokens: "lots" (want an integer from 0 to 4294967295)`},
		{`{"model": "m", "temperature": "hot"}`, `invalid value for temperature: "hot" (want a number)`},
		{`{"model": "m", "echo": 1}`, "invalid value for echo: 1 (want true or false)"},
		{`{"model": "m", "messages": [{"role": "ROLE_KING"}]}`, `invalid value for role: "ROLE_KING" (want one of the enum's names)`},
		{`{"model": "m", "max_tokenz": 1}`, `request body: unknown field "max_tokenz" (line 1, column 16)`},
		{"{\"model\": \"\xff\"}", "request body is not valid JSON: invalid UTF-8 in string (line 1, column 11)"},
		{`{"model": `, "unexpected EOF"},
		{`{"model" "m"}`, "request body is not valid JSON: invalid character"},
	} {
		var req inferencev1.GenerateRequest
		err := Marshaler().NewDecoder(strings.NewReader(tc.body)).Decode(&req)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "proto") {
			t.Errorf("%s: got %v, want an error containing %q and no proto internals", tc.body, err, tc.want)
		}
		err2 := Marshaler().Unmarshal([]byte(tc.body), &req)
		if err2 == nil || (err != nil && err2.Error() != err.Error() && tc.want != "unexpected EOF") {
			t.Errorf("%s: Unmarshal got %v, want NewDecoder's %v", tc.body, err2, err)
		}
	}
	var req inferencev1.GenerateRequest
	if err := Marshaler().NewDecoder(strings.NewReader("")).Decode(&req); err != io.EOF {
		t.Errorf("empty body: got %v, want io.EOF (no body)", err)
	}
	if err := Marshaler().NewDecoder(strings.NewReader(`{"model": "m", "max_tokens": 5}`)).Decode(&req); err != nil || req.GetMaxTokens() != 5 {
		t.Errorf("valid body: got %v, max_tokens %d", err, req.GetMaxTokens())
	}
}
