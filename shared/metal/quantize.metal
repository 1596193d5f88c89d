// quantize.metal: per-token absmax int8 quantisation, as package kernels'
// QuantizeRow defines it: s = 127 / max(max|x|, 1e-5), q = round half to
// even of x*s clamped to [-128, 127], sum = sum of q. One threadgroup of
// Q_THREADS threads per token; the max and the sum are reduced with
// simd_max/simd_sum and then across SIMD groups in threadgroup memory.
// The max is taken over the sign-cleared bit patterns as integers (equal to
// the float max for finite values); a token with an Inf or NaN is flagged in
// bad[] and left to the CPU, which keeps Go's float64 semantics for it.

inline uint tg_max(uint v, threadgroup uint* red, ushort sgitg, ushort tiisg) {
    v = simd_max(v);
    if (tiisg == 0) {
        st_tg(red, sgitg, v);
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    uint m = 0u;
    for (uint s = 0u; s < Q_THREADS / 32u; s++) {
        m = max(m, ld_tg(red, s));
    }
    threadgroup_barrier(mem_flags::mem_threadgroup); // red is reused
    return m;
}

inline int tg_sum(int v, threadgroup uint* red, ushort sgitg, ushort tiisg) {
    v = simd_sum(v);
    if (tiisg == 0) {
        st_tg(red, sgitg, as_type<uint>(v));
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    int s = 0;
    for (uint g = 0u; g < Q_THREADS / 32u; g++) {
        s += as_type<int>(ld_tg(red, g));
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    return s;
}

kernel void quantize_rows(device const float* x [[buffer(0)]], device char* q [[buffer(1)]],
                          device float* scale [[buffer(2)]], device int* sum [[buffer(3)]],
                          device uint* bad [[buffer(4)]], constant QuantParams& p [[buffer(5)]],
                          threadgroup uint* red [[TG_INDEX(0)]], uint3 tgpig [[threadgroup_position_in_grid]],
                          ushort tid [[thread_index_in_threadgroup]], ushort sgitg [[simdgroup_index_in_threadgroup]],
                          ushort tiisg [[thread_index_in_simdgroup]]) {
    const uint t = tgpig.x;
    uint mb = 0u;
    for (uint i = tid; i < p.k; i += Q_THREADS) {
        mb = max(mb, as_type<uint>(ld_f32(x, t * p.k + i)) & 0x7fffffffu);
    }
    mb = tg_max(mb, red, sgitg, tiisg);
    if (mb >= 0x7f800000u) { // Inf or NaN: uniform across the group
        if (tid == 0u) {
            st_u32(bad, t, 1u);
        }
        return;
    }
    const float s = div_rn(127.0f, max(as_type<float>(mb), 1e-5f));
    int su = 0;
    for (uint i = tid; i < p.kp; i += Q_THREADS) {
        int v = 0;
        if (i < p.k) {
            v = int(clamp(rint(ld_f32(x, t * p.k + i) * s), -128.0f, 127.0f));
        }
        st_i8(q, t * p.kp + i, char(v));
        su += v;
    }
    su = tg_sum(su, red, sgitg, tiisg);
    if (tid == 0u) {
        st_f32(scale, t, s);
        st_i32(sum, t, su);
        st_u32(bad, t, 0u);
    }
}
