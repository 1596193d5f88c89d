package trainer

import (
	"testing"
)

// FuzzDecodeRecord checks that any job.json either decodes to a job whose
// snapshot converts to the API message, or is an error; never a panic.
func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte(`{"format":1,"seq":1,"job":{"ID":"tj-1","State":1}}`))
	f.Add([]byte(`{"format":1,"seq":3,"job":{"ID":"tj-1","State":4},"err_kind":"invalid","err_msg":"bad"}`))
	f.Add([]byte(`{"format":1,"seq":2,"job":{"ID":"tj-1","State":99,"Request":{"Hyperparameters":{"Steps":-1,"WeightDecay":0.5}}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<20 { // per-input cost bound
			return
		}
		j, err := decodeRecord(b, "tj-1")
		if err != nil {
			return
		}
		if j.snap.ID != "tj-1" || j.seq == 0 {
			t.Fatalf("decoded id %q seq %d", j.snap.ID, j.seq)
		}
		_ = jobToPB(j.snapshot())
		_ = code(j.snap.Err)
	})
}
