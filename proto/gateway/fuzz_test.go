package gateway_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/proto/gateway"
)

// FuzzGenerateRequestJSON feeds REST bodies to the gateway's marshaler: it
// must not panic, and a body it accepts must survive Marshal/Unmarshal.
func FuzzGenerateRequestJSON(f *testing.F) {
	f.Add([]byte(contractBody))
	f.Add([]byte(`{"model": "tiny", "messages": [{"role": "ROLE_USER", "content": "hi"}], "seed": "7", "stop": ["\n"]}`))
	f.Add([]byte(`{"model": "tiny", "maxTokens": 3, "top_p": 0.9, "min_p": 0.05}`))
	m := gateway.Marshaler()
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > 1<<20 { // per-input cost bound
			return
		}
		var req inferencev1.GenerateRequest
		if err := m.Unmarshal(body, &req); err != nil {
			return
		}
		out, err := m.Marshal(&req)
		if err != nil {
			t.Fatalf("Marshal of an accepted request %v: %v", &req, err)
		}
		var again inferencev1.GenerateRequest
		if err := m.Unmarshal(out, &again); err != nil {
			t.Fatalf("Unmarshal(%s) of our own output: %v", out, err)
		}
		if !proto.Equal(&req, &again) {
			t.Fatalf("round trip: got %v, want %v", &again, &req)
		}
	})
}
