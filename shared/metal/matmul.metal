// matmul.metal: products of packed weight rows with per-token int8
// activations, exact in int32, scaled like package kernels' generic path:
//
//   y[t*rows + r] = float(dot(W[r], q[t]) - zero*sum[t]) * (scale(r) / ascale[t])
//
// with scale(r) the tensor's scale (ternary) or the row's (heads). A weight
// row is read as 4-byte words; a format decodes word i of a row into
// pieces() groups of four weights and the activation offsets they multiply.
// mv_* (one token per grid row: decode) gives each SIMD group MV_ROWS rows
// whose words its 32 lanes share, then reduces with simd_sum. mm_* (prefill,
// batched decode) tiles MM_SIMDS*MM_ROWS rows x MM_TOKENS tokens per
// threadgroup and stages the tokens' activations in threadgroup memory,
// MM_KC bytes per token at a time, so every weight word read from memory
// serves MM_TOKENS tokens.

// FmtTernary: package ternary's 2-bit codes c = w+1. In each 32-byte group of
// 128 weights, bits 2n..2n+1 of byte m hold weight 32n+m; a word at byte o
// holds weights g*128 + 32n + m + {0..3} (g = o/32, m = o%32) for n = 0..3.
struct FmtTernary {
    static uint per_word() { return 16u; }
    static uint pieces() { return 4u; }
    static bool is_signed() { return false; }
    static bool row_scales() { return false; }
    static void offsets(uint i, thread uint* off) {
        uint o = 4u * i;
        uint base = (o >> 5) * 128u + (o & 31u);
        for (uint n = 0u; n < 4u; n++) {
            off[n] = base + 32u * n;
        }
    }
    static void weights(device const uchar* row, uint i, thread uint* wv) {
        uint c = ld_u32(row, 4u * i);
        for (uint n = 0u; n < 4u; n++) {
            wv[n] = (c >> (2u * n)) & 0x03030303u;
        }
    }
};

// FmtInt8: package kernels' Int8Matrix rows, one signed byte per weight.
struct FmtInt8 {
    static uint per_word() { return 4u; }
    static uint pieces() { return 1u; }
    static bool is_signed() { return true; }
    static bool row_scales() { return true; }
    static void offsets(uint i, thread uint* off) { off[0] = 4u * i; }
    static void weights(device const uchar* row, uint i, thread uint* wv) { wv[0] = ld_u32(row, 4u * i); }
};

// FmtPacked: package kernels' PackedMatrix (6 bits: BLOCK 192, 4 bits:
// BLOCK 128). A 256-weight block stores u = w + 2^(bits-1) as 128 bytes of
// nibbles (byte j: weight j low, weight 128+j high), then for 6 bits 64
// bytes of the high two bits (byte j, bits 2n..2n+1: weight 64n+j). Word i
// is nibble bytes j..j+3 of block i/32 (j = 4*(i%32)).
template <uint BLOCK>
struct FmtPacked {
    static uint per_word() { return 8u; }
    static uint pieces() { return 2u; }
    static bool is_signed() { return false; }
    static bool row_scales() { return true; }
    static void offsets(uint i, thread uint* off) {
        uint j = 4u * (i & 31u);
        off[0] = (i >> 5) * 256u + j;
        off[1] = off[0] + 128u;
    }
    static void weights(device const uchar* row, uint i, thread uint* wv) {
        uint b = (i >> 5) * BLOCK;
        uint j = 4u * (i & 31u);
        uint x = ld_u32(row, b + j);
        uint lo = x & 0x0f0f0f0fu;
        uint hi = (x >> 4) & 0x0f0f0f0fu;
        if (BLOCK == 192u) {
            uint h = ld_u32(row, b + 128u + (j & 63u));
            uint sh = 2u * (j >> 6);
            lo |= ((h >> sh) & 0x03030303u) << 4;
            hi |= ((h >> (sh + 4u)) & 0x03030303u) << 4;
        }
        wv[0] = lo;
        wv[1] = hi;
    }
};

template <typename F>
inline int dot_piece(uint wv, uint x) {
    return F::is_signed() ? dot4s(wv, x) : dot4u(wv, x);
}

