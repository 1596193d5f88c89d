"""Merge `bitnet train` runs into testdata/train/reference_bench.json (dev-only).

Reads each run's output directory: the loss history that Run stores in
checkpoint.safetensors metadata (full precision; the CLI prints 4 decimals),
and the last progress line of its captured stderr (training tokens/s), then
stores them under runs[KEY] with the same fields as train_bench.py where they
exist ("train_loss", "val_curve", "final_val_loss", "tokens_per_s"), and
prints a per-step comparison against a PyTorch run when --against KEY is given.

  bitnet train ... --seed 1 --threads 1 --out /tmp/go_ste_s1 2> /tmp/go_ste_s1.log
  /usr/bin/python3 tools/reference/go_bench_merge.py --key go_ste_t1_s1 \\
      --dir /tmp/go_ste_s1 --log /tmp/go_ste_s1.log --mode ste --seed 1 \\
      --command "bitnet train ..." --against ste_t1_plan_s1
"""

import argparse
import json
import os
import re
import struct

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(ROOT, "testdata", "train", "reference_bench.json")


def history(run_dir):
    with open(os.path.join(run_dir, "checkpoint.safetensors"), "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    return json.loads(header["__metadata__"]["history"])


def tokens_per_s(log):
    rate = None
    with open(log) as f:
        for line in f:
            m = re.match(r"step (\d+)/(\d+) .* (\d+) tok/s", line)
            if m:
                rate = float(m.group(3))
    return rate


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--key", required=True)
    ap.add_argument("--dir", required=True, help="bitnet train --out directory")
    ap.add_argument("--log", help="its captured stderr (for tokens/s)")
    ap.add_argument("--mode", choices=["ste", "fp"], required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--command", default="")
    ap.add_argument("--against", help="PyTorch run key to compare with, step by step")
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    h = history(args.dir)
    curve = [{"step": p["step"], "val_loss": p["val_loss"]} for p in h if p.get("has_val")]
    res = {
        "implementation": "go (shared/train via bitnet train)", "mode": args.mode,
        "threads": args.threads, "seed": args.seed, "steps": len(h),
        "train_loss": [p["loss"] for p in h], "val_curve": curve,
        "final_val_loss": curve[-1]["val_loss"] if curve else None,
        "tokens_per_s": tokens_per_s(args.log) if args.log else None,
        "tokens_per_s_note": "training steps only, as bitnet train's progress line reports it",
        "command": args.command,
    }
    with open(args.out) as f:
        doc = json.load(f)
    doc.setdefault("runs", {})[args.key] = res
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"{args.key}: final val {res['final_val_loss']:.4f}, {res['tokens_per_s']} tok/s")
    if args.against:
        ref = doc["runs"][args.against]
        go_l, py_l = res["train_loss"], ref["train_loss"]
        for s in [1, 2, 3, 5, 10, 25, 50, 100, 150, 200, 250]:
            if s <= min(len(go_l), len(py_l)):
                a, b = go_l[s - 1], py_l[s - 1]
                print(f"  step {s:3d} train go {a:.6f} torch {b:.6f} rel {abs(a - b) / b:.2e}")
        pv = {p["step"]: p["val_loss"] for p in ref["val_curve"]}
        for p in curve:
            if p["step"] in pv:
                b = pv[p["step"]]
                print(f"  step {p['step']:3d} val   go {p['val_loss']:.4f} torch {b:.4f} "
                      f"go/torch {p['val_loss'] / b:.4f}")


if __name__ == "__main__":
    main()
