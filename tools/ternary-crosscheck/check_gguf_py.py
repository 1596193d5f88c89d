#!/usr/bin/env python3
"""Cross-checks shared/ternary's GGUF golden files against llama.cpp's gguf-py.

Rebuilds the 8x512 pattern matrix of shared/ternary/golden_test.go, quantizes
T*scale with gguf-py's numpy TQ1_0/TQ2_0 quantizers and compares the bytes with
shared/ternary/testdata/golden/pattern.tq{1,2}_0.bin; it also dequantizes the
golden files and compares the values. Not run in CI (needs numpy and a
llama.cpp checkout):

    python3 tools/ternary-crosscheck/check_gguf_py.py /path/to/llama.cpp/gguf-py
"""
import pathlib
import sys

import numpy as np

ROWS, COLS, SCALE = 8, 512, np.float32(0.8125)


def pattern() -> np.ndarray:
    t = np.empty((ROWS, COLS), dtype=np.float32)
    for r in range(ROWS):
        for c in range(COLS):
            t[r, c] = (r * 7 + c * 3 + c // 5) % 3 - 1
    t[5, 256:] = 0  # an all-zero block: d = 0
    return t * SCALE


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    sys.path.insert(0, sys.argv[1])
    from gguf.constants import GGMLQuantizationType as T  # noqa: E402
    from gguf.quants import dequantize, quantize  # noqa: E402

    golden = pathlib.Path(__file__).resolve().parents[2] / "shared/ternary/testdata/golden"
    w = pattern()
    ok = True
    for name, qt in (("tq2_0", T.TQ2_0), ("tq1_0", T.TQ1_0)):
        want = (golden / f"pattern.{name}.bin").read_bytes()
        got = quantize(w, qt).tobytes()
        same = got == want
        vals = dequantize(np.frombuffer(want, dtype=np.uint8).reshape(ROWS, -1), qt)
        same_vals = np.array_equal(vals, w)
        print(f"{name}: bytes {'match' if same else 'DIFFER'}, dequantized values {'match' if same_vals else 'DIFFER'}")
        ok = ok and same and same_vals
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
