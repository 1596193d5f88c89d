"""Tiny safetensors writer and reader (Debian has no `safetensors` package).

Format: 8-byte little-endian header length N, N bytes of JSON header
{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}
padded with spaces to a multiple of 8, then the raw little-endian tensor bytes;
offsets are relative to the end of the header.
"""

import json
import struct

import torch

_DTYPES = {
    torch.float32: ("F32", 4),
    torch.bfloat16: ("BF16", 2),
    torch.float16: ("F16", 2),
    torch.uint8: ("U8", 1),
    torch.int8: ("I8", 1),
}
_BY_NAME = {v[0]: k for k, v in _DTYPES.items()}


def _raw_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype in (torch.bfloat16, torch.float16):
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def save(path, tensors, metadata=None):
    """Write tensors (name -> torch.Tensor) sorted by name."""
    header = {"__metadata__": dict(metadata or {"format": "pt"})}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name]
        if t.dtype not in _DTYPES:
            raise ValueError(f"{name}: unsupported dtype {t.dtype}")
        raw = _raw_bytes(t)
        header[name] = {
            "dtype": _DTYPES[t.dtype][0],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        blobs.append(raw)
        offset += len(raw)
    hdr = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hdr += b" " * ((8 - len(hdr) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hdr)))
        f.write(hdr)
        for b in blobs:
            f.write(b)


def load(path):
    """Read every tensor back (name -> torch.Tensor in its stored dtype)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _BY_NAME[info["dtype"]]
        b, e = info["data_offsets"]
        raw = bytearray(body[b:e])
        if dtype in (torch.bfloat16, torch.float16):
            t = torch.frombuffer(raw, dtype=torch.int16).view(dtype)
        else:
            t = torch.frombuffer(raw, dtype=dtype)
        out[name] = t.reshape(info["shape"]).clone()
    return out
