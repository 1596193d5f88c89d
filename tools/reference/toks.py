"""Small tokenizers in each family's tokenizer.json format, trained on the
Opticks text (the synthetic checkpoints' vocabularies are 600 tokens; the real
vocabularies are fam-formats' subject).

- byte_level(): byte-level BPE (GPT-2 alphabet) with a Split pre-tokenizer:
  LLaMA 3 / BitNet 2B4T / HF1BitLLM / Falcon3 (the LLaMA 3 pattern) and Qwen3
  (Qwen2's pattern, single digits, NFC normalizer), from the opticks-bpe600
  merges.
- sentencepiece_bpe(): SentencePiece-style BPE as transformers converts it:
  normalizer Prepend("▁") + Replace(" ", "▁") (LLaMA 2, 1bitLLM) or only the
  Replace (Gemma 3), no pre-tokenizer, byte_fallback with <0x00>..<0xFF>
  tokens, fuse_unk; merges learned here.
SPEncoder encodes with such a file (merge ranks, byte fallback), for goldens.
"""

import collections
import copy
import json

import bpe

OPTICKS_BPE = "/work/shared/data/opticks-bpe600/tokenizer.json"

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
SPACE = "\u2581"


def added(i, content):
    return {"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": True}


def template(pre, suf, ids):
    """A tokenizers TemplateProcessing putting special tokens pre/suf around $A."""
    single = [{"SpecialToken": {"id": t, "type_id": 0}} for t in pre] + [{"Sequence": {"id": "A", "type_id": 0}}] \
        + [{"SpecialToken": {"id": t, "type_id": 0}} for t in suf]
    pair = single + [{"Sequence": {"id": "B", "type_id": 1}}]
    return {"type": "TemplateProcessing", "single": single, "pair": pair,
            "special_tokens": {t: {"id": t, "ids": [ids[t]], "tokens": [t]} for t in pre + suf}}


def byte_level(specials, pattern=LLAMA3_PATTERN, nfc=False, post=None):
    """The opticks-bpe600 tokenizer.json with its two special tokens renamed
    (ids 598, 599), the given Split pattern and post-processor."""
    with open(OPTICKS_BPE) as f:
        tj = json.load(f)
    tj = copy.deepcopy(tj)
    tj["added_tokens"] = [added(598 + i, s) for i, s in enumerate(specials)]
    tj["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = pattern
    if nfc:
        tj["normalizer"] = {"type": "NFC"}
    tj["post_processor"] = post
    return tj


# ---------------------------------------------------------------- SentencePiece-style BPE

def train_sp_bpe(text, specials, vocab_size, prepend=True):
    """Learn merges on ▁-words: specials first, then the 256 byte tokens, the
    characters seen, then merged pieces (no piece has ▁ inside, as
    SentencePiece's split_by_whitespace)."""
    norm = text.replace(" ", SPACE)
    if prepend:
        norm = SPACE + norm
    words = collections.Counter()
    cur = ""
    for ch in norm:
        if ch == SPACE and cur:
            words[cur] += 1
            cur = ""
        cur += ch
    if cur:
        words[cur] += 1
    vocab = {}
    for s in specials:
        vocab[s] = len(vocab)
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    chars = collections.Counter()
    for w, n in words.items():
        for ch in w:
            chars[ch] += n
    for ch, _ in sorted(chars.items(), key=lambda kv: (-kv[1], kv[0])):
        if ch not in vocab and len(vocab) < vocab_size:
            vocab[ch] = len(vocab)
    splits = {w: list(w) for w in words}
    merges = []
    while len(vocab) < vocab_size:
        pairs = collections.Counter()
        for w, n in words.items():
            s = splits[w]
            for a, b in zip(s, s[1:]):
                if b.startswith(SPACE):
                    continue
                pairs[(a, b)] += n
        if not pairs:
            break
        (a, b), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        merges.append([a, b])
        vocab[a + b] = len(vocab)
        for w in words:
            s = splits[w]
            i, out = 0, []
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            splits[w] = out
    return vocab, merges


def sentencepiece_bpe(text, specials, unk, vocab_size, prepend, post):
    """A tokenizer.json of LLaMA 2 (prepend=True) or Gemma 3 (False) form."""
    vocab, merges = train_sp_bpe(text, specials, vocab_size, prepend)
    norms = [{"type": "Replace", "pattern": {"String": " "}, "content": SPACE}]
    if prepend:
        norms.insert(0, {"type": "Prepend", "prepend": SPACE})
    decoder = [{"type": "Replace", "pattern": {"String": SPACE}, "content": " "},
               {"type": "ByteFallback"}, {"type": "Fuse"}]
    if prepend:
        decoder.append({"type": "Strip", "content": " ", "start": 1, "stop": 0})
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(vocab[s], s) for s in specials],
        "normalizer": {"type": "Sequence", "normalizers": norms} if prepend else norms[0],
        "pre_tokenizer": None,
        "post_processor": post,
        "decoder": {"type": "Sequence", "decoders": decoder},
        "model": {"type": "BPE", "dropout": None, "unk_token": unk, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": [" ".join(m) for m in merges]},
    }


class SPEncoder:
    """Encodes with a SentencePiece-style BPE tokenizer.json (no special tokens
    in the text): normalise, split at ▁, merge by rank, byte-fallback the rest."""

    def __init__(self, tj):
        m = tj["model"]
        self.vocab = m["vocab"]
        self.ranks = {tuple(s.split(" ")): i for i, s in enumerate(m["merges"])}
        n = tj["normalizer"]
        self.prepend = n.get("type") == "Sequence"
        self.id_to_token = {i: t for t, i in self.vocab.items()}

    def encode(self, text):
        norm = text.replace(" ", SPACE)
        if self.prepend:
            norm = SPACE + norm
        ids, cur = [], ""
        for ch in norm:
            if ch == SPACE and cur:
                ids.extend(self._word(cur))
                cur = ""
            cur += ch
        if cur:
            ids.extend(self._word(cur))
        return ids

    def _word(self, w):
        parts = list(w)
        while len(parts) > 1:
            best, rank = None, None
            for i in range(len(parts) - 1):
                r = self.ranks.get((parts[i], parts[i + 1]))
                if r is not None and (rank is None or r < rank):
                    best, rank = i, r
            if best is None:
                break
            parts = parts[:best] + [parts[best] + parts[best + 1]] + parts[best + 2:]
        out = []
        for p in parts:
            if p in self.vocab:
                out.append(self.vocab[p])
            else:
                out.extend(self.vocab[f"<0x{b:02X}>"] for b in p.encode("utf-8"))
        return out

    def decode(self, ids):
        buf = bytearray()
        for i in ids:
            t = self.id_to_token[i]
            if t.startswith("<0x") and t.endswith(">") and len(t) == 6:
                buf.append(int(t[3:5], 16))
            elif t.startswith("<") and t.endswith(">"):
                continue
            else:
                buf.extend(t.replace(SPACE, " ").encode("utf-8"))
        s = buf.decode("utf-8", errors="replace")
        return s[1:] if self.prepend and s.startswith(" ") else s


def encoder(tj, path):
    """An encoder for tokenizer.json tj written at path."""
    if tj["model"].get("byte_fallback"):
        return SPEncoder(tj)
    return bpe.Tokenizer(path)
