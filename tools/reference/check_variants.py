#!/usr/bin/python3
"""How robust are the goldens to a different (but valid) implementation?

Recomputes every golden with an "engine-like" variant: float64 activations,
mean|W| summed in float64, integer x_q . T dot products rescaled once by
weight_scale / s_x (the way an int8 x ternary kernel works), and compares with
golden.json: per-position NLL differences, window perplexity, greedy tokens.
Dev-only:  /usr/bin/python3 tools/reference/check_variants.py
"""

import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # keep __pycache__ out of the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bitnet_ref as ref  # noqa: E402
import make_models as mm  # noqa: E402


def engine_linear(weights, offline):
    cache = {}

    def lin(name, x):
        if name not in cache:
            w = weights[name + ".weight"]
            if offline:
                t = ref.unpack(w).double()
                scale = weights[name + ".weight_scale"].double()
            else:
                w = w.double()
                mean = w.abs().mean().clamp(min=1e-5)
                t = (w / mean).round().clamp(-1, 1)
                scale = mean
            cache[name] = (t, scale)
        t, scale = cache[name]
        x = x.double()
        s = 127 / x.abs().max(dim=-1, keepdim=True).values.clamp(min=1e-5)
        q = (x * s).round().clamp(-128, 127)
        return F.linear(q, t) * (scale / s)
    return lin


def main():
    torch.set_num_threads(1)
    for name in list(mm.MODELS) + list(mm.PACKED):
        d = os.path.join(mm.OUT, name)
        cfg, weights, _ = mm.load_dir(d)
        offline = cfg["quantization_config"]["quantization_mode"] == "offline"
        w64 = {k: (v if v.dtype == torch.uint8 else v.double()) for k, v in weights.items()}
        lin = engine_linear(w64, offline)
        golden = json.load(open(os.path.join(d, "golden.json")))

        def logits(ids):
            with torch.no_grad():
                return ref.forward(cfg, w64, lin, torch.tensor([ids]))[0]
        print(f"{name}:")
        for w in golden["windows"]:
            nll = ref.nll_per_position(logits(w["tokens"]), torch.tensor(w["tokens"])).tolist()
            diffs = [abs(a - b) for a, b in zip(nll, w["nll"])]
            ppl = math.exp(ref.mean(nll))
            print(f"  window: mean |dnll| {ref.mean(diffs):.2e}, max {max(diffs):.2e}, "
                  f"ppl rel diff {abs(ppl / w['ppl'] - 1):.2e}")
        for g in golden["greedy"]:
            ids = list(g["prompt"])
            for _ in range(len(g["continuation"])):
                ids.append(int(logits(ids)[-1].argmax()))
            ok = ids[len(g["prompt"]):] == g["continuation"]
            print(f"  greedy prompt of {len(g['prompt'])}: {'match' if ok else 'MISMATCH'}")
        for e in golden["logits"]:
            diff = (logits(e["tokens"])[-1] - torch.tensor(e["last"], dtype=torch.float64)).abs().max()
            print(f"  logits of {len(e['tokens'])} tokens: max |diff| {float(diff):.2e}")


if __name__ == "__main__":
    main()
