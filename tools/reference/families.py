"""Independent fp32 PyTorch reference of every BitNet family the engine runs.

Written from the public modeling code (docs/families.md has the line-level
notes):
- bitnet        transformers models/bitnet/modeling_bitnet.py (2B4T; see bitnet_ref.py)
- bitnet-b1.58  1bitLLM bitnet_b1_58-* modeling_bitnet.py + utils_quant.py:
                LLaMA block, SiLU gated MLP, self_attn.inner_attn_ln before
                o_proj, mlp.ffn_layernorm before down_proj, BitLinear =
                activation_quant(x) . weight_quant(W) on fp16 masters
- llama         transformers models/llama/modeling_llama.py with the bitnet
                quantizer (integrations/bitnet.py): BitLinear divides by
                weight_scale ("bitlinear"), AutoBitLinear multiplies
                ("autobitlinear"); use_rms_norm puts an RMSNorm before the
                activation quantiser of every BitLinear
- qwen3         transformers models/qwen3/modeling_qwen3.py (q_norm/k_norm
                per head before RoPE) + the BitNet embedding models' BitLinear:
                x -> RMSNorm(x, <proj>.norm.weight) -> int8 -> ternary matmul
- gemma3        transformers models/gemma3/modeling_gemma3.py (text): embedding
                times sqrt(hidden), Gemma3RMSNorm = x_hat * (1 + w),
                sandwich norms, GELU-tanh, query_pre_attn_scalar, sliding
                window layers with their own RoPE base, + the same BitLinear
Everything runs in torch.float32 whatever the stored dtype.
"""

import math

import torch
import torch.nn.functional as F

import bitnet_ref as ref

LINEARS = ref.LINEARS  # q, k, v, o, gate, up, down (HF module names)


# ---------------------------------------------------------------- spec

def family_of(cfg):
    arch = (cfg.get("architectures") or [""])[0]
    mt = cfg.get("model_type", "")
    if arch == "BitNetForCausalLM" or mt == "bitnet":
        return "bitnet"
    if arch == "BitnetForCausalLM":
        return "bitnet-b1.58"
    if arch.startswith("Qwen3") or mt == "qwen3":
        return "qwen3"
    if arch.startswith("Gemma3") or mt in ("gemma3_text", "gemma3"):
        return "gemma3"
    if arch == "LlamaForCausalLM" or mt == "llama":
        return "llama"
    raise ValueError(f"unknown family: {arch} / {mt}")


def spec_of(cfg):
    """The forward-pass recipe of a config.json (dict), as the modeling code reads it."""
    fam = family_of(cfg)
    q = cfg.get("quantization_config") or {}
    hd = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    s = {
        "family": fam,
        "eps": float(cfg.get("rms_norm_eps", 1e-6)),
        "act": cfg.get("hidden_act") or cfg.get("hidden_activation") or "silu",
        "head_dim": hd,
        "sub_norms": fam in ("bitnet", "bitnet-b1.58"),
        "qk_norm": fam in ("qwen3", "gemma3"),
        "sandwich": fam == "gemma3",
        "norm_plus_one": fam == "gemma3",
        "embed_scale": math.sqrt(cfg["hidden_size"]) if fam == "gemma3" else None,
        "scaling": (cfg.get("query_pre_attn_scalar", 256) if fam == "gemma3" else hd) ** -0.5,
        "proj_norms": fam in ("qwen3", "gemma3") or bool(q.get("use_rms_norm")),
        "proj_eps": float(q.get("rms_norm_eps", 1e-6)) if q.get("use_rms_norm") else float(cfg.get("rms_norm_eps", 1e-6)),
        "rope_theta": float(cfg.get("rope_theta", 10000.0)),
        "rope_scaling": cfg.get("rope_scaling"),
        "sliding": None,
        "local_theta": None,
    }
    if fam == "gemma3":
        n = cfg["num_hidden_layers"]
        types = cfg.get("layer_types")
        if types is None:
            pat = cfg.get("sliding_window_pattern", 6)
            types = ["sliding_attention" if (i + 1) % pat else "full_attention" for i in range(n)]
        s["sliding"] = [t == "sliding_attention" for t in types]
        s["window"] = cfg.get("sliding_window", 4096)
        s["local_theta"] = float(cfg.get("rope_local_base_freq", 10000.0))
    return s


# ---------------------------------------------------------------- pieces

def rms_norm(x, w, eps, plus_one=False):
    """LlamaRMSNorm / Qwen3RMSNorm (w * x_hat) or Gemma3RMSNorm (x_hat * (1 + w)), fp32."""
    var = x.pow(2).mean(-1, keepdim=True)
    xh = x * torch.rsqrt(var + eps)
    return xh * (1.0 + w) if plus_one else w * xh


