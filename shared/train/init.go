package train

import (
	"fmt"

	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/safetensors"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// InitFromHF replaces the parameters by the weights of a Hugging Face
// BitNet directory, to fine-tune it: its master weights (F32, F16 or BF16)
// when it has them, else, for pre-quantised linears (quantization_mode
// offline), their ternary values times their scale (re-ternarising those
// keeps the codes; the absmean scale shrinks by the share of non-zero
// weights, which training then adjusts). The directory's shapes
// must match the trainer's config. Optimiser state and step are unchanged
// (call it before the first Step).
func (t *Trainer) InitFromHF(dir string) error {
	c, err := model.LoadConfigHF(dir)
	if err != nil {
		return err
	}
	if !sameShape(c, t.cfg) {
		return fmt.Errorf("train: %s holds a %v model, this run trains %v", dir, c, t.cfg)
	}
	ck, err := safetensors.OpenCheckpoint(dir)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	defer ck.Close()
	e := t.eng
	var packed *model.Weights // loaded on the first non-float linear
	for k, s := range e.lay.specs {
		if s.N == 0 {
			continue
		}
		ten, ok := ck.Tensor(s.Name)
		if !ok {
			return fmt.Errorf("train: %s: missing tensor %s", dir, s.Name)
		}
		dst := e.params[s.Off : s.Off+s.N]
		switch ten.DType {
		case safetensors.F32, safetensors.F16, safetensors.BF16:
			if !equalInts(ten.Shape, s.Shape) {
				return fmt.Errorf("train: %s: tensor %s has shape %v, want %v", dir, s.Name, ten.Shape, s.Shape)
			}
			if err := ten.Float32Into(dst); err != nil {
				return fmt.Errorf("train: %s: %w", dir, err)
			}
			continue
		}
		li, ti := (k-1)/tensorsPerLayer, (k-1)%tensorsPerLayer
		if k == 0 || li >= t.cfg.NumLayers || ti < tQ {
			return fmt.Errorf("train: %s: tensor %s has dtype %s, want F32, F16 or BF16", dir, s.Name, ten.DType)
		}
		if packed == nil {
			if packed, err = model.LoadHF(dir); err != nil {
				return fmt.Errorf("train: %w", err)
			}
		}
		L := packed.Layers[li]
		m := [...]*ternary.Matrix{tQ: L.Q, tK: L.K, tV: L.V, tO: L.O, tGate: L.Gate, tUp: L.Up, tDown: L.Down}[ti]
		row := make([]int8, 0, m.Cols)
		for r := 0; r < m.Rows; r++ {
			row = m.Row(row[:0], r)
			for i, v := range row {
				dst[r*m.Cols+i] = float32(v) * m.Scale
			}
		}
	}
	e.wqStale = true
	return nil
}

// sameShape reports whether two configs describe the same computation
// (token ids such as BOS and EOS may differ).
func sameShape(a, b model.Config) bool {
	return a.VocabSize == b.VocabSize && a.HiddenSize == b.HiddenSize && a.IntermediateSize == b.IntermediateSize &&
		a.NumLayers == b.NumLayers && a.NumHeads == b.NumHeads && a.NumKVHeads == b.NumKVHeads &&
		a.HeadDim == b.HeadDim && a.RopeTheta == b.RopeTheta && a.RMSNormEps == b.RMSNormEps &&
		a.TieWordEmbeddings == b.TieWordEmbeddings && a.HiddenAct == b.HiddenAct && a.Family() == b.Family()
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
