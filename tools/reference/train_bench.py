"""Issue 5's benchmark recipe in the PyTorch reference (dev-only, never in CI).

Model: hidden 192, 3 layers, 6 heads, 2 kv heads, intermediate 512, relu2,
rope theta 500000, rms eps 1e-5, tied, vocab 600 (opticks-bpe600). Init
normal(0, 0.02), norms 1. Batch 8 x seq 128, AdamW lr 2e-3 betas 0.9/0.95
wd 0.1 (decay groups: train_ref.decays), clip 1.0, 5% warmup then cosine to
10% of the peak.

Data: the whole of $(go env GOROOT)/src/testdata/Isaac.Newton-Opticks.txt
tokenised in one piece (no BOS/EOS), cut into sequences of seq+1 tokens that
overlap by one (sequence i = tokens[i*seq : i*seq+seq+1]), the last
ceil(0.1 * nseq) sequences held out for validation, as shared/train's
OpenDataset(path, 128, 0.1) does. Training sequences are drawn in a seeded
random permutation per epoch (torch.randperm; not the Go permutation).
Validation loss = mean cross-entropy over every token of every held-out
sequence, evaluated at step 0 and every --eval-every steps.

Each invocation runs one configuration and merges its result into --out
(key "<mode>_t<threads>"), so runs can be made one at a time:

  /usr/bin/python3 tools/reference/train_bench.py --mode ste --threads 2
  /usr/bin/python3 tools/reference/train_bench.py --mode fp --threads 2
  /usr/bin/python3 tools/reference/train_bench.py --mode ste --threads 1 --steps 20 --eval-every 0
"""

import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import time

import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402
import train_ref  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
TOKENIZER = os.path.join(ROOT, "testdata", "tokenizer", "opticks-bpe600.json")
OUT = os.path.join(ROOT, "testdata", "train", "reference_bench.json")

CONFIG = {
    "architectures": ["BitNetForCausalLM"], "model_type": "bitnet",
    "hidden_size": 192, "num_hidden_layers": 3, "num_attention_heads": 6,
    "num_key_value_heads": 2, "intermediate_size": 512, "hidden_act": "relu2",
    "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "tie_word_embeddings": True,
    "vocab_size": 600, "max_position_embeddings": 512, "initializer_range": 0.02,
    "bos_token_id": 598, "eos_token_id": 599,
}
RECIPE = {"steps": 250, "batch": 8, "seq": 128, "lr": 2e-3, "betas": list(train_ref.BETAS),
          "eps": train_ref.ADAM_EPS, "weight_decay": 0.1, "clip": 1.0, "warmup_frac": 0.05,
          "min_lr_frac": 0.1, "init_std": 0.02, "val_frac": 0.1, "seed": 1}


def corpus_tokens():
    goroot = subprocess.run(["go", "env", "GOROOT"], capture_output=True, text=True).stdout.strip()
    path = os.path.join(goroot or "/usr/local/go", "src", "testdata", "Isaac.Newton-Opticks.txt")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    tok = bpe.Tokenizer(TOKENIZER)
    ids = tok.encode(text)
    if tok.decode(ids) != text:
        raise SystemExit("tokenizer round trip failed")
    return torch.tensor(ids, dtype=torch.int64)


def split(tokens, seq, val_frac):
    nseq = (len(tokens) - 1) // seq
    nval = max(math.ceil(val_frac * nseq), 1) if val_frac > 0 else 0
    seqs = torch.stack([tokens[i * seq:i * seq + seq + 1] for i in range(nseq)])
    return seqs[:nseq - nval], seqs[nseq - nval:]


@torch.no_grad()
def evaluate(cfg, params, val, batch, quant):
    total, count = 0.0, 0
    for i in range(0, len(val), batch):
        b = val[i:i + batch]
        loss = train_ref.loss_fn(cfg, params, b[:, :-1], b[:, 1:], quant)
        total += float(loss) * b[:, 1:].numel()
        count += b[:, 1:].numel()
    return total / count