// finish writes one output from its exact dot d.
template <typename F>
inline void finish(int d, uint r, uint t, device const float* ascale, device const int* asum,
                   device const float* wscales, device float* y, constant MatParams& p) {
    d -= int(p.zero) * ld_i32(asum, t);
    float ws = F::row_scales() ? ld_f32(wscales, r) : p.wscale;
    st_f32(y, t * p.rows + r, i2f_rn(d) * div_rn(ws, ld_f32(ascale, t)));
}

template <typename F>
inline void mv_impl(device const uchar* w, device const char* q, device const float* ascale, device const int* asum,
                    device const float* wscales, device float* y, constant MatParams& p,
                    uint3 tgpig, ushort sgitg, ushort tiisg) {
    const uint r0 = (tgpig.x * MV_SIMDS + uint(sgitg)) * MV_ROWS;
    const uint t = tgpig.y;
    device const char* qt = q + t * p.kp;
    const uint words = p.kp / F::per_word();
    int acc[MV_ROWS];
    for (uint k = 0u; k < MV_ROWS; k++) {
        acc[k] = 0;
    }
    for (uint i = tiisg; i < words; i += 32u) {
        uint off[4];
        uint x[4];
        F::offsets(i, off);
        for (uint n = 0u; n < F::pieces(); n++) {
            x[n] = ld_u32(qt, off[n]);
        }
        for (uint k = 0u; k < MV_ROWS; k++) {
            // Rows past the end read the last row (uniform work, no
            // divergence) and are not written.
            uint r = min(r0 + k, p.rows - 1u);
            uint wv[4];
            F::weights(w + r * p.row_bytes, i, wv);
            int s = 0;
            for (uint n = 0u; n < F::pieces(); n++) {
                s += dot_piece<F>(wv[n], x[n]);
            }
            acc[k] += s;
        }
    }
    int mine = 0;
    for (uint k = 0u; k < MV_ROWS; k++) {
        int v = simd_sum(acc[k]);
        if (uint(tiisg) == k) {
            mine = v;
        }
    }
    const uint r = r0 + uint(tiisg);
    if (uint(tiisg) < MV_ROWS && r < p.rows) {
        finish<F>(mine, r, t, ascale, asum, wscales, y, p);
    }
}

