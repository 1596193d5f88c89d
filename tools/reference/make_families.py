#!/usr/bin/python3
"""Train tiny models of every BitNet family and write them in each family's
exact Hugging Face file layout, with golden outputs (dev-only, never in CI).

    /usr/bin/python3 tools/reference/make_families.py [--only NAME] [--steps N] [--golden-only]

Writes testdata/models/<name>/: config.json, generation_config.json,
model.safetensors, tokenizer.json (+ tokenizer_config.json,
special_tokens_map.json, and for the embedding models modules.json,
config_sentence_transformers.json, 1_Pooling/config.json), golden.json.
Goldens are computed from the files as written and read back (load_dir),
never from the training state. See README.md ("Families").
"""

import argparse
import json
import math
import os
import shutil
import sys
import time

import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bitnet_ref as ref  # noqa: E402
import families as fam  # noqa: E402
import make_models as mm  # noqa: E402
import safetensors_io  # noqa: E402
import toks  # noqa: E402

OUT = mm.OUT
VOCAB = 600
WINDOW, N_WINDOWS, N_PROMPTS, CONTINUATION = 64, 3, 4, 16
N_EMBED = 6

LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>"]


def opticks():
    import subprocess
    goroot = subprocess.run(["go", "env", "GOROOT"], capture_output=True, text=True).stdout.strip() or "/usr/local/go"
    with open(os.path.join(goroot, "src", "testdata", "Isaac.Newton-Opticks.txt"), encoding="utf-8") as f:
        return f.read()


# ---------------------------------------------------------------- the models

def llama_keys(**kw):
    """LlamaConfig keys as the HF1BitLLM / Falcon3 checkpoints carry them."""
    c = {"architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
         "hidden_act": "silu", "initializer_range": 0.02, "max_position_embeddings": 512, "mlp_bias": False,
         "model_type": "llama", "num_hidden_layers": 2, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
         "rope_scaling": None, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
         "transformers_version": "4.46.0.dev0", "use_cache": True, "vocab_size": VOCAB}
    c.update(kw)
    return c


def tok_config(**kw):
    c = {"clean_up_tokenization_spaces": False, "model_max_length": 512}
    c.update(kw)
    return c


