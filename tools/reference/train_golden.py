#!/usr/bin/python3
"""Golden data for the Go QAT trainer (shared/train): testdata/train/.

Dev-only; never run in CI. Regenerate (from the repo root, ~1 minute):
    /usr/bin/python3 tools/reference/train_golden.py [--out DIR]
Writes config.json, init.safetensors, batch.json, golden.json,
grads_ste.safetensors, grads_fp.safetensors, grads_fp64.safetensors.
See TRAINING.md for the exact definitions.
"""

import argparse
import json
import math
import os
import struct
import subprocess
import sys

import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bitnet_ref  # noqa: E402
import bpe  # noqa: E402
import safetensors_io  # noqa: E402
import train_ref  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
TOKENIZER = os.path.join(ROOT, "testdata", "tokenizer", "opticks-bpe600.json")
SEED = 17
BATCH, SEQ = 2, 16
STEPS, LR, WD, CLIP, WARMUP_FRAC, MIN_LR_FRAC = 20, 2e-3, 0.1, 1.0, 0.05, 0.1
CANDIDATES = 48           # windows tried when choosing the batch
CANDIDATE_FROM = 200_000  # character offset of the first candidate window
NOISE = 1e-6              # relative perturbation of BitLinear inputs (sensitivity)
N_VARIANTS = 4