def inv_freq(theta, d, scaling=None):
    """transformers' default RoPE inverse frequencies, then linear or llama3
    scaling (modeling_rope_utils._compute_{linear_scaling,llama3}_parameters)."""
    f = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
    if not scaling:
        return f
    typ = scaling.get("rope_type", scaling.get("type", "default"))
    if typ == "default":
        return f
    if typ == "linear":
        return f / scaling["factor"]
    if typ == "llama3":
        factor = scaling["factor"]
        low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
        old = scaling["original_max_position_embeddings"]
        low_wave, high_wave = old / low, old / high
        wavelen = 2 * math.pi / f
        fl = torch.where(wavelen > low_wave, f / factor, f)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * fl / factor + smooth * fl
        medium = ~(wavelen < high_wave) * ~(wavelen > low_wave)
        return torch.where(medium, smoothed, fl)
    raise ValueError(f"rope scaling {typ} not supported")


def cos_sin(freq, n_pos):
    pos = torch.arange(n_pos, dtype=torch.int64).float()
    emb = torch.cat((pos[:, None] * freq[None, :],) * 2, dim=-1)
    return emb.cos(), emb.sin()


def act_fn(name):
    if name == "relu2":
        return lambda g: F.relu(g).square()
    if name in ("silu", "swish"):
        return F.silu
    if name == "gelu_pytorch_tanh":
        return lambda g: F.gelu(g, approximate="tanh")
    raise ValueError(f"activation {name}")


# ---------------------------------------------------------------- BitLinear flavours

def make_lin(weights, spec, mode, linear_class="autobitlinear", ste=False):
    """lin(name, x) for name = "<prefix>layers.N.self_attn.q_proj" etc.

    mode "online": W is a float master, ternarised with absmean (WeightQuant /
    1bitLLM weight_quant); "offline": W is HF-packed uint8 with weight_scale,
    whose meaning linear_class sets (bitlinear: divide, autobitlinear:
    multiply). With spec["proj_norms"] the input is RMS-normalised by the
    projection's own norm first (<name>.norm.weight, or <name>.rms_norm.weight,
    or ones). ste: straight-through estimators for training.
    """
    cache = {}

    def proj_norm(name, x):
        if not spec["proj_norms"]:
            return x
        w = weights.get(name + ".norm.weight")
        if w is None:
            w = weights.get(name + ".rms_norm.weight")
        if w is None:
            w = torch.ones(x.shape[-1])
        return rms_norm(x, w, spec["proj_eps"])

    def lin(name, x):
        x = proj_norm(name, x)
        if ste:
            w = weights[name + ".weight"]
            wq = w + (ref.weight_quant(w) - w).detach()
            xq = x + (ref.act_quant(x) - x).detach()
            return F.linear(xq, wq)
        if mode == "online":
            if name not in cache:
                cache[name] = ref.weight_quant(weights[name + ".weight"])
            return F.linear(ref.act_quant(x), cache[name])
        if name not in cache:
            cache[name] = ref.unpack(weights[name + ".weight"])
        t, ws = cache[name], weights[name + ".weight_scale"]
        if linear_class == "bitlinear":
            # transformers BitLinear: y = (x_q . T) / (s_x * weight_scale)
            s = 127 / x.abs().max(dim=-1, keepdim=True).values.clamp(min=1e-5)
            xq = (x * s).round().clamp(-128, 127)
            return F.linear(xq, t) / (s * ws)
        return F.linear(ref.act_quant(x), t) * ws  # AutoBitLinear offline
    return lin


# ---------------------------------------------------------------- forward