template <typename F>
inline void mm_impl(device const uchar* w, device const char* q, device const float* ascale, device const int* asum,
                    device const float* wscales, device float* y, constant MatParams& p, threadgroup uint* tq,
                    uint3 tgpig, ushort tid, ushort sgitg, ushort tiisg) {
    const uint r0 = (tgpig.x * MM_SIMDS + uint(sgitg)) * MM_ROWS;
    const uint t0 = tgpig.y * MM_TOKENS;
    const uint tw = MM_KC / 4u; // words per token in tq
    int acc[MM_ROWS][MM_TOKENS];
    for (uint k = 0u; k < MM_ROWS; k++) {
        for (uint tt = 0u; tt < MM_TOKENS; tt++) {
            acc[k][tt] = 0;
        }
    }
    for (uint k0 = 0u; k0 < p.kp; k0 += MM_KC) {
        const uint kc = min(uint(MM_KC), p.kp - k0);
        const uint wpt = kc / 4u;
        // Stage MM_TOKENS tokens x kc activation bytes (zero past n).
        for (uint j = tid; j < MM_TOKENS * wpt; j += MM_SIMDS * 32u) {
            uint tt = j / wpt;
            uint wi = j - tt * wpt;
            uint tok = t0 + tt;
            uint v = 0u;
            if (tok < p.n) {
                v = ld_u32(q, tok * p.kp + k0 + 4u * wi);
            }
            st_tg(tq, tt * tw + wi, v);
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        const uint i1 = (k0 + kc) / F::per_word();
        for (uint i = k0 / F::per_word() + tiisg; i < i1; i += 32u) {
            uint off[4];
            F::offsets(i, off);
            uint wv[MM_ROWS][4];
            for (uint k = 0u; k < MM_ROWS; k++) {
                F::weights(w + min(r0 + k, p.rows - 1u) * p.row_bytes, i, wv[k]);
            }
            for (uint tt = 0u; tt < MM_TOKENS; tt++) {
                uint x[4];
                for (uint n = 0u; n < F::pieces(); n++) {
                    x[n] = ld_tg(tq, tt * tw + (off[n] - k0) / 4u);
                }
                for (uint k = 0u; k < MM_ROWS; k++) {
                    int s = 0;
                    for (uint n = 0u; n < F::pieces(); n++) {
                        s += dot_piece<F>(wv[k][n], x[n]);
                    }
                    acc[k][tt] += s;
                }
            }
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    // MM_ROWS*MM_TOKENS == 32: lane l finishes row l/MM_TOKENS, token l%MM_TOKENS.
    int mine = 0;
    for (uint k = 0u; k < MM_ROWS; k++) {
        for (uint tt = 0u; tt < MM_TOKENS; tt++) {
            int v = simd_sum(acc[k][tt]);
            if (uint(tiisg) == k * MM_TOKENS + tt) {
                mine = v;
            }
        }
    }
    const uint r = r0 + uint(tiisg) / MM_TOKENS;
    const uint t = t0 + uint(tiisg) % MM_TOKENS;
    if (r < p.rows && t < p.n) {
        finish<F>(mine, r, t, ascale, asum, wscales, y, p);
    }
}

// The argument lists every product kernel shares; package metal binds
// buffers by these indices (bindings.go).
#define MAT_ARGS                                                                                       \
    device const uchar *w [[buffer(0)]], device const char *q [[buffer(1)]],                           \
        device const float *ascale [[buffer(2)]], device const int *asum [[buffer(3)]],                \
        device const float *wscales [[buffer(4)]], device float *y [[buffer(5)]],                      \
        constant MatParams &p [[buffer(6)]]
#define MV_BUILTINS uint3 tgpig [[threadgroup_position_in_grid]], ushort sgitg [[simdgroup_index_in_threadgroup]], \
                    ushort tiisg [[thread_index_in_simdgroup]]
#define MM_BUILTINS                                                                                    \
    threadgroup uint *tq [[TG_INDEX(0)]], uint3 tgpig [[threadgroup_position_in_grid]],             \
        ushort tid [[thread_index_in_threadgroup]], ushort sgitg [[simdgroup_index_in_threadgroup]],     \
        ushort tiisg [[thread_index_in_simdgroup]]

kernel void mv_ternary(MAT_ARGS, MV_BUILTINS) {
    mv_impl<FmtTernary>(w, q, ascale, asum, wscales, y, p, tgpig, sgitg, tiisg);
}
kernel void mv_int8(MAT_ARGS, MV_BUILTINS) {
    mv_impl<FmtInt8>(w, q, ascale, asum, wscales, y, p, tgpig, sgitg, tiisg);
}
kernel void mv_int6(MAT_ARGS, MV_BUILTINS) {
    mv_impl<FmtPacked<192u>>(w, q, ascale, asum, wscales, y, p, tgpig, sgitg, tiisg);
}
kernel void mv_int4(MAT_ARGS, MV_BUILTINS) {
    mv_impl<FmtPacked<128u>>(w, q, ascale, asum, wscales, y, p, tgpig, sgitg, tiisg);
}
kernel void mm_ternary(MAT_ARGS, MM_BUILTINS) {
    mm_impl<FmtTernary>(w, q, ascale, asum, wscales, y, p, tq, tgpig, tid, sgitg, tiisg);
}
kernel void mm_int8(MAT_ARGS, MM_BUILTINS) {
    mm_impl<FmtInt8>(w, q, ascale, asum, wscales, y, p, tq, tgpig, tid, sgitg, tiisg);
}
kernel void mm_int6(MAT_ARGS, MM_BUILTINS) {
    mm_impl<FmtPacked<192u>>(w, q, ascale, asum, wscales, y, p, tq, tgpig, tid, sgitg, tiisg);
}
kernel void mm_int4(MAT_ARGS, MM_BUILTINS) {
    mm_impl<FmtPacked<128u>>(w, q, ascale, asum, wscales, y, p, tq, tgpig, tid, sgitg, tiisg);
}
