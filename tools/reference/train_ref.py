"""PyTorch autograd reference for quantisation-aware training of BitNet b1.58.

The forward pass is bitnet_ref.forward (HF BitNetForCausalLM semantics); this
module supplies the training BitLinear (straight-through estimators), the
loss, AdamW with the project's parameter groups, clipping and the learning
rate schedule. TRAINING.md states every choice; the Go trainer in
shared/train must make the same ones.

Quantisers use the exact float32 operations of the Go engine:
- activations (kernels.QuantizeRow): per token s = 127 / max(max|x|, 1e-5),
  q = clamp(round_half_even(x * s), -128, 127), value q / s;
- weights (ternary.Quantize): m = float32(sum_f64 |W| / N) clamped to 1e-5,
  inv = 1 / m (fp32), T = clamp(round(W * inv), -1, 1), value T * (1 / inv).
A float64 model quantises in float32 and widens the result, as the Go engine
does for its float64 instantiation.

The STE returns exactly q(x) in the forward pass and passes the incoming
gradient through unchanged; it has the same gradient as the usual
x + (q(x) - x).detach(), whose value can differ from q(x) by one ulp.
"""

import math

import torch
import torch.nn.functional as F

import bitnet_ref

BETAS = (0.9, 0.95)
ADAM_EPS = 1e-8
MIN_ABS_MEAN = 1e-5


# ---------------------------------------------------------------- quantisers

def act_quant_f32(x):
    """Per-token absmax int8 in float32 (kernels.QuantizeRow), dequantised."""
    return bitnet_ref.act_quant(x.detach().float()).to(x.dtype)


def weight_quant_f32(w):
    """Absmean ternary in float32 (ternary.Quantize), dequantised: T * (1/inv)."""
    w32 = w.detach().float()
    m = (w32.double().abs().sum() / w32.numel()).float().clamp(min=MIN_ABS_MEAN)
    inv = 1.0 / m
    t = (w32 * inv).round().clamp(-1, 1)
    return (t * (1.0 / inv)).to(w.dtype)


class _Straight(torch.autograd.Function):
    """Forward: the precomputed quantised value; backward: identity to x."""

    @staticmethod
    def forward(ctx, x, q):
        return q.clone()

    @staticmethod
    def backward(ctx, g):
        return g, None


def ste(x, quant):
    return _Straight.apply(x, quant(x))


def detach_ste(x, quant):
    """The textbook form x + (q(x) - x).detach(), for comparison only."""
    return x + (quant(x) - x).detach()


def train_linear(params, quant=True, ste_fn=ste):
    """BitLinear for training: F.linear(STE(ActQuant(x)), STE(WeightQuant(W))).

    With quant=False it is a plain F.linear (the full-precision switch). The
    quantised weights are recomputed at every call (i.e. every forward).
    """
    def lin(name, x):
        w = params[name + ".weight"]
        if not quant:
            return F.linear(x, w)
        return F.linear(ste_fn(x, act_quant_f32), ste_fn(w, weight_quant_f32))
    return lin


# ---------------------------------------------------------------- loss

def loss_fn(cfg, params, inputs, targets, quant=True, ste_fn=ste):
    """Mean cross-entropy (natural log) over all B*L target tokens.

    The tied head is model.embed_tokens.weight itself (bitnet_ref.forward),
    so its gradient is the sum of the lookup and head gradients. The head is
    never quantised.
    """
    logits = bitnet_ref.forward(cfg, params, train_linear(params, quant, ste_fn), inputs)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


# ---------------------------------------------------------------- optimiser

def decays(cfg, name):
    """Weight decay groups: the BitLinear weights and the output head's weight
    (lm_head, or the embedding when tied, since it is then the head's weight)
    decay; norms and an untied input embedding do not."""
    if name.endswith("_proj.weight") or name == "lm_head.weight":
        return True
    return name == "model.embed_tokens.weight" and bool(cfg.get("tie_word_embeddings"))


def make_optimizer(cfg, params, lr, weight_decay):
    """torch.optim.AdamW with two groups (decayed, not decayed)."""
    names = sorted(params)
    dec = [params[n] for n in names if decays(cfg, n)]
    nodec = [params[n] for n in names if not decays(cfg, n)]
    groups = [{"params": dec, "weight_decay": weight_decay}, {"params": nodec, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=BETAS, eps=ADAM_EPS, foreach=False)


def lr_at(step, steps, peak, warmup_frac, min_frac):
    """Learning rate of optimiser step `step` (0-based): linear warmup over
    W = round_half_up(warmup_frac * steps) steps (step s < W gets peak*(s+1)/W), then
    cosine from peak at step W towards min_frac*peak:
    peak * (min_frac + (1-min_frac) * 0.5 * (1 + cos(pi * (s-W) / (steps-W)))).
    The last step therefore sits just above min_frac*peak."""
    warm = int(math.floor(warmup_frac * steps + 0.5))  # half away from zero, like Go's math.Round
    if step < warm:
        return peak * (step + 1) / warm
    frac = (step - warm) / max(steps - warm, 1)
    return peak * (min_frac + (1 - min_frac) * 0.5 * (1 + math.cos(math.pi * frac)))


def global_norm(params):
    """L2 norm of all gradients, accumulated in float64."""
    return math.sqrt(math.fsum(float(p.grad.double().pow(2).sum()) for p in params.values()))


def clip(params, max_norm):
    """Global-norm clipping: scale every gradient by max_norm/norm when the
    norm exceeds max_norm (no epsilon, unlike clip_grad_norm_'s 1e-6).
    Returns the norm before clipping."""
    norm = global_norm(params)
    if max_norm > 0 and norm > max_norm:
        c = max_norm / norm
        for p in params.values():
            p.grad.mul_(c)
    return norm


def train_step(cfg, params, opt, inputs, targets, lr, quant=True, clip_norm=1.0):
    """One optimiser step on one batch; returns (loss, grad norm before clipping)."""
    for g in opt.param_groups:
        g["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(cfg, params, inputs, targets, quant)
    loss.backward()
    norm = clip(params, clip_norm)
    opt.step()
    return float(loss), norm


def init_params(cfg, seed, dtype=torch.float32):
    """bitnet_ref.init_params (normal(0, std) in HF-name order, norms 1)."""
    params = bitnet_ref.init_params(cfg, seed)
    return {n: torch.nn.Parameter(p.detach().to(dtype)) for n, p in params.items()}
