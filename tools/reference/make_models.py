#!/usr/bin/python3
"""Train tiny BitNet b1.58 models (QAT) and write them with golden outputs.

Dev-only; never run in CI. Regenerate with (from the repo root):
    /usr/bin/python3 tools/reference/make_models.py [--only NAME] [--steps N] [--golden-only]
Writes testdata/models/<name>/{config.json, model.safetensors, tokenizer.json,
generation_config.json, golden.json} (+ hidden.json for tiny-gqa-tied-f32).
Goldens are computed from the files as written (reloaded), never from the
in-memory training state.
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time

import torch

sys.dont_write_bytecode = True  # keep __pycache__ out of the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bitnet_ref as ref  # noqa: E402
import bpe  # noqa: E402
import safetensors_io  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "testdata", "models")
TOKENIZER = "/work/shared/data/opticks-bpe600/tokenizer.json"
BOS, EOS = 598, 599
TRAIN_CHARS = 150_000
HELDOUT_FROM = 300_000  # golden text starts here: never seen in training
WINDOW = 64
N_WINDOWS = 3
N_PROMPTS = 4
CONTINUATION = 16
MIN_MARGIN = 0.05
NOISE = 1e-6  # relative perturbation of the noisy variants (see noisy())
N_VARIANTS = 4
TERNARY_GUARD = 1e-3  # keep |W*s| at least this far from 0.5 and 1.5


def base_config(**kw):
    cfg = {
        "architectures": ["BitNetForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "hidden_act": "relu2",
        "hidden_size": 64,
        "initializer_range": 0.02,
        "intermediate_size": 128,
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
    }
    cfg.update(kw)
    return cfg


ONLINE = {"quant_method": "bitnet", "linear_class": "autobitlinear", "quantization_mode": "online"}
OFFLINE = {"quant_method": "bitnet", "linear_class": "autobitlinear", "quantization_mode": "offline"}

MODELS = {
    "tiny-gqa-tied-f32": dict(
        cfg=base_config(quantization_config=ONLINE), dtype=torch.float32, seed=1,
        gen={"bos_token_id": BOS, "eos_token_id": EOS, "do_sample": False, "max_length": 512}),
    "tiny-mha-untied-bf16": dict(
        cfg=base_config(num_key_value_heads=4, intermediate_size=192, tie_word_embeddings=False,
                        rope_theta=10000.0, torch_dtype="bfloat16", quantization_config=ONLINE),
        dtype=torch.bfloat16, seed=2,
        # a list, as in 2B4T's generation_config.json
        gen={"bos_token_id": BOS, "eos_token_id": [EOS], "do_sample": False, "max_length": 512}),
}
# pre-quantised (offline) models made from a master above. dtype: weight_scale
# and the other tensors; same_goldens: reuse the source's windows (the packed
# model computes what its source computes only when the scale stays fp32).
PACKED = {
    "tiny-gqa-packed": dict(src="tiny-gqa-tied-f32", dtype=torch.float32, same_goldens=True),
    # 2B4T's packed layout: bf16 embeddings, norms, lm_head and weight_scale
    "tiny-mha-untied-packed-bf16": dict(src="tiny-mha-untied-bf16", dtype=torch.bfloat16,
                                        same_goldens=False),
}


# ---------------------------------------------------------------- data

def load_tokens(tok):
    goroot = subprocess.run(["go", "env", "GOROOT"], capture_output=True, text=True).stdout.strip()
    if not goroot:
        goroot = "/usr/local/go"
    path = os.path.join(goroot, "src", "testdata", "Isaac.Newton-Opticks.txt")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    train = tok.encode(text[:TRAIN_CHARS])
    held = tok.encode(text[HELDOUT_FROM:HELDOUT_FROM + 60_000])
    if tok.decode(train) != text[:TRAIN_CHARS]:
        raise SystemExit("tokenizer round trip failed")
    return torch.tensor(train), torch.tensor(held)


# ---------------------------------------------------------------- training

def train(cfg, tokens, seed, steps, seq=128, batch=16, lr=3e-3):
    torch.manual_seed(seed)
    params = ref.init_params(cfg, seed)
    opt = torch.optim.AdamW(params.values(), lr=lr, betas=(0.9, 0.95), weight_decay=0.01)
    lin = ref.ste_linear(params)
    g = torch.Generator().manual_seed(seed + 100)
    t0 = time.time()
    for step in range(steps):
        warm = min(1.0, (step + 1) / 30)
        for pg in opt.param_groups:
            pg["lr"] = lr * warm * 0.5 * (1 + math.cos(math.pi * step / steps))
        starts = torch.randint(0, len(tokens) - seq, (batch,), generator=g)
        body = torch.stack([tokens[s:s + seq] for s in starts])
        ids = torch.cat([torch.full((batch, 1), BOS), body], dim=1)
        logits = ref.forward(cfg, params, lin, ids[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg["vocab_size"]), ids[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params.values(), 1.0)
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"  step {step:4d} loss {loss.item():.3f} ({time.time() - t0:.0f}s)", flush=True)
    return {k: v.detach().clone() for k, v in params.items()}


def guard_ternary(weights, dtype):
    """Nudge master weights whose W*s sits within TERNARY_GUARD of a rounding
    boundary (0.5 or 1.5), so implementations that sum mean|W| in another
    order still ternarise identically. Works in the storage dtype."""
    nudged = 0
    for name, w in weights.items():
        if not any(name.endswith(l + ".weight") for l in ref.LINEARS):
            continue
        w = w.to(dtype)
        for _ in range(20):
            wf = w.float()
            r = (wf * ref.weight_scale_inv(wf)).abs()
            bad = ((r - 0.5).abs() < TERNARY_GUARD) | ((r - 1.5).abs() < TERNARY_GUARD)
            if not bad.any():
                break
            nudged += int(bad.sum())
            # push away from the boundary by ~1% of the value (>= 1 bf16 ulp)
            up = ((r - 0.5).abs() < TERNARY_GUARD) & (r >= 0.5) | ((r - 1.5).abs() < TERNARY_GUARD) & (r >= 1.5)
            factor = torch.where(up, torch.tensor(1.01), torch.tensor(0.99))
            wf = torch.where(bad, wf * factor, wf)
            w = wf.to(dtype)
        else:
            raise SystemExit(f"{name}: cannot move weights off the rounding boundary")
        weights[name] = w
    return nudged


# ---------------------------------------------------------------- writing

def write_dir(name, cfg, tensors, gen):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    with open(os.path.join(d, "generation_config.json"), "w") as f:
        json.dump(gen, f, indent=2)
        f.write("\n")
    shutil.copyfile(TOKENIZER, os.path.join(d, "tokenizer.json"))
    safetensors_io.save(os.path.join(d, "model.safetensors"), tensors, {"format": "pt"})
    return d


def load_dir(d):
    """Independent reload: (cfg, fp32 weights, BitLinear flavour)."""
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    raw = safetensors_io.load(os.path.join(d, "model.safetensors"))
    mode = cfg.get("quantization_config", {}).get("quantization_mode", "online")
    weights = {}
    for k, v in raw.items():
        weights[k] = v if v.dtype == torch.uint8 else v.to(torch.float32)
    lin = ref.offline_linear(weights) if mode == "offline" else ref.online_linear(weights)
    return cfg, weights, lin


# ---------------------------------------------------------------- goldens

def logits_of(model, ids):
    cfg, weights, lin = model
    with torch.no_grad():
        return ref.forward(cfg, weights, lin, torch.tensor([ids]))[0]


def greedy(model, prompt, n):
    ids, margins = list(prompt), []
    for _ in range(n):
        last = logits_of(model, ids)[-1]
        top = torch.topk(last, 2)
        margins.append(float(top.values[0] - top.values[1]))
        ids.append(int(top.indices[0]))
    return ids[len(prompt):], margins


def is_prose(tok, ids):
    text = tok.decode(ids)
    letters = sum(c.isalpha() for c in text)
    return letters >= 0.6 * len(text) and "[" not in text and "{" not in text


def noisy(model, seed, eps=NOISE):
    """The same model with every BitLinear input scaled by (1 + U(-eps, eps)):
    stands in for another implementation's float rounding (summation order,
    fused ops), which moves int8 activation roundings that sit near .5."""
    cfg, weights, lin = model
    g = torch.Generator().manual_seed(seed)

    def nlin(name, x):
        return lin(name, x * (1 + eps * (2 * torch.rand(x.shape, generator=g) - 1)))
    return cfg, weights, nlin


def window_golden(model, toks):
    nll = ref.nll_per_position(logits_of(model, toks), torch.tensor(toks)).tolist()
    m = ref.mean(nll)
    return {"tokens": toks, "nll": nll, "nll_mean": m, "ppl": math.exp(m)}


def sensitivity(model, toks):
    """Worst mean |NLL difference| over the noisy variants."""
    base = window_golden(model, toks)["nll"]
    worst = 0.0
    for seed in range(N_VARIANTS):
        nll = window_golden(noisy(model, seed), toks)["nll"]
        worst = max(worst, ref.mean([abs(a - b) for a, b in zip(nll, base)]))
    return worst


def logits_sensitivity(model, toks):
    """Worst max |last-position logit difference| over the noisy variants."""
    base = logits_of(model, toks)[-1]
    return max(float((logits_of(noisy(model, seed), toks)[-1] - base).abs().max())
               for seed in range(N_VARIANTS))


def make_golden(model, held, tok, prompts=None, windows=None):
    if windows is None:
        # the least rounding-sensitive held-out windows, so that the 2e-3 / 0.1%
        # tolerances are not eaten by one int8 flip in another implementation
        cands = []
        for start in range(0, 24000, 200):
            toks = [BOS] + [int(t) for t in held[start:start + WINDOW - 1]]
            text = tok.decode(toks[1:])
            if sum(c.isalpha() for c in text) < 0.6 * len(text):
                continue  # tables and figures: keep prose windows
            cands.append((sensitivity(model, toks), start, toks))
        cands.sort()
        print("  window sensitivity: chosen " + ", ".join(f"{c[0]:.1e}" for c in cands[:N_WINDOWS])
              + f"; median {cands[len(cands) // 2][0]:.1e}, worst {cands[-1][0]:.1e}")
        windows = [c[2] for c in sorted(cands[:N_WINDOWS], key=lambda c: c[1])]
    windows = [window_golden(model, toks) for toks in windows]
    chosen = []
    prompts = list(prompts or [])
    for start in range(5000, 25000, 97):  # held-out prose prompts
        plen = 6 + (start // 97) % 11
        p = [BOS] + [int(t) for t in held[start:start + plen]]
        if is_prose(tok, p[1:]):
            prompts.append(p)
    for p in prompts:
        cont, margins = greedy(model, p, CONTINUATION)
        # safe margins, and a continuation that is not one token repeated
        if min(margins) < MIN_MARGIN or len(set(cont)) < 4:
            continue
        if any(greedy(noisy(model, seed), p, CONTINUATION)[0] != cont for seed in range(N_VARIANTS)):
            continue
        chosen.append({"prompt": p, "continuation": cont, "margins": margins})
        if len(chosen) == N_PROMPTS:
            break
    if len(chosen) < N_PROMPTS:
        raise SystemExit(f"only {len(chosen)} prompts with margins >= {MIN_MARGIN}")
    # the prompt whose last logits move least under the noisy variants
    prompt = min((logits_sensitivity(model, g["prompt"]), i, g["prompt"]) for i, g in enumerate(chosen))
    logit_seqs = [[BOS], prompt[2], windows[0]["tokens"]]
    print("  logits sensitivity: " + ", ".join(f"{logits_sensitivity(model, t):.1e}" for t in logit_seqs))
    logits = [{"tokens": s, "last": logits_of(model, s)[-1].tolist()} for s in logit_seqs]
    return {"windows": windows, "greedy": chosen, "logits": logits}


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)
        f.write("\n")


def hidden_states(model, toks):
    cfg, weights, lin = model
    cap = {}
    with torch.no_grad():
        ref.forward(cfg, weights, lin, torch.tensor([toks]), capture=cap)
    states = []
    for pos in (0, len(toks) - 1):
        for name, t in cap.items():
            states.append({"name": name, "position": pos, "values": t[0, pos].tolist()})
    return {"tokens": toks,
            "note": "embed = embedding row; layerN.input_norm = input_layernorm output; "
                    "layerN.{q,k}_rope = projections after RoPE, heads concatenated; layerN.v; "
                    "layerN.attn = attention output before attn_sub_norm; "
                    "layerN.attn_residual = x + o_proj(attn_sub_norm(attn)); "
                    "layerN.ffn_sub_norm = ffn_sub_norm(relu(gate)^2 * up); "
                    "layerN.out = after the MLP residual; final_norm = model.norm output",
            "states": states}


def summarize(name, golden):
    w = ", ".join(f"{x['ppl']:.2f}" for x in golden["windows"])
    mm = min(min(g["margins"]) for g in golden["greedy"])
    print(f"  {name}: window ppl [{w}], min greedy margin {mm:.3f}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--golden-only", action="store_true",
                    help="reuse the written weights; recompute the goldens only")
    ap.add_argument("--out", default="", help="models directory (default testdata/models)")
    args = ap.parse_args()
    if args.out:
        global OUT
        OUT = args.out
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    tok = bpe.Tokenizer(TOKENIZER)
    train_toks, held = load_tokens(tok)
    print(f"train tokens {len(train_toks)}, held-out tokens {len(held)}")
    for name, spec in MODELS.items():
        if args.only and args.only != name and PACKED.get(args.only, {}).get("src") != name:
            continue
        d = os.path.join(OUT, name)
        if not args.golden_only:
            print(f"{name}: training", flush=True)
            w = train(spec["cfg"], train_toks, spec["seed"], args.steps)
            n = guard_ternary(w, spec["dtype"])
            print(f"  nudged {n} weights off ternary rounding boundaries")
            write_dir(name, spec["cfg"], {k: v.to(spec["dtype"]) for k, v in w.items()}, spec["gen"])
        model = load_dir(d)
        golden = make_golden(model, held, tok)
        write_json(os.path.join(d, "golden.json"), golden)
        summarize(name, golden)
        if name == "tiny-gqa-tied-f32":
            write_json(os.path.join(d, "hidden.json"), hidden_states(model, golden["greedy"][0]["prompt"]))
    for pname, spec in PACKED.items():
        if not args.only or args.only in (spec["src"], pname):
            make_packed(pname, spec, held, tok)


def make_packed(pname, spec, held, tok):
    src, dtype = spec["src"], spec["dtype"]
    print(f"{pname}: packing {src}", flush=True)
    master = load_dir(os.path.join(OUT, src))
    cfg = dict(master[0])
    cfg["quantization_config"] = OFFLINE
    tensors = {}
    for k, v in master[1].items():
        if any(k.endswith(l + ".weight") for l in ref.LINEARS):
            t, _ = ref.ternarize(v)
            tensors[k] = ref.pack(t)
            # AutoBitLinear multiplies by weight_scale: it is mean|W| (= 1/s)
            scale = v.abs().mean().clamp(min=1e-5).reshape(1)
            tensors[k[:-len("weight")] + "weight_scale"] = scale.to(dtype)
            if not torch.equal(ref.unpack(tensors[k]), t):
                raise SystemExit(f"{k}: pack/unpack round trip failed")
        else:
            tensors[k] = v.to(dtype)
    with open(os.path.join(OUT, src, "generation_config.json")) as f:
        gen = json.load(f)
    d = write_dir(pname, cfg, tensors, gen)
    packed = load_dir(d)
    with open(os.path.join(OUT, src, "golden.json")) as f:
        src_golden = json.load(f)
    windows = [w["tokens"] for w in src_golden["windows"]] if spec["same_goldens"] else None
    golden = make_golden(packed, held, tok, prompts=[g["prompt"] for g in src_golden["greedy"]],
                         windows=windows)
    # sanity: the packed flavour computes what the master flavour computes
    # (up to the rounding of weight_scale to its dtype)
    tol = 1e-3 if dtype == torch.float32 else 0.5
    for ids in ([BOS], golden["windows"][0]["tokens"]):
        a, b = logits_of(master, ids), logits_of(packed, ids)
        diff = float((a - b).abs().max())
        agree = float((a.argmax(-1) == b.argmax(-1)).float().mean())
        print(f"  packed vs master over {len(ids)} tokens: max |logit diff| {diff:.2e}, "
              f"argmax agreement {agree:.3f}")
        if diff > tol or agree < (1 if dtype == torch.float32 else 0.9):
            raise SystemExit("packed flavour disagrees with master flavour")
    write_json(os.path.join(d, "golden.json"), golden)
    summarize(pname, golden)


if __name__ == "__main__":
    main()
