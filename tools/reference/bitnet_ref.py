"""Independent fp32 PyTorch reference of Hugging Face BitNetForCausalLM.

Follows transformers' models/bitnet/modeling_bitnet.py and
integrations/bitnet.py (AutoBitLinear, WeightQuant, ActQuant, pack/unpack);
see README.md for the exact lines. Everything is computed in torch.float32,
whatever dtype the weights were stored in.
"""

import math

import torch
import torch.nn.functional as F

LINEARS = (
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
    "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj",
)
VALUES_PER_BYTE = 4


# ---------------------------------------------------------------- quantisers

def act_quant(x):
    """Per-token absmax int8, dequantised (HF ActQuant): exact same fp32 ops."""
    s = 127 / x.abs().max(dim=-1, keepdim=True).values.clamp(min=1e-5)
    return (x * s).round().clamp(-128, 127) / s


def weight_scale_inv(w):
    """HF WeightQuant's s = 1 / mean|W| (clamped), fp32."""
    return 1.0 / w.abs().mean().clamp(min=1e-5)


def ternarize(w):
    """Ternary codes T = clamp(round(W * s), -1, 1) with s = 1/mean|W| (HF ops)."""
    s = weight_scale_inv(w)
    return (w * s).round().clamp(-1, 1), s


def weight_quant(w):
    """HF WeightQuant forward (online flavour): T / s."""
    t, s = ternarize(w)
    return t / s


def pack(t):
    """HF pack_weights: int codes [-1,1] of shape [out, in] -> uint8 [out/4, in].

    Row r of the ternary matrix lives in packed row r % (out/4), bits
    2*(r // (out/4)) .. +1, stored as code+1 (0 -> -1, 1 -> 0, 2 -> +1).
    """
    out = t.shape[0]
    if out % VALUES_PER_BYTE:
        raise ValueError(f"out_features {out} not a multiple of 4")
    rows = out // VALUES_PER_BYTE
    u = (t.to(torch.int16) + 1).to(torch.uint8)
    packed = torch.zeros((rows, t.shape[1]), dtype=torch.uint8)
    for i in range(VALUES_PER_BYTE):
        packed |= u[i * rows:(i + 1) * rows] << (2 * i)
    return packed


def unpack(packed):
    """HF unpack_weights: uint8 [out/4, in] -> fp32 codes [out, in]."""
    rows = packed.shape[0]
    parts = [((packed >> (2 * i)) & 3) for i in range(VALUES_PER_BYTE)]
    u = torch.cat(parts, dim=0)
    if (u == 3).any():
        raise ValueError("packed ternary weight holds the invalid code 3")
    return u.to(torch.float32) - 1


# ---------------------------------------------------------------- linears

def online_linear(weights):
    """AutoBitLinear(online_quant=True): F.linear(ActQuant(x), WeightQuant(W))."""
    cache = {}

    def lin(name, x):
        if name not in cache:
            cache[name] = weight_quant(weights[name + ".weight"])
        return F.linear(act_quant(x), cache[name])
    return lin


def offline_linear(weights):
    """AutoBitLinear(online_quant=False): F.linear(ActQuant(x), T) * weight_scale."""
    cache = {}

    def lin(name, x):
        if name not in cache:
            cache[name] = unpack(weights[name + ".weight"])
        return F.linear(act_quant(x), cache[name]) * weights[name + ".weight_scale"]
    return lin


def ste_linear(params):
    """Training: HF WeightQuant/ActQuant with straight-through gradients."""
    def lin(name, x):
        w = params[name + ".weight"]
        wq = w + (weight_quant(w) - w).detach()
        xq = x + (act_quant(x) - x).detach()
        return F.linear(xq, wq)
    return lin


# ---------------------------------------------------------------- model