MODELS = {
    # 1bitLLM bitnet_b1_58-large/-3B: custom BitnetForCausalLM, fp16 masters
    # quantised at load, SiLU, inner_attn_ln / ffn_layernorm; widths like the
    # 3B's (3200/8640: multiples of neither 256 nor 128).
    "tiny-bitnet-b158-fp16": dict(
        cfg={"architectures": ["BitnetForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
             "auto_map": {"AutoConfig": "configuration_bitnet.BitnetConfig",
                          "AutoModelForCausalLM": "modeling_bitnet.BitnetForCausalLM"},
             "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 80,
             "initializer_range": 0.02, "input_bits": 8, "intermediate_size": 216,
             "max_position_embeddings": 512, "model_type": "llama", "num_attention_heads": 4,
             "num_hidden_layers": 2, "num_key_value_heads": 4, "pad_token_id": 0, "pretraining_tp": 1,
             "rms_norm_eps": 1e-05, "rope_scaling": None, "rope_theta": 10000.0, "tie_word_embeddings": True,
             "torch_dtype": "float16", "transformers_version": "4.39.0.dev0", "use_cache": True,
             "vocab_size": VOCAB, "weight_bits": 1},
        dtype=torch.float16, seed=11, storage="master",
        tok=("sp", ["<unk>", "<s>", "</s>"], "<unk>", True, ["<s>"], []),
        tok_cfg=tok_config(add_bos_token=True, add_eos_token=False, bos_token="<s>", eos_token="</s>",
                           unk_token="<unk>", tokenizer_class="LlamaTokenizer", legacy=False),
        gen={"_from_model_config": True, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}),
    # HF1BitLLM Llama3-8B-1.58-100B-tokens: LlamaForCausalLM + quantization_config
    # bitnet with the default BitLinear (packed uint8, weight_scale = 1/s, bf16).
    # rope_scaling llama3 (as Llama 3.1-based checkpoints) to check that path.
    "tiny-llama3-bitlinear": dict(
        cfg=llama_keys(bos_token_id=598, eos_token_id=599, hidden_size=64, intermediate_size=176,
                       num_attention_heads=4, num_key_value_heads=2, rope_theta=500000.0,
                       rope_scaling={"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                                     "original_max_position_embeddings": 64, "rope_type": "llama3"},
                       quantization_config={"modules_to_not_convert": None, "quant_method": "bitnet"}),
        dtype=torch.bfloat16, seed=12, storage="bitlinear",
        tok=("bytelevel", LLAMA3_SPECIALS, toks.LLAMA3_PATTERN, False, ["<|begin_of_text|>"], []),
        tok_cfg=tok_config(bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>",
                           tokenizer_class="PreTrainedTokenizerFast"),
        gen={"bos_token_id": 598, "eos_token_id": 599, "do_sample": False}),
    # tiiuae Falcon3-*-1.58bit: LlamaForCausalLM, explicit head_dim (here
    # different from hidden/heads), rope_theta 1000042, eps 1e-6,
    # is_bitnet_config, modules_to_not_convert [lm_head]; no BOS.
    "tiny-falcon3-bitlinear": dict(
        cfg=llama_keys(eos_token_id=599, head_dim=32, hidden_size=96, intermediate_size=288,
                       is_bitnet_config=True, num_attention_heads=4, num_key_value_heads=2,
                       rms_norm_eps=1e-06, rope_theta=1000042, transformers_version="4.48.0.dev0",
                       quantization_config={"modules_to_not_convert": ["lm_head"], "quant_method": "bitnet"}),
        dtype=torch.bfloat16, seed=13, storage="bitlinear",
        tok=("bytelevel", [">>TITLE<<", "<|endoftext|>"], toks.LLAMA3_PATTERN, False, [], []),
        tok_cfg=tok_config(eos_token="<|endoftext|>", tokenizer_class="PreTrainedTokenizerFast"),
        gen={"eos_token_id": 599}),
    # LlamaForCausalLM whose BitLinear normalises its input (transformers'
    # use_rms_norm; per-projection rms_norm.weight) and multiplies by
    # weight_scale (autobitlinear, offline): the newer transformers layout.
    "tiny-llama-rmsnorm-autobitlinear": dict(
        cfg=llama_keys(bos_token_id=598, eos_token_id=599, hidden_size=64, intermediate_size=160,
                       num_attention_heads=4, num_key_value_heads=4, rope_theta=10000.0,
                       tie_word_embeddings=True,
                       quantization_config={"linear_class": "autobitlinear", "quant_method": "bitnet",
                                            "quantization_mode": "offline", "use_rms_norm": True,
                                            "rms_norm_eps": 1e-06}),
        dtype=torch.bfloat16, seed=14, storage="autobitlinear", proj_norm_name=".rms_norm.weight",
        tok=("bytelevel", LLAMA3_SPECIALS, toks.LLAMA3_PATTERN, False, ["<|begin_of_text|>"], []),
        tok_cfg=tok_config(bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>",
                           tokenizer_class="PreTrainedTokenizerFast"),
        gen={"bos_token_id": 598, "eos_token_id": 599}),
    # BitNet-embedding-0.6B: Qwen3 backbone saved bare (Qwen3Model, no
    # "model." prefix), bf16 masters, <proj>.norm.weight before every
    # BitLinear, q/k norms, head_dim 32 != hidden/heads; last-token pooling
    # + L2 (sentence-transformers files); the tokenizer appends <|endoftext|>.
    "tiny-qwen3-embed": dict(
        cfg={"architectures": ["Qwen3Model"], "attention_bias": False, "attention_dropout": 0.0,
             "bos_token_id": 598, "eos_token_id": 598, "head_dim": 32, "hidden_act": "silu", "hidden_size": 48,
             "initializer_range": 0.02, "intermediate_size": 136, "max_position_embeddings": 512,
             "max_window_layers": 2, "model_type": "qwen3", "num_attention_heads": 4, "num_hidden_layers": 2,
             "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 1000000,
             "sliding_window": None, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
             "transformers_version": "4.51.3", "use_cache": True, "use_sliding_window": False,
             "vocab_size": VOCAB},
        dtype=torch.bfloat16, seed=15, storage="master", prefix="", embed=True,
        tok=("bytelevel", ["<|endoftext|>", "<|im_end|>"], toks.QWEN2_PATTERN, True, [], ["<|endoftext|>"]),
        tok_cfg=tok_config(eos_token="<|endoftext|>", pad_token="<|endoftext|>", tokenizer_class="Qwen2Tokenizer"),
        gen={"bos_token_id": 598, "eos_token_id": 598}),
    # BitNet-embedding-270M: Gemma3 text backbone saved bare
    # (Gemma3TextModel), GELU-tanh, sqrt(hidden) embedding scale, sandwich
    # norms with (1+w), query_pre_attn_scalar, sliding-window layers with
    # their own RoPE base, per-projection norms; SentencePiece-style
    # tokenizer that prepends <bos>.
    "tiny-gemma3-embed": dict(
        cfg={"architectures": ["Gemma3TextModel"], "attention_bias": False, "attention_dropout": 0.0,
             "attn_logit_softcapping": None, "bos_token_id": 2, "eos_token_id": 1, "final_logit_softcapping": None,
             "head_dim": 32, "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 40,
             "initializer_range": 0.02, "intermediate_size": 112,
             "layer_types": ["sliding_attention", "sliding_attention", "full_attention"],
             "max_position_embeddings": 512, "model_type": "gemma3_text", "num_attention_heads": 2,
             "num_hidden_layers": 3, "num_key_value_heads": 1, "pad_token_id": 0, "query_pre_attn_scalar": 32,
             "rms_norm_eps": 1e-06, "rope_local_base_freq": 10000.0, "rope_scaling": None,
             "rope_theta": 1000000.0, "sliding_window": 8, "tie_word_embeddings": True,
             "torch_dtype": "bfloat16", "transformers_version": "4.53.0", "use_cache": True,
             "vocab_size": VOCAB},
        dtype=torch.bfloat16, seed=16, storage="master", prefix="", embed=True,
        tok=("sp", ["<pad>", "<eos>", "<bos>", "<unk>"], "<unk>", False, ["<bos>"], []),
        tok_cfg=tok_config(add_bos_token=True, add_eos_token=False, bos_token="<bos>", eos_token="<eos>",
                           pad_token="<pad>", unk_token="<unk>", tokenizer_class="GemmaTokenizer"),
        gen={"bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0}),
}


# ---------------------------------------------------------------- tokenizers

def build_tokenizer(spec, text):
    kind = spec["tok"][0]
    if kind == "bytelevel":
        _, specials, pattern, nfc, pre, suf = spec["tok"]
        ids = {s: 598 + i for i, s in enumerate(specials)}
        post = toks.template(pre, suf, ids) if pre or suf else None
        return toks.byte_level(specials, pattern, nfc, post)
    _, specials, unk, prepend, pre, suf = spec["tok"]
    ids = {s: i for i, s in enumerate(specials)}
    post = toks.template(pre, suf, ids)
    return toks.sentencepiece_bpe(text[:mm.TRAIN_CHARS], specials, unk, VOCAB, prepend, post)


def affixes(tj):
    """The ids the tokenizer puts before and after a text."""
    pp = tj.get("post_processor")
    if not pp:
        return [], []
    pre, suf, seen = [], [], False
    for piece in pp["single"]:
        if "Sequence" in piece:
            seen = True
            continue
        t = piece["SpecialToken"]["id"]
        (suf if seen else pre).extend(pp["special_tokens"][t]["ids"])
    return pre, suf


# ---------------------------------------------------------------- training

def train(cfg, prefix, tokens, seed, steps, bos, seq=64, batch=8, lr=3e-3):
    torch.manual_seed(seed)
    params = fam.init_params(cfg, seed, prefix)
    sp = fam.spec_of(cfg)
    opt = torch.optim.AdamW(params.values(), lr=lr, betas=(0.9, 0.95), weight_decay=0.01)
    lin = fam.make_lin(params, sp, "online", ste=True)
    g = torch.Generator().manual_seed(seed + 100)
    t0 = time.time()
    for step in range(steps):
        warm = min(1.0, (step + 1) / 30)
        for pg in opt.param_groups:
            pg["lr"] = lr * warm * 0.5 * (1 + math.cos(math.pi * step / steps))
        starts = torch.randint(0, len(tokens) - seq, (batch,), generator=g)
        body = torch.stack([tokens[s:s + seq] for s in starts])
        ids = torch.cat([torch.full((batch, 1), bos), body], dim=1) if bos is not None else body
        logits = fam.forward(cfg, params, lin, ids[:, :-1], prefix)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg["vocab_size"]), ids[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params.values(), 1.0)
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"  step {step:4d} loss {loss.item():.3f} ({time.time() - t0:.0f}s)", flush=True)
    return {k: v.detach().clone() for k, v in params.items()}


def guard_ternary(weights, dtype):
    """make_models.guard_ternary for every BitLinear weight name."""
    lin_names = {k: v for k, v in weights.items() if any(k.endswith(x + ".weight") for x in fam.LINEARS)}
    n = mm.guard_ternary(lin_names, dtype)
    weights.update(lin_names)
    return n


# ---------------------------------------------------------------- writing

def stored_tensors(spec, w):
    """The checkpoint's tensors in the family's storage form."""
    dtype, storage = spec["dtype"], spec["storage"]
    out = {}
    for k, v in w.items():
        if spec.get("proj_norm_name") and any(k.endswith(x + ".norm.weight") for x in fam.LINEARS):
            k = k[:-len(".norm.weight")] + spec["proj_norm_name"]
        is_lin = any(k.endswith(x + ".weight") for x in fam.LINEARS)
        if is_lin and storage != "master":
            t, _ = ref.ternarize(v.float())
            out[k] = ref.pack(t)
            mean = v.float().abs().mean().clamp(min=1e-5).reshape(1)
            # bitlinear divides by weight_scale (it holds 1/mean|W|);
            # autobitlinear multiplies (it holds mean|W|)
            ws = 1.0 / mean if storage == "bitlinear" else mean
            out[k[:-len("weight")] + "weight_scale"] = ws.to(dtype)
            if not torch.equal(ref.unpack(out[k]), t):
                raise SystemExit(f"{k}: pack/unpack round trip failed")
        else:
            out[k] = v.to(dtype)
    return out


def write_dir(name, spec, tensors, tj):
    d = os.path.join(OUT, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)

    def dump(rel, obj):
        os.makedirs(os.path.dirname(os.path.join(d, rel)), exist_ok=True)
        with open(os.path.join(d, rel), "w") as f:
            json.dump(obj, f, indent=2, ensure_ascii=False)
            f.write("\n")
    dump("config.json", spec["cfg"])
    dump("generation_config.json", spec["gen"])
    dump("tokenizer_config.json", spec["tok_cfg"])
    specials = {k: v for k, v in spec["tok_cfg"].items() if k.endswith("_token")}
    dump("special_tokens_map.json", specials)
    with open(os.path.join(d, "tokenizer.json"), "w") as f:
        json.dump(tj, f, ensure_ascii=False)
        f.write("\n")
    if spec.get("embed"):
        dump("modules.json", [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])
        dump("1_Pooling/config.json", {
            "word_embedding_dimension": spec["cfg"]["hidden_size"], "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False, "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": True, "include_prompt": True})
        dump("config_sentence_transformers.json", {"prompts": {"query": "query: ", "document": ""},
                                                   "default_prompt_name": None, "similarity_fn_name": "cosine"})
    safetensors_io.save(os.path.join(d, "model.safetensors"), tensors, {"format": "pt"})
    return d


def load_dir(d):
    """Independent reload: (cfg, fp32 weights, BitLinear flavour, prefix)."""
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    raw = safetensors_io.load(os.path.join(d, "model.safetensors"))
    weights = {k: v if v.dtype == torch.uint8 else v.to(torch.float32) for k, v in raw.items()}
    q = cfg.get("quantization_config") or {}
    packed = any(v.dtype == torch.uint8 for v in raw.values())
    mode = "offline" if packed else "online"
    lin = fam.make_lin(weights, fam.spec_of(cfg), mode, q.get("linear_class", "bitlinear"))
    prefix = "model." if "model.embed_tokens.weight" in raw else ""
    return cfg, weights, lin, prefix


# ---------------------------------------------------------------- goldens

def as_model(loaded):
    """A (cfg, weights, lin) triple whose ref.forward is families.forward, for make_models' golden helpers."""
    cfg, weights, lin, prefix = loaded
    return cfg, weights, lin, prefix


def logits_of(model, ids):
    cfg, weights, lin, prefix = model
    with torch.no_grad():
        return fam.forward(cfg, weights, lin, torch.tensor([ids]), prefix)[0]


def noisy(model, seed, eps=mm.NOISE):
    cfg, weights, lin, prefix = model
    g = torch.Generator().manual_seed(seed)

    def nlin(name, x):
        return lin(name, x * (1 + eps * (2 * torch.rand(x.shape, generator=g) - 1)))
    return cfg, weights, nlin, prefix


def embedding_of(model, ids):
    cfg, weights, lin, prefix = model
    with torch.no_grad():
        h = fam.forward(cfg, weights, lin, torch.tensor([ids]), prefix, hidden_only=True)[0]
    return fam.pool(cfg, h, "last", True)


def make_lm_golden(model, held, dec, bos):
    """make_models.make_golden with the family forward (windows, greedy, logits)."""
    mm.logits_of = logits_of  # the helpers below call these module functions
    mm.noisy = noisy
    mm.BOS = bos
    return mm.make_golden(model, held, dec)


def make_embed_golden(model, held, dec, pre, suf):
    """Embeddings of held-out prose texts whose embedding moves least under
    the noisy variants (so another implementation's roundings keep cosine
    >= 0.9999 with margin)."""
    cands = []
    for start in range(1000, 20000, 311):
        n = 12 + (start // 311) % 40
        body = [int(t) for t in held[start:start + n]]
        if not mm.is_prose(dec, body):
            continue
        ids = pre + body + suf
        base = embedding_of(model, ids)
        worst = min(float(torch.dot(embedding_of(noisy(model, s), ids), base)) for s in range(mm.N_VARIANTS))
        cands.append((1 - worst, start, ids, base, body))
    cands.sort(key=lambda c: c[0])
    chosen = sorted(cands[:N_EMBED], key=lambda c: c[1])
    print("  embedding sensitivity (1 - cos): chosen " + ", ".join(f"{c[0]:.1e}" for c in chosen)
          + f"; median {cands[len(cands) // 2][0]:.1e}")
    # text: the body alone (the tokenizer adds pre/suf around it)
    return {"embeddings": [{"tokens": c[2], "text": dec.decode(c[4]), "embedding": c[3].tolist()} for c in chosen],
            "pooling": "last", "normalize": True}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--golden-only", action="store_true")
    ap.add_argument("--out", default="")
    ap.add_argument("--no-golden", action="store_true", help="write the models only (smoke test)")
    args = ap.parse_args()
    global OUT
    if args.out:
        OUT = mm.OUT = args.out
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    text = opticks()
    for name, spec in MODELS.items():
        if args.only and args.only != name:
            continue
        prefix = spec.get("prefix", "model.")
        d = os.path.join(OUT, name)
        if args.golden_only:
            with open(os.path.join(d, "tokenizer.json")) as f:
                tj = json.load(f)
        else:
            tj = build_tokenizer(spec, text)
        tpath = os.path.join("/tmp", f"tok-{name}.json")
        with open(tpath, "w") as f:
            json.dump(tj, f, ensure_ascii=False)
        enc = toks.encoder(tj, tpath)
        train_toks = torch.tensor(enc.encode(text[:mm.TRAIN_CHARS]))
        held = torch.tensor(enc.encode(text[mm.HELDOUT_FROM:mm.HELDOUT_FROM + 60_000]))
        if enc.decode(train_toks.tolist()[:2000]) != text[:len(enc.decode(train_toks.tolist()[:2000]))]:
            raise SystemExit(f"{name}: tokenizer round trip failed")
        pre, suf = affixes(tj)
        # the token that starts training sequences and golden windows: BOS
        # where the tokenizer adds one, else the end-of-text separator
        bos = spec["cfg"].get("bos_token_id") if pre else None
        lead = bos if bos is not None else spec["cfg"]["eos_token_id"]
        if not args.golden_only:
            print(f"{name}: training ({len(train_toks)} tokens)", flush=True)
            w = train(spec["cfg"], prefix, train_toks, spec["seed"], args.steps, None if spec.get("embed") else lead)
            n = guard_ternary(w, spec["dtype"] if spec["storage"] == "master" else torch.float32)
            print(f"  nudged {n} weights off ternary rounding boundaries")
            write_dir(name, spec, stored_tensors(spec, w), tj)
        model = load_dir(d)
        if args.no_golden:
            print(f"  {name}: logits of [lead] {logits_of(model, [lead])[-1][:3].tolist()}")
            continue
        if spec.get("embed"):
            golden = make_embed_golden(model, held, enc, pre, suf)
        else:
            golden = make_lm_golden(model, held, enc, lead)
            mm.summarize(name, golden)
        golden["family"] = fam.family_of(spec["cfg"])
        mm.write_json(os.path.join(d, "golden.json"), golden)
        print(f"  {name}: {os.path.getsize(os.path.join(d, 'model.safetensors'))} bytes of weights", flush=True)


if __name__ == "__main__":
    main()
