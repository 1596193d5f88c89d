package trainer

import (
	"math"
	"strconv"
	"strings"
	"testing"

	trainerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/trainer/v1"
)

// TestRequestFromPBAsGiven: numbers reach validation as sent, so a
// rejected value is reported as given (4294967295 threads, not 1073741824).
func TestRequestFromPBAsGiven(t *testing.T) {
	if strconv.IntSize < 64 {
		t.Skip("a 32-bit int saturates")
	}
	r, err := requestFromPB(&trainerv1.CreateJobRequest{
		Model:              &trainerv1.ModelSpec{Init: &trainerv1.ModelSpec_Parent{Parent: "tiny"}},
		Dataset:            &trainerv1.Dataset{Sha256: []string{"sha256:" + strings.Repeat("ab", 32)}},
		Hyperparameters:    &trainerv1.Hyperparameters{},
		Threads:            math.MaxUint32,
		EvalInterval:       math.MaxUint32 - 1,
		CheckpointInterval: math.MaxUint32 - 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Threads != math.MaxUint32 || r.EvalInterval != math.MaxUint32-1 || r.CheckpointInterval != math.MaxUint32-2 {
		t.Errorf("got threads %d, eval interval %d, checkpoint interval %d; want the values sent", r.Threads, r.EvalInterval, r.CheckpointInterval)
	}
}
