"""Minimal Hugging Face tokenizer.json byte-level BPE encoder/decoder.

Covers exactly what the project's tokenizers use: added/special tokens matched
first, a Split(Regex, Isolated) pre-tokenizer followed by ByteLevel (no regex),
BPE with `ignore_merges`, ByteLevel decoding. Written for the reference only
(Debian has no `tokenizers` package); the Go tokenizer is tested independently.
"""

import json

import regex  # Debian python3-regex: needed for \p{L} and the (?!\S) look-ahead


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character table."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("\xa1"), ord("\xac") + 1))
        + list(range(ord("\xae"), ord("\xff") + 1))
    )
    table = {b: chr(b) for b in printable}
    n = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + n)
            n += 1
    return table


class Tokenizer:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
        model = spec["model"]
        if model["type"] != "BPE":
            raise ValueError(f"{path}: model type {model['type']!r}, want BPE")
        self.vocab = dict(model["vocab"])
        self.ignore_merges = bool(model.get("ignore_merges", False))
        self.ranks = {}
        for i, m in enumerate(model["merges"]):
            a, b = m.split(" ") if isinstance(m, str) else m
            self.ranks[(a, b)] = i
        self.added = {t["content"]: t["id"] for t in spec.get("added_tokens", [])}
        for content, tid in self.added.items():
            self.vocab.setdefault(content, tid)
        self.id_to_token = {v: k for k, v in self.vocab.items()}
        self.split_res = []
        pre = spec["pre_tokenizer"]
        steps = pre["pretokenizers"] if pre["type"] == "Sequence" else [pre]
        for st in steps:
            if st["type"] == "Split":
                if st.get("behavior") != "Isolated" or st.get("invert"):
                    raise ValueError(f"{path}: unsupported Split {st}")
                self.split_res.append(regex.compile(st["pattern"]["Regex"]))
            elif st["type"] == "ByteLevel":
                if st.get("use_regex") or st.get("add_prefix_space"):
                    raise ValueError(f"{path}: unsupported ByteLevel {st}")
            else:
                raise ValueError(f"{path}: unsupported pre-tokenizer {st['type']}")
        self.b2u = bytes_to_unicode()
        self.u2b = {v: k for k, v in self.b2u.items()}
        self.cache = {}

    def _split(self, text):
        pieces = [text]
        for rx in self.split_res:
            out = []
            for p in pieces:
                pos = 0
                for m in rx.finditer(p):
                    if m.start() > pos:
                        out.append(p[pos:m.start()])
                    if m.end() > m.start():
                        out.append(m.group())
                    pos = m.end()
                if pos < len(p):
                    out.append(p[pos:])
            pieces = out
        return pieces

    def _bpe(self, word):
        if word in self.cache:
            return self.cache[word]
        if self.ignore_merges and word in self.vocab:
            ids = [self.vocab[word]]
        else:
            parts = list(word)
            while len(parts) > 1:
                best, best_rank = None, None
                for i in range(len(parts) - 1):
                    r = self.ranks.get((parts[i], parts[i + 1]))
                    if r is not None and (best_rank is None or r < best_rank):
                        best, best_rank = i, r
                if best is None:
                    break
                merged = parts[best] + parts[best + 1]
                # merge every occurrence of this pair left to right, like HF
                out, i = [], 0
                a, b = parts[best], parts[best + 1]
                while i < len(parts):
                    if i < len(parts) - 1 and parts[i] == a and parts[i + 1] == b:
                        out.append(merged)
                        i += 2
                    else:
                        out.append(parts[i])
                        i += 1
                parts = out
            ids = [self.vocab[p] for p in parts]
        self.cache[word] = ids
        return ids

    def encode(self, text):
        ids = []
        # special tokens first: split the text around their exact contents
        segments = [(text, False)]
        for content in sorted(self.added, key=len, reverse=True):
            nxt = []
            for seg, special in segments:
                if special:
                    nxt.append((seg, True))
                    continue
                parts = seg.split(content)
                for i, p in enumerate(parts):
                    if i:
                        nxt.append((content, True))
                    if p:
                        nxt.append((p, False))
            segments = nxt
        for seg, special in segments:
            if special:
                ids.append(self.added[seg])
                continue
            for piece in self._split(seg):
                word = "".join(self.b2u[b] for b in piece.encode("utf-8"))
                ids.extend(self._bpe(word))
        return ids

    def decode(self, ids):
        out = bytearray()
        for i in ids:
            tok = self.id_to_token[i]
            if tok in self.added:
                out.extend(tok.encode("utf-8"))
            else:
                out.extend(self.u2b[c] for c in tok)
        return out.decode("utf-8", errors="replace")
