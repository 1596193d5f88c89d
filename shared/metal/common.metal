// common.metal: what every bitnet-mesh kernel shares. The Go host
// concatenates the .metal files in the order of package metal's sourceFiles
// and compiles them with newLibraryWithSource; the emulator (shared/metal/
// emulator) compiles the same bytes as C++ against msl_emu.h.
//
// Rules the kernels keep, so that emulation is faithful and results are
// bit-identical to the CPU paths of package kernels:
//   - every device and threadgroup memory access goes through the ld_/st_
//     helpers below (the emulator checks bounds and alignment there);
//   - threadgroup memory is a kernel parameter ([[TG_INDEX(0)]]), sized by
//     the host, never a local array (the emulator shares parameters, not
//     locals, between the threads of a group);
//   - SIMD-group functions and barriers run in uniform control flow: every
//     thread of the group (or SIMD group) that has not returned reaches the
//     same call the same number of times (the emulator checks this);
//   - dot products are exact int32 sums, so their order does not matter;
//     the only float operations are int-to-float conversion and one product,
//     both correctly rounded; divisions are done in integers (div_rn).
#ifdef __METAL_VERSION__
#include <metal_stdlib>
using namespace metal;
#define TG_INDEX(i) threadgroup(i)
#define EMU_CHECK_READ(p, n)
#define EMU_CHECK_WRITE(p, n)
#else
#include "msl_emu.h"
// threadgroup is an (empty) macro there: [[threadgroup(0)]] would lose its name.
#define TG_INDEX(i) emu_threadgroup(i)
#define EMU_CHECK_READ(p, n) emu::check_read((const void*)(p), (n))
#define EMU_CHECK_WRITE(p, n) emu::check_write((const void*)(p), (n))
#endif

// Kernel geometry. The Go host (package metal, geometry.go) uses the same
// numbers to size grids and threadgroup memory; a test checks they agree.
#define MV_SIMDS 2     // SIMD groups per threadgroup of a GEMV (one token)
#define MV_ROWS 4      // rows per SIMD group of a GEMV
#define MM_SIMDS 4     // SIMD groups per threadgroup of a GEMM
#define MM_ROWS 4      // rows per SIMD group of a GEMM
#define MM_TOKENS 8    // tokens per threadgroup of a GEMM
#define MM_KC 2048     // activation bytes per token per threadgroup tile
#define Q_THREADS 256  // threads per threadgroup of quantize_rows

// MatParams is the constant argument of every product kernel (buffer 6);
// package metal's matParams has the same layout.
struct MatParams {
    uint rows;      // output rows (weight rows)
    uint n;         // tokens
    uint kp;        // activation bytes per token: columns padded to 256
    uint row_bytes; // weight bytes between rows
    float wscale;   // ternary: the tensor's scale (others: per-row scales in buffer 4)
    uint zero;      // the stored offset of the weights: dot -= zero * sum(q)
};

// QuantParams is the constant argument of quantize_rows (buffer 5).
struct QuantParams {
    uint n;  // tokens
    uint k;  // features per token
    uint kp; // activation bytes per token (k padded to 256)
};

// Memory helpers: the only way the kernels touch device and threadgroup
// memory.
inline uint ld_u32(device const uchar* p, uint off) {
    EMU_CHECK_READ(p + off, 4);
    return *(device const uint*)(p + off);
}
inline uint ld_u32(device const char* p, uint off) {
    EMU_CHECK_READ(p + off, 4);
    return *(device const uint*)(p + off);
}
inline float ld_f32(device const float* p, uint i) {
    EMU_CHECK_READ(p + i, 4);
    return p[i];
}
inline int ld_i32(device const int* p, uint i) {
    EMU_CHECK_READ(p + i, 4);
    return p[i];
}
inline void st_f32(device float* p, uint i, float v) {
    EMU_CHECK_WRITE(p + i, 4);
    p[i] = v;
}
inline void st_i32(device int* p, uint i, int v) {
    EMU_CHECK_WRITE(p + i, 4);
    p[i] = v;
}
inline void st_u32(device uint* p, uint i, uint v) {
    EMU_CHECK_WRITE(p + i, 4);
    p[i] = v;
}
inline void st_i8(device char* p, uint i, char v) {
    EMU_CHECK_WRITE(p + i, 1);
    p[i] = v;
}
inline uint ld_tg(threadgroup const uint* p, uint i) {
    EMU_CHECK_READ(p + i, 4);
    return p[i];
}
inline void st_tg(threadgroup uint* p, uint i, uint v) {
    EMU_CHECK_WRITE(p + i, 4);
    p[i] = v;
}