def run(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    r = dict(RECIPE, steps=args.steps)
    quant = args.mode == "ste"
    tokens = corpus_tokens()
    train, val = split(tokens, r["seq"], r["val_frac"])
    params = train_ref.init_params(CONFIG, r["seed"])
    opt = train_ref.make_optimizer(CONFIG, params, r["lr"], r["weight_decay"])
    gen = torch.Generator().manual_seed(r["seed"])
    perm, pos = torch.randperm(len(train), generator=gen), 0
    curve, losses, step_times = [], [], []
    if args.eval_every:
        curve.append({"step": 0, "val_loss": evaluate(CONFIG, params, val, r["batch"], quant)})
    for step in range(r["steps"]):
        idx = []
        for _ in range(r["batch"]):
            if pos == len(perm):
                perm, pos = torch.randperm(len(train), generator=gen), 0
            idx.append(int(perm[pos]))
            pos += 1
        b = train[idx]
        lr = train_ref.lr_at(step, r["steps"], r["lr"], r["warmup_frac"], r["min_lr_frac"])
        t0 = time.perf_counter()
        loss, norm = train_ref.train_step(CONFIG, params, opt, b[:, :-1], b[:, 1:], lr, quant, r["clip"])
        step_times.append(time.perf_counter() - t0)
        train_time = sum(step_times)
        losses.append(loss)
        done = step + 1
        if args.eval_every and (done % args.eval_every == 0 or done == r["steps"]):
            v = evaluate(CONFIG, params, val, r["batch"], quant)
            curve.append({"step": done, "val_loss": v})
            print(f"step {done}: train {loss:.4f} val {v:.4f} lr {lr:.2e} norm {norm:.3f} "
                  f"{done * r['batch'] * r['seq'] / train_time:.0f} tok/s", flush=True)
    train_time = sum(step_times)
    timed = step_times[1:] or step_times  # the first step pays one-off setup
    return {
        "mode": args.mode, "threads": args.threads, "steps": r["steps"],
        "tokens_per_s": len(timed) * r["batch"] * r["seq"] / sum(timed),
        "tokens_per_s_note": "training steps only (no evaluation), first step excluded",
        "step_seconds": [round(t, 4) for t in step_times],
        "train_seconds": train_time, "val_curve": curve,
        "train_loss": losses, "final_val_loss": curve[-1]["val_loss"] if curve else None,
        "loadavg_before_after": [args.load_before, list(os.getloadavg())],
        "date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "train_tokens": len(train) * r["seq"], "val_tokens": len(val) * r["seq"],
        "train_seqs": len(train), "val_seqs": len(val),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["ste", "fp"], default="ste")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=RECIPE["steps"])
    ap.add_argument("--eval-every", type=int, default=25)
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    args.load_before = list(os.getloadavg())
    res = run(args)
    doc = {}
    if os.path.exists(args.out):
        with open(args.out) as f:
            doc = json.load(f)
    doc.setdefault("config", CONFIG)
    doc.setdefault("recipe", RECIPE)
    doc["data"] = ("Opticks tokenised whole (no BOS), sequences of seq+1 tokens overlapping by one; "
                   "validation = the last ceil(0.1*nseq) sequences (the last ~10% of tokens), as "
                   "shared/train OpenDataset(path, 128, 0.1); val loss = mean over all their tokens")
    doc["machine"] = (f"{platform.machine()}, {os.cpu_count()} CPUs shared with other sessions, "
                      f"torch {torch.__version__}; loadavg recorded per run (tokens/s are noisy)")
    doc.setdefault("runs", {})[f"{args.mode}_t{args.threads}"] = res
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(os.path.join(os.path.dirname(args.out), "bench_config.json"), "w") as f:
        json.dump(CONFIG, f, indent=1)  # for bitnet train --config
        f.write("\n")
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"{args.mode} t{args.threads}: {res['tokens_per_s']:.0f} tok/s, final val {res['final_val_loss']}")


if __name__ == "__main__":
    main()
