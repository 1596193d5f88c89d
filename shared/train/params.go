package train

import (
	"fmt"
	"math/rand/v2"

	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// tensorSpec places one named tensor in the flat parameter vector.
type tensorSpec struct {
	Name   string // Hugging Face name, e.g. model.layers.0.self_attn.q_proj.weight
	Shape  []int
	Off, N int
	Norm   bool // RMSNorm weight: initialised to 1, never decayed
	Decay  bool // receives decoupled weight decay
}

// layout is the ordered list of a model's tensors in the flat vector.
type layout struct {
	specs []tensorSpec
	size  int
}

// Tensor indices within a layer, in layout order.
const (
	tAttnNorm = iota
	tAttnSubNorm
	tFFNNorm
	tFFNSubNorm
	tQ
	tK
	tV
	tO
	tGate
	tUp
	tDown
	tensorsPerLayer
)

var layerNames = [tensorsPerLayer]string{
	"input_layernorm.weight", "self_attn.attn_sub_norm.weight", "post_attention_layernorm.weight",
	"mlp.ffn_sub_norm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
	"self_attn.v_proj.weight", "self_attn.o_proj.weight", "mlp.gate_proj.weight",
	"mlp.up_proj.weight", "mlp.down_proj.weight",
}

// layerName returns the Hugging Face name of layer tensor t in c's family:
// 1bitLLM's sub-norms are self_attn.inner_attn_ln and mlp.ffn_layernorm.
func layerName(c model.Config, t int) string {
	if c.Family() == model.FamilyBitNetB158 {
		switch t {
		case tAttnSubNorm:
			return "self_attn.inner_attn_ln.weight"
		case tFFNSubNorm:
			return "mlp.ffn_layernorm.weight"
		}
	}
	return layerNames[t]
}

// Trainable reports whether the trainer runs c's family: BitNet 2B4T
// (bitnet), 1bitLLM (bitnet-b1.58) and Llama-style BitNet (llama) without
// per-projection norms or RoPE scaling.
func Trainable(c model.Config) error {
	switch f := c.Family(); {
	case f != model.FamilyBitNet && f != model.FamilyBitNetB158 && f != model.FamilyLlama:
		return fmt.Errorf("%w: the trainer runs the bitnet, bitnet-b1.58 and llama families, not %s", ErrOptions, f)
	case c.ProjNorms:
		return fmt.Errorf("%w: per-projection norms (use_rms_norm) are not trainable here", ErrOptions)
	case c.RopeScaling != nil:
		return fmt.Errorf("%w: rope_scaling %s is not trainable here", ErrOptions, c.RopeScaling.Type)
	case c.HiddenAct != model.ActReLU2 && c.HiddenAct != model.ActSiLU:
		return fmt.Errorf("%w: activation %s is not trainable here (relu2, silu are)", ErrOptions, c.HiddenAct)
	}
	return nil
}

// newLayout lists the tensors of c: embedding, then per layer the norms and
// linears, then the final norm and the untied head. A family without
// sub-norms (llama) keeps their slots with no elements. Weight decay applies to
// the linears and to whatever serves as the output head (the embedding when
// tied), never to norms or an untied input embedding.
func newLayout(c model.Config) layout {
	var l layout
	add := func(name string, norm, decay bool, shape ...int) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		l.specs = append(l.specs, tensorSpec{Name: name, Shape: shape, Off: l.size, N: n, Norm: norm, Decay: decay})
		l.size += n
	}
	h, q, kv, in := c.HiddenSize, c.QDim(), c.KVDim(), c.IntermediateSize
	add("model.embed_tokens.weight", false, c.TieWordEmbeddings, c.VocabSize, h)
	for i := 0; i < c.NumLayers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		shapes := [tensorsPerLayer][]int{{h}, {q}, {h}, {in}, {q, h}, {kv, h}, {kv, h}, {h, q}, {in, h}, {in, h}, {h, in}}
		if !c.SubNorms() {
			shapes[tAttnSubNorm], shapes[tFFNSubNorm] = []int{0}, []int{0}
		}
		for t, s := range shapes {
			add(p+layerName(c, t), t < tQ, t >= tQ, s...)
		}
	}
	add("model.norm.weight", true, false, h)
	if !c.TieWordEmbeddings {
		add("lm_head.weight", false, true, c.VocabSize, h)
	}
	return l
}

// view slices a flat vector (parameters or gradients) into named tensors.
type view[F Float] struct {
	embed, norm, head []F
	layers            [][tensorsPerLayer][]F
}

func makeView[F Float](l layout, c model.Config, data []F) view[F] {
	v := view[F]{layers: make([][tensorsPerLayer][]F, c.NumLayers)}
	k := 0
	next := func() []F {
		s := l.specs[k]
		k++
		return data[s.Off : s.Off+s.N : s.Off+s.N]
	}
	v.embed = next()
	for i := range v.layers {
		for t := 0; t < tensorsPerLayer; t++ {
			v.layers[i][t] = next()
		}
	}
	v.norm = next()
	if c.TieWordEmbeddings {
		v.head = v.embed
	} else {
		v.head = next()
	}
	return v
}

// initParams fills data with the BitNet recipe's initialisation: norms 1,
// everything else normal(0, std), from a PCG stream seeded with seed.
func initParams[F Float](l layout, data []F, seed uint64, std float64) {
	r := rand.New(rand.NewPCG(seed, 0x6269746e65742d31)) // "bitnet-1"
	for _, s := range l.specs {
		d := data[s.Off : s.Off+s.N]
		for i := range d {
			if s.Norm {
				d[i] = 1
			} else {
				d[i] = F(r.NormFloat64() * std)
			}
		}
	}
}