// div_rn returns a / b rounded to nearest, ties to even, as IEEE 754 (and
// Go's float32 division) defines it, for positive normal a and b with a
// normal quotient: a 25-step restoring division of the 24-bit significands
// in 32-bit integers, so the result does not depend on how a GPU implements
// float division (MSL allows 2.5 ulp under fast math). Anything else (zero,
// negative, subnormal, Inf or NaN operands, an underflowing or overflowing
// quotient: no valid scale produces one) falls back to a / b.
inline float div_rn(float a, float b) {
    uint ua = as_type<uint>(a);
    uint ub = as_type<uint>(b);
    uint ea = ua >> 23;
    uint eb = ub >> 23;
    if (ea == 0u || ea >= 255u || eb == 0u || eb >= 255u) {
        return a / b;
    }
    uint ma = (ua & 0x7fffffu) | 0x800000u;
    uint mb = (ub & 0x7fffffu) | 0x800000u;
    int e = int(ea) - int(eb) + 127;
    if (ma < mb) {
        ma <<= 1;
        e -= 1;
    }
    // ma / mb is in [1, 2): 25 quotient bits are the 24 of the significand
    // and the rounding bit; the remainder is the sticky bit.
    uint quo = 0u;
    uint rem = ma;
    for (int i = 0; i < 25; i++) {
        quo <<= 1;
        if (rem >= mb) {
            rem -= mb;
            quo |= 1u;
        }
        rem <<= 1;
    }
    uint mant = quo >> 1;
    if ((quo & 1u) != 0u && (rem != 0u || (mant & 1u) != 0u)) {
        mant += 1u;
    }
    if (mant == 0x1000000u) {
        mant >>= 1;
        e += 1;
    }
    if (e <= 0 || e >= 255) {
        return a / b;
    }
    return as_type<float>((uint(e) << 23) | (mant & 0x7fffffu));
}

// i2f_rn converts d to float rounded to nearest, ties to even (Go's
// float32(int32)), in integers when |d| >= 2^24 where rounding happens.
inline float i2f_rn(int d) {
    if (d > -16777216 && d < 16777216) {
        return float(d); // exact
    }
    uint s = d < 0 ? 0x80000000u : 0u;
    uint m = d < 0 ? uint(0) - uint(d) : uint(d); // 2^24 <= m <= 2^31
    uint sh = 0u;                                 // bits to drop: m >> sh has 24
    while ((m >> sh) >= 0x1000000u) {
        sh += 1u;
    }
    uint mant = m >> sh;
    uint rem = m & ((1u << sh) - 1u);
    uint halfway = 1u << (sh - 1u);
    if (rem > halfway || (rem == halfway && (mant & 1u) != 0u)) {
        mant += 1u;
    }
    uint e = 150u + sh;
    if (mant == 0x1000000u) {
        mant >>= 1;
        e += 1u;
    }
    return as_type<float>(s | (e << 23) | (mant & 0x7fffffu));
}

// dot4u returns the dot product of four unsigned weights (bytes of w) and
// four int8 activations (bytes of x); dot4s the same for signed weights.
inline int dot4u(uint w, uint x) {
    uchar4 a = as_type<uchar4>(w);
    char4 b = as_type<char4>(x);
    return int(a.x) * int(b.x) + int(a.y) * int(b.y) + int(a.z) * int(b.z) + int(a.w) * int(b.w);
}
inline int dot4s(uint w, uint x) {
    char4 a = as_type<char4>(w);
    char4 b = as_type<char4>(x);
    return int(a.x) * int(b.x) + int(a.y) * int(b.y) + int(a.z) * int(b.z) + int(a.w) * int(b.w);
}