def forward(cfg, weights, lin, ids, prefix="model.", hidden_only=False, capture=None):
    """Logits [B, L, vocab] (or the final-norm hidden states) for ids [B, L]."""
    sp = spec_of(cfg)
    eps, hd = sp["eps"], sp["head_dim"]
    nh, nkv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    plus = sp["norm_plus_one"]
    B, L = ids.shape
    x = F.embedding(ids, weights[prefix + "embed_tokens.weight"])
    if sp["embed_scale"] is not None:
        x = x * torch.tensor(sp["embed_scale"], dtype=torch.float32)
    glob = cos_sin(inv_freq(sp["rope_theta"], hd, sp["rope_scaling"]), L)
    loc = cos_sin(inv_freq(sp["local_theta"], hd), L) if sp["local_theta"] else glob
    causal = torch.full((L, L), float("-inf")).triu(1)
    act = act_fn(sp["act"])
    for i in range(cfg["num_hidden_layers"]):
        p = f"{prefix}layers.{i}."
        sliding = sp["sliding"] is not None and sp["sliding"][i]
        cos, sin = loc if sliding else glob
        mask = causal
        if sliding:  # keys less than `window` positions back (masking_utils sliding_window_overlay)
            idx = torch.arange(L)
            far = (idx[None, :] <= idx[:, None] - sp["window"])
            mask = causal.masked_fill(far, float("-inf"))
        h = rms_norm(x, weights[p + "input_layernorm.weight"], eps, plus)
        q = lin(p + "self_attn.q_proj", h).view(B, L, nh, hd)
        k = lin(p + "self_attn.k_proj", h).view(B, L, nkv, hd)
        v = lin(p + "self_attn.v_proj", h).view(B, L, nkv, hd).transpose(1, 2)
        if sp["qk_norm"]:
            q = rms_norm(q, weights[p + "self_attn.q_norm.weight"], eps, plus)
            k = rms_norm(k, weights[p + "self_attn.k_norm.weight"], eps, plus)
        q, k = q.transpose(1, 2), k.transpose(1, 2)
        q = q * cos + ref.rotate_half(q) * sin
        k = k * cos + ref.rotate_half(k) * sin
        rep = nh // nkv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = torch.matmul(q, k.transpose(2, 3)) * sp["scaling"] + mask
        att = torch.softmax(att, dim=-1)
        a = torch.matmul(att, v).transpose(1, 2).reshape(B, L, nh * hd)
        if sp["sub_norms"]:
            name = "self_attn.inner_attn_ln" if sp["family"] == "bitnet-b1.58" else "self_attn.attn_sub_norm"
            a = rms_norm(a, weights[p + name + ".weight"], eps)
        a = lin(p + "self_attn.o_proj", a)
        if sp["sandwich"]:
            a = rms_norm(a, weights[p + "post_attention_layernorm.weight"], eps, plus)
            h = rms_norm(x + a, weights[p + "pre_feedforward_layernorm.weight"], eps, plus)
        else:
            h = rms_norm(x + a, weights[p + "post_attention_layernorm.weight"], eps)
        x = x + a
        m = act(lin(p + "mlp.gate_proj", h)) * lin(p + "mlp.up_proj", h)
        if sp["sub_norms"]:
            name = "mlp.ffn_layernorm" if sp["family"] == "bitnet-b1.58" else "mlp.ffn_sub_norm"
            m = rms_norm(m, weights[p + name + ".weight"], eps)
        d = lin(p + "mlp.down_proj", m)
        if sp["sandwich"]:
            d = rms_norm(d, weights[p + "post_feedforward_layernorm.weight"], eps, plus)
        x = x + d
        if capture is not None:
            capture[f"layer{i}.out"] = x
    x = rms_norm(x, weights[prefix + "norm.weight"], eps, plus)
    if hidden_only:
        return x
    head = weights.get("lm_head.weight")
    if head is None or cfg.get("tie_word_embeddings", sp["family"] == "gemma3"):
        head = weights[prefix + "embed_tokens.weight"]
    return F.linear(x, head)


def pool(cfg, hidden, mode="last", normalize=True):
    """Sentence embedding of hidden [L, H]: last token (or mean), L2-normalised
    (torch.nn.functional.normalize, as sentence-transformers' Normalize)."""
    v = hidden[-1] if mode == "last" else hidden.mean(0)
    return F.normalize(v, p=2, dim=-1) if normalize else v


# ---------------------------------------------------------------- parameters

def shapes(cfg, prefix="model."):
    """Trainable parameter names and shapes of a family's checkpoint, with
    per-projection norm names (".norm.weight")."""
    sp = spec_of(cfg)
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    hd = sp["head_dim"]
    nh, nkv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    out = {prefix + "embed_tokens.weight": (V, H), prefix + "norm.weight": (H,)}
    tied = cfg.get("tie_word_embeddings", sp["family"] == "gemma3")
    if not tied:
        out["lm_head.weight"] = (V, H)
    lin_shapes = {
        "self_attn.q_proj": (nh * hd, H), "self_attn.k_proj": (nkv * hd, H),
        "self_attn.v_proj": (nkv * hd, H), "self_attn.o_proj": (H, nh * hd),
        "mlp.gate_proj": (I, H), "mlp.up_proj": (I, H), "mlp.down_proj": (H, I),
    }
    for i in range(cfg["num_hidden_layers"]):
        p = f"{prefix}layers.{i}."
        out[p + "input_layernorm.weight"] = (H,)
        out[p + "post_attention_layernorm.weight"] = (H,)
        if sp["sandwich"]:
            out[p + "pre_feedforward_layernorm.weight"] = (H,)
            out[p + "post_feedforward_layernorm.weight"] = (H,)
        if sp["sub_norms"]:
            b158 = sp["family"] == "bitnet-b1.58"
            out[p + ("self_attn.inner_attn_ln" if b158 else "self_attn.attn_sub_norm") + ".weight"] = (nh * hd,)
            out[p + ("mlp.ffn_layernorm" if b158 else "mlp.ffn_sub_norm") + ".weight"] = (I,)
        if sp["qk_norm"]:
            out[p + "self_attn.q_norm.weight"] = (hd,)
            out[p + "self_attn.k_norm.weight"] = (hd,)
        for name, shp in lin_shapes.items():
            out[p + name + ".weight"] = shp
            if sp["proj_norms"]:
                out[p + name + ".norm.weight"] = (shp[1],)
    return out


def init_params(cfg, seed, prefix="model."):
    """normal(0, 0.02) matrices; norms 1 (Gemma3's own norms 0: they multiply by 1 + w)."""
    sp = spec_of(cfg)
    g = torch.Generator().manual_seed(seed)
    params = {}
    for name, shape in shapes(cfg, prefix).items():
        if len(shape) == 1:
            own = sp["norm_plus_one"] and not name.endswith(".norm.weight")
            t = torch.zeros(shape) if own else torch.ones(shape)
        else:
            t = torch.randn(shape, generator=g) * 0.02
        params[name] = torch.nn.Parameter(t)
    return params