CONFIG = {
    "architectures": ["BitNetForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 598,
    "eos_token_id": 599,
    "hidden_act": "relu2",
    "hidden_size": 32,
    "initializer_range": 0.02,
    "intermediate_size": 64,
    "max_position_embeddings": 512,
    "model_type": "bitnet",
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-05,
    "rope_theta": 500000.0,
    "tie_word_embeddings": True,
    "torch_dtype": "float32",
    "use_cache": True,
    "vocab_size": 600,
    "quantization_config": {
        "quant_method": "bitnet",
        "linear_class": "autobitlinear",
        "quantization_mode": "online",
    },
}


# ---------------------------------------------------------------- io

def save_f64(path, tensors):
    """safetensors with F64 tensors (safetensors_io has no float64)."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        raw = tensors[name].detach().contiguous().double().numpy().tobytes()
        header[name] = {"dtype": "F64", "shape": list(tensors[name].shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    hdr = json.dumps(header, separators=(",", ":")).encode()
    hdr += b" " * ((8 - len(hdr) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hdr)) + hdr + b"".join(blobs))


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


# ---------------------------------------------------------------- data

def corpus_text():
    goroot = subprocess.run(["go", "env", "GOROOT"], capture_output=True, text=True).stdout.strip()
    path = os.path.join(goroot or "/usr/local/go", "src", "testdata", "Isaac.Newton-Opticks.txt")
    with open(path, encoding="utf-8") as f:
        return f.read()


def candidate_windows(tok, text):
    """Contiguous runs of BATCH*SEQ+1 tokens, from line starts of prose."""
    need = BATCH * SEQ + 1
    out, pos = [], CANDIDATE_FROM
    while len(out) < CANDIDATES:
        pos = text.index("\n", pos) + 1
        ids = tok.encode(text[pos:pos + 600])
        if len(ids) > need:
            out.append(ids[:need])
        pos += 1500
    return out


def batch_of(window):
    """Sequence b = window[b*SEQ : b*SEQ+SEQ+1]: what OpenDataset(seq=SEQ) reads."""
    t = torch.tensor(window, dtype=torch.int64)
    seqs = torch.stack([t[b * SEQ:b * SEQ + SEQ + 1] for b in range(BATCH)])
    return seqs[:, :-1].contiguous(), seqs[:, 1:].contiguous()


# ---------------------------------------------------------------- goldens

def clone_params(params, dtype):
    return {n: torch.nn.Parameter(p.detach().clone().to(dtype)) for n, p in params.items()}


def cfg64():
    """The config for float64 runs: rms_norm_eps rounded to float32 first, as
    the fp32 path (and the Go config, whose eps is a float32) uses it."""
    return dict(CONFIG, rms_norm_eps=float(torch.tensor(CONFIG["rms_norm_eps"], dtype=torch.float32)))


def loss_and_grads(params, inputs, targets, quant, ste_fn=train_ref.ste, noise_seed=None, cfg=CONFIG):
    for p in params.values():
        p.grad = None
    fn = ste_fn
    if noise_seed is not None:
        g = torch.Generator().manual_seed(noise_seed)

        def fn(x, quant_fn):
            if quant_fn is train_ref.act_quant_f32:
                with torch.no_grad():
                    u = torch.rand(x.shape, generator=g, dtype=torch.float64).to(x.dtype)
                    xn = x * (1 + NOISE * (2 * u - 1))
                return train_ref._Straight.apply(x, quant_fn(xn))
            return ste_fn(x, quant_fn)
    loss = train_ref.loss_fn(cfg, params, inputs, targets, quant, fn)
    loss.backward()
    return float(loss), {n: p.grad.detach().clone() for n, p in params.items()}


def rel_err(a, b):
    """max over tensors of ||a - b|| / ||b|| (float64)."""
    worst = 0.0
    for n in b:
        d = (a[n].double() - b[n].double()).norm()
        worst = max(worst, float(d / b[n].double().norm().clamp(min=1e-30)))
    return worst


def sensitivity(params, window):
    """How far the STE loss and gradients move when every BitLinear input is
    scaled by 1 + U(-NOISE, NOISE): int8 ties that another implementation
    (other summation order) may round the other way."""
    inputs, targets = batch_of(window)
    loss, grads = loss_and_grads(params, inputs, targets, True)
    dl, dg = 0.0, 0.0
    for s in range(N_VARIANTS):
        l2, g2 = loss_and_grads(params, inputs, targets, True, noise_seed=s)
        dl, dg = max(dl, abs(l2 - loss) / loss), max(dg, rel_err(g2, grads))
    return dl, dg


def grad_norm(grads):
    return math.sqrt(math.fsum(float(g.double().pow(2).sum()) for g in grads.values()))


def run_steps(init, inputs, targets, quant, jitter_seed=None):
    params = clone_params(init, torch.float32)
    if jitter_seed is not None:  # relative NOISE on every initial weight
        g = torch.Generator().manual_seed(jitter_seed)
        with torch.no_grad():
            for n in sorted(params):
                u = torch.rand(params[n].shape, generator=g, dtype=torch.float64).float()
                params[n].mul_(1 + NOISE * (2 * u - 1))
    opt = train_ref.make_optimizer(CONFIG, params, LR, WD)
    losses, lrs, norms = [], [], []
    for step in range(STEPS):
        lr = train_ref.lr_at(step, STEPS, LR, WARMUP_FRAC, MIN_LR_FRAC)
        loss, norm = train_ref.train_step(CONFIG, params, opt, inputs, targets, lr, quant, CLIP)
        losses.append(loss)
        lrs.append(lr)
        norms.append(norm)
    return losses, lrs, norms


def finite_difference_check(init, inputs, targets, n=24):
    """Central differences of the float64 full-precision loss at random
    coordinates against autograd: max relative error."""
    params, cfg = clone_params(init, torch.float64), cfg64()
    _, grads = loss_and_grads(params, inputs, targets, False, cfg=cfg)
    g = torch.Generator().manual_seed(3)
    names = sorted(params)
    worst = 0.0
    for _ in range(n):
        name = names[int(torch.randint(len(names), (1,), generator=g))]
        p = params[name]
        i = int(torch.randint(p.numel(), (1,), generator=g))
        h = 1e-6
        with torch.no_grad():
            flat = p.view(-1)
            old = float(flat[i])
            flat[i] = old + h
            lp = float(train_ref.loss_fn(cfg, params, inputs, targets, False))
            flat[i] = old - h
            lm = float(train_ref.loss_fn(cfg, params, inputs, targets, False))
            flat[i] = old
        fd, ad = (lp - lm) / (2 * h), float(grads[name].view(-1)[i])
        worst = max(worst, abs(fd - ad) / max(abs(ad), 1e-6))
    return worst


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "testdata", "train"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)

    tok = bpe.Tokenizer(TOKENIZER)
    init = train_ref.init_params(CONFIG, SEED)
    safetensors_io.save(os.path.join(args.out, "init.safetensors"),
                        {n: p.detach() for n, p in init.items()})
    init = {n: torch.nn.Parameter(t) for n, t in
            safetensors_io.load(os.path.join(args.out, "init.safetensors")).items()}
    write_json(os.path.join(args.out, "config.json"), CONFIG)

    # Weight quantiser: the Go-exact fp32 ops against HF's (fp32 mean).
    wq_diff = max(float((train_ref.weight_quant_f32(p) - bitnet_ref.weight_quant(p.detach())).abs().max())
                  for n, p in init.items() if n.endswith("_proj.weight"))
    margin = min(float(((p.detach() * (1.0 / p.detach().abs().mean())).abs() - 0.5).abs().min())
                 for n, p in init.items() if n.endswith("_proj.weight"))

    # Batch: the least int8-tie-sensitive of the candidate windows.
    windows = candidate_windows(tok, corpus_text())
    scored = sorted(((sensitivity(init, w), w) for w in windows), key=lambda s: (s[0][1], s[0][0]))
    (dl, dg), window = scored[0]
    median = scored[len(scored) // 2][0]
    inputs, targets = batch_of(window)
    write_json(os.path.join(args.out, "batch.json"), {
        "tokens": window, "inputs": inputs.tolist(), "targets": targets.tolist(),
        "text": tok.decode(window)})

    loss_ste, g_ste = loss_and_grads(clone_params(init, torch.float32), inputs, targets, True)
    loss_fp, g_fp = loss_and_grads(clone_params(init, torch.float32), inputs, targets, False)
    loss_fp64, g_fp64 = loss_and_grads(clone_params(init, torch.float64), inputs, targets, False, cfg=cfg64())
    loss_det, g_det = loss_and_grads(clone_params(init, torch.float32), inputs, targets, True,
                                     ste_fn=train_ref.detach_ste)
    safetensors_io.save(os.path.join(args.out, "grads_ste.safetensors"), g_ste)
    safetensors_io.save(os.path.join(args.out, "grads_fp.safetensors"), g_fp)
    save_f64(os.path.join(args.out, "grads_fp64.safetensors"), g_fp64)

    steps_ste, lrs, norms_ste = run_steps(init, inputs, targets, True)
    steps_fp, _, norms_fp = run_steps(init, inputs, targets, False)
    jitter = max(max(abs(a - b) / b for a, b in zip(run_steps(init, inputs, targets, True, s)[0], steps_ste))
                 for s in range(N_VARIANTS))
    golden = {
        "loss_ste": loss_ste, "loss_fp": loss_fp, "loss_fp64": loss_fp64,
        "grad_norm_ste": grad_norm(g_ste), "grad_norm_fp": grad_norm(g_fp), "grad_norm_fp64": grad_norm(g_fp64),
        "steps_ste": steps_ste, "steps_fp": steps_fp, "lr": lrs,
        "step_grad_norms_ste": norms_ste, "step_grad_norms_fp": norms_fp,
        "recipe": {"steps": STEPS, "lr": LR, "betas": list(train_ref.BETAS), "eps": train_ref.ADAM_EPS,
                   "weight_decay": WD, "clip": CLIP, "warmup_frac": WARMUP_FRAC,
                   "min_lr_frac": MIN_LR_FRAC, "init_seed": SEED},
        "checks": {
            "ste_int8_sensitivity": {"loss_rel": dl, "grad_rel": dg, "median_window_loss_rel": median[0],
                                     "median_window_grad_rel": median[1], "noise": NOISE},
            "detach_vs_exact_ste": {"loss_abs": abs(loss_det - loss_ste), "grad_rel": rel_err(g_det, g_ste)},
            "steps_ste_rel_under_weight_noise": jitter,
            "fp32_vs_fp64_grad_rel": rel_err(g_fp, g_fp64),
            "fp64_finite_difference_rel": finite_difference_check(init, inputs, targets),
            "weight_quant_vs_hf_max_abs": wq_diff,
            "ternary_margin_min": margin,
        },
    }
    write_json(os.path.join(args.out, "golden.json"), golden)
    print(json.dumps({k: v for k, v in golden.items() if not isinstance(v, list)}, indent=1))
    print("steps_ste", [round(x, 4) for x in steps_ste])
    print("steps_fp ", [round(x, 4) for x in steps_fp])


if __name__ == "__main__":
    main()
