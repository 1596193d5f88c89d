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
random permutation per epoch (torch.randperm; not the Go permutation), and
the initial weights come from torch.manual_seed; with --plan DIR (written by
`go run ./tools/trainplan ... --seed S --out DIR`) the run starts from the Go
trainer's initial weights for seed S and reads its sequences in the Go order,
after checking that the tokens and the split match Go's.
Validation loss = mean cross-entropy over every token of every held-out
sequence, evaluated at step 0 and every --eval-every steps.

Each invocation runs one configuration and merges its result into --out
(key "<mode>_t<threads>", plus "_plan_s<S>" with --plan or "_s<S>" with
--seed S != 1), so runs can be made one at a time:

  /usr/bin/python3 tools/reference/train_bench.py --mode ste --threads 2
  /usr/bin/python3 tools/reference/train_bench.py --mode fp --threads 2
  /usr/bin/python3 tools/reference/train_bench.py --mode ste --threads 1 --steps 20 --eval-every 0
  /usr/bin/python3 tools/reference/train_bench.py --mode ste --threads 1 --plan /tmp/plan1 --print-every 25
"""

import argparse
import datetime
import hashlib
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
import safetensors_io  # noqa: E402
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


def load_plan(plan_dir, tokens, train, val, r):
    """Reads a tools/trainplan directory: the Go trainer's initial weights and
    sequence order for its seed, after checking that the data and recipe agree."""
    with open(os.path.join(plan_dir, "plan.json")) as f:
        plan = json.load(f)
    digest = hashlib.sha256(tokens.to(torch.int32).numpy().astype("<u4").tobytes()).hexdigest()
    if digest != plan["tokens_sha256"] or len(tokens) != plan["tokens"]:
        raise SystemExit(f"plan: tokens differ from Go's ({len(tokens)} vs {plan['tokens']}, sha256 {digest} vs {plan['tokens_sha256']})")
    got = (len(train), len(val), r["batch"], r["seq"])
    want = (plan["train_seqs"], plan["val_seqs"], plan["batch"], plan["seq"])
    if got != want or plan.get("accum", 1) != 1 or plan["steps"] < r["steps"]:
        raise SystemExit(f"plan: split/batch/seq {got} vs Go's {want}, accum {plan.get('accum')}, "
                         f"plan steps {plan['steps']} < {r['steps']}")
    raw = safetensors_io.load(os.path.join(plan_dir, plan["init"], "model.safetensors"))
    want_names = set(train_ref.init_params(CONFIG, 0))
    if set(raw) != want_names:
        raise SystemExit(f"plan: tensors differ: extra {set(raw) - want_names}, missing {want_names - set(raw)}")
    params = {n: torch.nn.Parameter(t.float()) for n, t in raw.items()}
    return params, plan["order"], plan["seed"]


def run(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    r = dict(RECIPE, steps=args.steps, seed=args.seed)
    quant = args.mode == "ste"
    tokens = corpus_tokens()
    train, val = split(tokens, r["seq"], r["val_frac"])
    order = None
    if args.plan:
        params, order, r["seed"] = load_plan(args.plan, tokens, train, val, r)
    else:
        params = train_ref.init_params(CONFIG, r["seed"])
    opt = train_ref.make_optimizer(CONFIG, params, r["lr"], r["weight_decay"])
    gen = torch.Generator().manual_seed(r["seed"])
    perm, pos = torch.randperm(len(train), generator=gen), 0
    curve, losses, norms, step_times = [], [], [], []
    if args.eval_every:
        curve.append({"step": 0, "val_loss": evaluate(CONFIG, params, val, r["batch"], quant)})
    for step in range(r["steps"]):
        idx = []
        for _ in range(r["batch"]):
            if order is not None:
                break
            if pos == len(perm):
                perm, pos = torch.randperm(len(train), generator=gen), 0
            idx.append(int(perm[pos]))
            pos += 1
        if order is not None:
            idx = order[step]
        b = train[idx]
        lr = train_ref.lr_at(step, r["steps"], r["lr"], r["warmup_frac"], r["min_lr_frac"])
        t0 = time.perf_counter()
        loss, norm = train_ref.train_step(CONFIG, params, opt, b[:, :-1], b[:, 1:], lr, quant, r["clip"])
        step_times.append(time.perf_counter() - t0)
        norms.append(norm)
        train_time = sum(step_times)
        losses.append(loss)
        done = step + 1
        if args.print_every and (done == 1 or done % args.print_every == 0):
            print(f"step {done}: loss {loss:.7f} lr {lr:.4e} gnorm {norm:.6f}", flush=True)
        if args.eval_every and (done % args.eval_every == 0 or done == r["steps"]):
            v = evaluate(CONFIG, params, val, r["batch"], quant)
            curve.append({"step": done, "val_loss": v})
            print(f"step {done}: train {loss:.4f} val {v:.4f} lr {lr:.2e} norm {norm:.3f} "
                  f"{done * r['batch'] * r['seq'] / train_time:.0f} tok/s", flush=True)
    train_time = sum(step_times)
    timed = step_times[1:] or step_times  # the first step pays one-off setup
    return {
        "mode": args.mode, "threads": args.threads, "steps": r["steps"],
        "init_and_order": (f"Go trainer's (tools/trainplan seed {r['seed']})" if args.plan
                           else f"torch (manual_seed {r['seed']}, randperm)"),
        "tokens_per_s": len(timed) * r["batch"] * r["seq"] / sum(timed),
        "seed": r["seed"],
        "tokens_per_s_note": "training steps only (no evaluation), first step excluded",
        "step_seconds": [round(t, 4) for t in step_times],
        "train_seconds": train_time, "val_curve": curve,
        "train_loss": losses, "grad_norms": norms, "final_val_loss": curve[-1]["val_loss"] if curve else None,
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
    ap.add_argument("--plan", help="tools/trainplan directory: start from the Go trainer's initial "
                    "weights and follow its sequence order (result key gets _plan_s<seed>)")
    ap.add_argument("--seed", type=int, default=RECIPE["seed"], help="torch seed of init and order (without --plan)")
    ap.add_argument("--print-every", type=int, default=0, help="print the training loss every N steps")
    ap.add_argument("--key", help="result key (default <mode>_t<threads>[_plan_s<seed>])")
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
    key = args.key or f"{args.mode}_t{args.threads}" + (f"_plan_s{res['seed']}" if args.plan else
                                                         (f"_s{res['seed']}" if res["seed"] != RECIPE["seed"] else ""))
    doc.setdefault("runs", {})[key] = res
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
