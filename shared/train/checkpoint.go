package train

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/bitnet-mesh/bitnet-mesh/shared/safetensors"
)

// Checkpoint metadata keys.
const (
	metaFormat  = "format"
	metaStep    = "step"
	metaAdam    = "adam_step"
	metaEpoch   = "data_epoch"
	metaPos     = "data_pos"
	metaTokens  = "data_tokens"
	metaOptions = "options"
	metaConfig  = "config"
	metaHistory = "history"
	metaRNG     = "rng"

	checkpointFormat = "bitnet-mesh-train-v1"
)

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// SaveCheckpoint writes the complete training state to path (a safetensors
// file, written atomically): master weights under their Hugging Face names,
// AdamW moments under optim.m.* and optim.v.*, and in the metadata the step,
// the data position (epoch, index: with the seed, the whole RNG state), the
// options, the config and the loss history.
func (t *Trainer) SaveCheckpoint(path string) error {
	e := t.eng
	var ts []safetensors.Tensor
	for _, s := range e.lay.specs {
		for _, kind := range []struct {
			prefix string
			data   []float32
		}{{"", e.params}, {"optim.m.", t.adam.m}, {"optim.v.", t.adam.v}} {
			ts = append(ts, safetensors.Tensor{Name: kind.prefix + s.Name, DType: safetensors.F32, Shape: s.Shape, Data: f32Bytes(kind.data[s.Off : s.Off+s.N])})
		}
	}
	opts, err := json.Marshal(t.opt)
	if err != nil {
		return fmt.Errorf("train: checkpoint options: %w", err)
	}
	hist, err := json.Marshal(t.history)
	if err != nil {
		return fmt.Errorf("train: checkpoint history: %w", err)
	}
	meta := map[string]string{
		metaFormat:  checkpointFormat,
		metaStep:    strconv.Itoa(t.step),
		metaAdam:    strconv.Itoa(t.adam.step),
		metaEpoch:   strconv.Itoa(t.cursor.epoch),
		metaPos:     strconv.Itoa(t.cursor.pos),
		metaTokens:  strconv.FormatInt(t.data.tokens, 10),
		metaOptions: string(opts),
		metaConfig:  string(hfConfigJSON(t.cfg, "float32", !t.opt.FullPrec, false)),
		metaHistory: string(hist),
		metaRNG:     fmt.Sprintf("pcg seed=%d epoch=%d", t.opt.Seed, t.cursor.epoch),
	}
	if err := safetensors.WriteFile(path, ts, meta); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// LoadCheckpoint restores the state SaveCheckpoint wrote. The checkpoint
// must come from the same model config, batch, seq, accumulation, seed,
// precision and data (token count); the remaining options of t are kept.
func (t *Trainer) LoadCheckpoint(path string) error {
	f, err := safetensors.Open(path)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	defer f.Close()
	meta := f.Metadata()
	if meta[metaFormat] != checkpointFormat {
		return fmt.Errorf("train: %s: format %q, want %q", path, meta[metaFormat], checkpointFormat)
	}
	var o Options
	if err := json.Unmarshal([]byte(meta[metaOptions]), &o); err != nil {
		return fmt.Errorf("train: %s: options: %w", path, err)
	}
	if o.Batch != t.opt.Batch || o.Seq != t.opt.Seq || o.Accum != t.opt.Accum || o.Seed != t.opt.Seed || o.FullPrec != t.opt.FullPrec {
		return fmt.Errorf("train: %s was written with batch %d seq %d accum %d seed %d full_precision %v, this run has %d %d %d %d %v",
			path, o.Batch, o.Seq, o.Accum, o.Seed, o.FullPrec, t.opt.Batch, t.opt.Seq, t.opt.Accum, t.opt.Seed, t.opt.FullPrec)
	}
	if want := string(hfConfigJSON(t.cfg, "float32", !t.opt.FullPrec, false)); meta[metaConfig] != want {
		return fmt.Errorf("train: %s holds a model config that differs from this run's", path)
	}
	if tok := strconv.FormatInt(t.data.tokens, 10); meta[metaTokens] != tok {
		return fmt.Errorf("train: %s was trained on %s tokens, this dataset has %s", path, meta[metaTokens], tok)
	}
	ints := make([]int, 4)
	for i, k := range []string{metaStep, metaAdam, metaEpoch, metaPos} {
		v, err := strconv.Atoi(meta[k])
		if err != nil || v < 0 {
			return fmt.Errorf("train: %s: metadata %s = %q is not a non-negative integer", path, k, meta[k])
		}
		ints[i] = v
	}
	if ints[3] > t.data.TrainSeqs {
		return fmt.Errorf("train: %s: data position %d exceeds %d training sequences", path, ints[3], t.data.TrainSeqs)
	}
	var hist []Point
	if err := json.Unmarshal([]byte(meta[metaHistory]), &hist); err != nil {
		return fmt.Errorf("train: %s: history: %w", path, err)
	}
	e := t.eng
	for _, s := range e.lay.specs {
		for _, kind := range []struct {
			prefix string
			data   []float32
		}{{"", e.params}, {"optim.m.", t.adam.m}, {"optim.v.", t.adam.v}} {
			name := kind.prefix + s.Name
			ten, ok := f.Tensor(name)
			if !ok {
				return fmt.Errorf("train: %s: missing tensor %s", path, name)
			}
			if ten.DType != safetensors.F32 {
				return fmt.Errorf("train: %s: tensor %s has dtype %s, want F32", path, name, ten.DType)
			}
			if err := ten.Float32Into(kind.data[s.Off : s.Off+s.N]); err != nil {
				return fmt.Errorf("train: %s: %w", path, err)
			}
		}
	}
	t.step, t.adam.step, t.cursor.epoch, t.cursor.pos = ints[0], ints[1], ints[2], ints[3]
	t.history = hist
	t.eng.wqStale = true
	return nil
}