def rms_norm(x, w, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def rope_cos_sin(cfg, n_pos, head_dim):
    """HF default RoPE (rotate-half): inv_freq = 1 / theta^(2i/d), fp32."""
    theta = float(cfg["rope_theta"])
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    pos = torch.arange(n_pos, dtype=torch.int64).float()
    freqs = pos[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def head_dim_of(cfg):
    return cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]


def forward(cfg, weights, lin, ids, capture=None):
    """Logits [B, L, vocab] for token ids [B, L] (no KV cache: full causal pass).

    weights: name -> fp32 tensor for embeddings, norms and lm_head;
    lin(name, x): the BitLinear flavour. capture (dict) receives named hidden
    states for debugging.
    """
    eps = float(cfg["rms_norm_eps"])
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = head_dim_of(cfg)
    B, L = ids.shape
    x = F.embedding(ids, weights["model.embed_tokens.weight"])
    if capture is not None:
        capture["embed"] = x
    cos, sin = rope_cos_sin(cfg, L, hd)
    mask = torch.full((L, L), float("-inf")).triu(1)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, weights[p + "input_layernorm.weight"], eps)
        q = lin(p + "self_attn.q_proj", h).view(B, L, nh, hd).transpose(1, 2)
        k = lin(p + "self_attn.k_proj", h).view(B, L, nkv, hd).transpose(1, 2)
        v = lin(p + "self_attn.v_proj", h).view(B, L, nkv, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if capture is not None:
            capture[f"layer{i}.input_norm"] = h
            capture[f"layer{i}.q_rope"] = q.transpose(1, 2).reshape(B, L, nh * hd)
            capture[f"layer{i}.k_rope"] = k.transpose(1, 2).reshape(B, L, nkv * hd)
            capture[f"layer{i}.v"] = v.transpose(1, 2).reshape(B, L, nkv * hd)
        rep = nh // nkv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = torch.matmul(q, k.transpose(2, 3)) * (hd ** -0.5) + mask
        att = torch.softmax(att, dim=-1)  # fp32 in the reference (HF: dtype=float32)
        a = torch.matmul(att, v).transpose(1, 2).reshape(B, L, nh * hd)
        if capture is not None:
            capture[f"layer{i}.attn"] = a
        a = rms_norm(a, weights[p + "self_attn.attn_sub_norm.weight"], eps)
        a = lin(p + "self_attn.o_proj", a)
        x = x + a
        if capture is not None:
            capture[f"layer{i}.attn_residual"] = x
        h = rms_norm(x, weights[p + "post_attention_layernorm.weight"], eps)
        g = lin(p + "mlp.gate_proj", h)
        u = lin(p + "mlp.up_proj", h)
        m = rms_norm(F.relu(g).square() * u, weights[p + "mlp.ffn_sub_norm.weight"], eps)
        if capture is not None:
            capture[f"layer{i}.ffn_sub_norm"] = m
        x = x + lin(p + "mlp.down_proj", m)
        if capture is not None:
            capture[f"layer{i}.out"] = x
    x = rms_norm(x, weights["model.norm.weight"], eps)
    if capture is not None:
        capture["final_norm"] = x
    head = weights.get("lm_head.weight")
    if head is None or cfg.get("tie_word_embeddings"):
        head = weights["model.embed_tokens.weight"]
    return F.linear(x, head)


def init_params(cfg, seed):
    """Fresh trainable fp32 parameters with HF names (normal(0, 0.02), norms 1)."""
    g = torch.Generator().manual_seed(seed)
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    hd = head_dim_of(cfg)
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    std = cfg.get("initializer_range", 0.02)
    shapes = {"model.embed_tokens.weight": (V, H), "model.norm.weight": (H,)}
    if not cfg["tie_word_embeddings"]:
        shapes["lm_head.weight"] = (V, H)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes.update({
            p + "input_layernorm.weight": (H,),
            p + "post_attention_layernorm.weight": (H,),
            p + "self_attn.attn_sub_norm.weight": (H,),
            p + "mlp.ffn_sub_norm.weight": (I,),
            p + "self_attn.q_proj.weight": (nh * hd, H),
            p + "self_attn.k_proj.weight": (nkv * hd, H),
            p + "self_attn.v_proj.weight": (nkv * hd, H),
            p + "self_attn.o_proj.weight": (H, nh * hd),
            p + "mlp.gate_proj.weight": (I, H),
            p + "mlp.up_proj.weight": (I, H),
            p + "mlp.down_proj.weight": (H, I),
        })
    params = {}
    for name, shape in shapes.items():
        if len(shape) == 1:
            t = torch.ones(shape)
        else:
            t = torch.randn(shape, generator=g) * std
        params[name] = torch.nn.Parameter(t)
    return params


def nll_per_position(logits, ids):
    """nll[i] = -log p(ids[i+1] | ids[..i]), natural log, for a [L] sequence."""
    logp = torch.log_softmax(logits.double(), dim=-1)
    tgt = ids[1:]
    return -logp[:-1].gather(-1, tgt[:, None]).squeeze(-1)


def mean(xs):
    return math.fsum(xs) / len(xs)
