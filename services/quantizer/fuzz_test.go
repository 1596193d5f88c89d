package quantizer

import (
	"testing"
)

// FuzzDecodeRecord checks that any stored job record either decodes to a
// job whose snapshot converts to the API message, or is an error; never a
// panic.
func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte(`{"format":1,"seq":1,"job":{"ID":"qj-1","State":1}}`))
	f.Add([]byte(`{"format":1,"seq":3,"job":{"ID":"qj-1","State":4},"err":{"kind":"checkpoint","message":"bad"}}`))
	f.Add([]byte(`{"format":1,"seq":2,"job":{"ID":"qj-1","State":3,"Result":{"Name":"x","Version":2},"Report":{"Linears":[{"Name":"w","Rows":-1}]}}}`))
	f.Add([]byte(`{"format":1,"seq":2,"job":{"ID":"qj-1","State":99}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<20 { // per-input cost bound
			return
		}
		j, err := decodeRecord(b, "qj-1")
		if err != nil {
			return
		}
		if j.snap.ID != "qj-1" || j.seq == 0 || !j.snap.State.Valid() {
			t.Fatalf("decoded id %q seq %d state %v", j.snap.ID, j.seq, j.snap.State)
		}
		_ = jobToPB(j.snapshot(), true, true)
		_ = code(j.snap.Err)
	})
}
