// msl_emu.h maps the Metal Shading Language built-ins that bitnet-mesh's
// kernels use onto C++, so that the same kernel source compiles with clang
// and runs on the CPU as a faithful sequential emulation of threadgroups and
// their SIMD groups.
//
// Execution model. Every thread of a threadgroup runs as a coroutine on its
// own stack (ucontext starts it; _setjmp/_longjmp switch between it and the
// scheduler without system calls). A thread runs until it reaches a
// synchronisation point (a SIMD-group function or a barrier) or returns;
// when no thread can run, the scheduler releases the synchronisation that
// every participant has reached:
//   - a SIMD-group function (simd_sum, simd_max, ...) completes when every
//     lane of the SIMD group that has not returned has called it, at the same
//     call site and for the same time; each lane then reads the values all
//     active lanes contributed (lanes that returned are inactive, as on the
//     GPU);
//   - threadgroup_barrier completes when every thread of the threadgroup has
//     reached it at the same call site and for the same time.
// Anything else is an error the emulator reports and exits on: a barrier
// that some threads returned before, threads of a SIMD group waiting at
// different SIMD functions or barriers (non-uniform control flow, undefined
// or not emulated), a deadlock. Coroutines rather than one OS thread per
// lane: the schedule is deterministic and chosen (ascending, descending or
// shuffled lane and threadgroup order, so that a result that depends on the
// order, i.e. a race between synchronisation points, shows as a difference),
// and the synchronisation rules above can be checked exactly.
//
// Memory. Device buffers are host memory the driver (main.cpp) binds;
// threadgroup memory is one allocation per threadgroup, passed to every
// thread as the [[threadgroup(i)]] parameter. The kernels' ld_/st_ helpers
// call check_read and check_write, which require every access to lie inside
// a bound buffer (writes: a writable one) or the threadgroup allocation and
// to be naturally aligned.
#pragma once

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <ucontext.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

typedef uint8_t uchar;
typedef uint16_t ushort;
typedef unsigned int uint;
typedef uint uint2 __attribute__((ext_vector_type(2)));
typedef uint uint3 __attribute__((ext_vector_type(3)));
typedef uchar uchar4 __attribute__((ext_vector_type(4)));
typedef signed char char4 __attribute__((ext_vector_type(4)));
// More MSL type names, declared so that a kernel cannot use them as
// identifiers (which compiles as C++ but not as MSL).
typedef _Float16 half;
typedef half half2 __attribute__((ext_vector_type(2)));
typedef half half4 __attribute__((ext_vector_type(4)));
typedef float float2 __attribute__((ext_vector_type(2)));
typedef float float4 __attribute__((ext_vector_type(4)));
typedef int int2 __attribute__((ext_vector_type(2)));
typedef int int4 __attribute__((ext_vector_type(4)));
typedef uint uint4 __attribute__((ext_vector_type(4)));
typedef ushort ushort2 __attribute__((ext_vector_type(2)));
typedef short short2 __attribute__((ext_vector_type(2)));
typedef uchar uchar2 __attribute__((ext_vector_type(2)));
typedef signed char char2 __attribute__((ext_vector_type(2)));
typedef __bf16 bfloat;
struct sampler;
struct texture2d;

static_assert((char)-1 < 0, "MSL char is signed: compile with -fsigned-char");

// Address spaces: plain memory here.
#define device
#define threadgroup
#define thread
#define constant const
#define kernel

namespace emu {

[[noreturn]] __attribute__((format(printf, 1, 2))) inline void fail(const char* fmt, ...) {
    fprintf(stderr, "emu: ");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    fflush(stderr);
    exit(3);
}

// A memory range a kernel may touch.
struct Range {
    const char* lo;
    const char* hi;
    bool writable;
    const char* what;
};

enum class State { Run, Simd, Barrier, Done };

struct Thread {
    ucontext_t ctx; // the first entry (makecontext/setcontext)
    jmp_buf jb;     // where the thread yielded
    bool started = false;
    std::vector<char> stack;
    State st = State::Run;
    const void* site = nullptr;  // call site of the pending synchronisation
    uint64_t nsimd = 0, nbar = 0; // synchronisations passed
    uint64_t slot = 0;            // this lane's value for a SIMD function
    uint tid = 0, sg = 0, lane = 0;
};

struct Group {
    std::vector<Thread> th;
    uint nsg = 0;
    // published[sg*32+lane]: the values of the last released SIMD function.
    std::vector<uint64_t> published;
    std::vector<uint8_t> active;
    jmp_buf sched;
    void (*body)(void* ctx, uint tid) = nullptr;
    void* body_ctx = nullptr;
    std::vector<Range> ranges; // bound buffers and threadgroup memory
};

inline Group* g_group = nullptr;
inline Thread* g_thread = nullptr;

inline void check(const void* p, size_t n, bool write) {
    const char* c = (const char*)p;
    if (((uintptr_t)c) % n != 0) {
        fail("misaligned %s of %zu bytes (address %% %zu = %zu)", write ? "write" : "read", n, n, (size_t)((uintptr_t)c % n));
    }
    for (const Range& r : g_group->ranges) {
        if (c >= r.lo && c + n <= r.hi) {
            if (write && !r.writable) {
                fail("write to read-only %s at byte %td", r.what, c - r.lo);
            }
            return;
        }
    }
    fail("%s of %zu bytes outside every bound buffer", write ? "write" : "read", n);
}
inline void check_read(const void* p, size_t n) { check(p, n, false); }
inline void check_write(const void* p, size_t n) { check(p, n, true); }

// Switching: a thread starts on its own stack with setcontext (once) and
// afterwards moves between its stack and the scheduler's with
// _setjmp/_longjmp, which, unlike swapcontext, make no system call (the
// signal mask never changes). Built without _FORTIFY_SOURCE, whose
// longjmp checks reject a jump to another stack.
inline void yield() {
    if (!_setjmp(g_thread->jb)) {
        _longjmp(g_group->sched, 1);
    }
}

inline void entry() {
    Thread* t = g_thread;
    g_group->body(g_group->body_ctx, t->tid);
    t->st = State::Done;
    _longjmp(g_group->sched, 1); // never returns: the stack is abandoned
}

inline void resume(Thread& t) {
    g_thread = &t;
    if (!_setjmp(g_group->sched)) {
        if (t.started) {
            _longjmp(t.jb, 1);
        }
        t.started = true;
        setcontext(&t.ctx);
    }
}

// exchange contributes v to a SIMD-group function called at site and
// returns, through vals and mask, what every active lane contributed.
inline void exchange(uint64_t v, const void* site, uint64_t* vals, uint32_t* mask) {
    Thread* t = g_thread;
    t->slot = v;
    t->site = site;
    t->st = State::Simd;
    yield();
    Group* g = g_group;
    *mask = 0;
    for (uint l = 0; l < 32; l++) {
        if (g->active[t->sg * 32 + l]) {
            *mask |= 1u << l;
            vals[l] = g->published[t->sg * 32 + l];
        }
    }
}

template <class T>
inline uint64_t to_bits(T v) {
    uint64_t b = 0;
    memcpy(&b, &v, sizeof(T));
    return b;
}
template <class T>
inline T from_bits(uint64_t b) {
    T v;
    memcpy(&v, &b, sizeof(T));
    return v;
}

// run executes threads threads of one threadgroup of a kernel: body(ctx,
// tid) runs thread tid. order: 0 ascending, 1 descending, 2 shuffled by rng.
inline void run_group(Group& g, uint threads, int order, std::mt19937_64& rng) {
    const size_t stack = 128 << 10;
    g.th.resize(threads);
    g.nsg = (threads + 31) / 32;
    g.published.assign(g.nsg * 32, 0);
    g.active.assign(g.nsg * 32, 0);
    std::vector<uint> perm(threads);
    for (uint i = 0; i < threads; i++) {
        Thread& t = g.th[i];
        t.st = State::Run;
        t.started = false;
        t.site = nullptr;
        t.nsimd = t.nbar = 0;
        t.tid = i;
        t.sg = i / 32;
        t.lane = i % 32;
        t.stack.resize(stack);
        getcontext(&t.ctx);
        t.ctx.uc_stack.ss_sp = t.stack.data();
        t.ctx.uc_stack.ss_size = stack;
        t.ctx.uc_link = nullptr;
        makecontext(&t.ctx, entry, 0);
        perm[i] = i;
    }
    g_group = &g;
    for (;;) {
        if (order == 1) {
            std::reverse(perm.begin(), perm.end());
        } else if (order == 2) {
            std::shuffle(perm.begin(), perm.end(), rng);
        }
        for (uint i : perm) {
            Thread& t = g.th[i];
            if (t.st == State::Run) {
                resume(t);
            }
        }
        bool done = true, released = false;
        for (uint s = 0; s < g.nsg; s++) {
            int simd = 0, bar = 0, live = 0;
            Thread* first = nullptr;
            for (uint l = 0; l < 32 && s * 32 + l < threads; l++) {
                Thread& t = g.th[s * 32 + l];
                if (t.st == State::Done) {
                    continue;
                }
                live++;
                simd += t.st == State::Simd;
                bar += t.st == State::Barrier;
                if (t.st == State::Simd) {
                    if (!first) {
                        first = &t;
                    } else if (t.site != first->site || t.nsimd != first->nsimd) {
                        fail("lanes %u and %u of SIMD group %u are at different SIMD-group functions "
                             "(non-uniform control flow is not emulated)",
                             first->lane, t.lane, s);
                    }
                }
            }
            if (live > 0) {
                done = false;
            }
            if (simd > 0 && bar > 0) {
                fail("SIMD group %u has lanes waiting at a barrier and lanes in a SIMD-group function", s);
            }
            if (simd > 0 && simd == live) {
                for (uint l = 0; l < 32; l++) {
                    uint i = s * 32 + l;
                    bool on = i < threads && g.th[i].st == State::Simd;
                    g.active[i] = on;
                    g.published[i] = on ? g.th[i].slot : 0;
                    if (on) {
                        g.th[i].st = State::Run;
                        g.th[i].nsimd++;
                    }
                }
                released = true;
            }
        }
        if (done) {
            break;
        }
        if (released) {
            continue;
        }
        // Every live thread waits at a barrier.
        Thread* first = nullptr;
        for (Thread& t : g.th) {
            if (t.st == State::Done) {
                fail("threadgroup_barrier not reached by thread %u, which returned", t.tid);
            }
            if (t.st != State::Barrier) {
                fail("deadlock: thread %u neither runs nor waits at a barrier", t.tid);
            }
            if (!first) {
                first = &t;
            } else if (t.site != first->site || t.nbar != first->nbar) {
                fail("threads %u and %u wait at different barriers", first->tid, t.tid);
            }
        }
        for (Thread& t : g.th) {
            t.st = State::Run;
            t.nbar++;
        }
    }
    g_thread = nullptr;
}

} // namespace emu

namespace metal {

enum class mem_flags { mem_none = 0, mem_device = 1, mem_threadgroup = 2, mem_texture = 4 };

__attribute__((noinline, convergent, nomerge)) inline void threadgroup_barrier(mem_flags) {
    emu::Thread* t = emu::g_thread;
    t->site = __builtin_return_address(0);
    t->st = emu::State::Barrier;
    emu::yield();
}

template <class T, class U>
inline T as_type(U u) {
    static_assert(sizeof(T) == sizeof(U), "as_type: sizes differ");
    T t;
    memcpy(&t, &u, sizeof(T));
    return t;
}

template <class T>
inline T min(T a, T b) {
    return b < a ? b : a;
}
template <class T>
inline T max(T a, T b) {
    return a < b ? b : a;
}
inline float min(float a, float b) { return __builtin_fminf(a, b); }
inline float max(float a, float b) { return __builtin_fmaxf(a, b); }
template <class T>
inline T clamp(T x, T lo, T hi) {
    return min(max(x, lo), hi);
}
inline float rint(float x) { return __builtin_rintf(x); }

// The SIMD-group functions. noinline: the return address identifies the
// call site, which every active lane must share.
#define EMU_SIMD_REDUCE(name, init, op)                                              \
    template <class T>                                                               \
    __attribute__((noinline, convergent, nomerge)) T name(T v) {                                          \
        uint64_t vals[32];                                                           \
        uint32_t mask;                                                               \
        emu::exchange(emu::to_bits(v), __builtin_return_address(0), vals, &mask);    \
        T acc = init;                                                                \
        bool any = false;                                                            \
        for (uint l = 0; l < 32; l++) {                                              \
            if (mask & (1u << l)) {                                                  \
                T x = emu::from_bits<T>(vals[l]);                                    \
                acc = any ? (op) : x;                                                \
                any = true;                                                          \
            }                                                                        \
        }                                                                            \
        return acc;                                                                  \
    }
// Integer sums wrap (two's complement, as on the GPU: -fwrapv).
EMU_SIMD_REDUCE(simd_sum, T(0), T(acc + x))
EMU_SIMD_REDUCE(simd_max, T(0), (acc < x ? x : acc))
EMU_SIMD_REDUCE(simd_min, T(0), (x < acc ? x : acc))
EMU_SIMD_REDUCE(simd_or, T(0), T(acc | x))
EMU_SIMD_REDUCE(simd_and, T(0), T(acc & x))
#undef EMU_SIMD_REDUCE

// from_lane returns what lane src contributed to a SIMD-group function (a
// read from an inactive lane is undefined on the GPU: the emulator fails).
template <class T>
inline T from_lane(const uint64_t* vals, uint32_t mask, uint src, const char* fn) {
    if (src >= 32 || !(mask & (1u << src))) {
        emu::fail("%s from inactive lane %u", fn, src);
    }
    return emu::from_bits<T>(vals[src]);
}

// The shuffles: every active lane contributes v and reads one lane's.
#define EMU_SIMD_SHUFFLE(name, arg, src_expr)                                     \
    template <class T>                                                            \
    __attribute__((noinline, convergent, nomerge)) T name(T v, ushort arg) {      \
        uint64_t vals[32];                                                        \
        uint32_t mask;                                                            \
        emu::exchange(emu::to_bits(v), __builtin_return_address(0), vals, &mask); \
        uint lane = emu::g_thread->lane;                                          \
        (void)lane;                                                               \
        uint src = (src_expr);                                                    \
        return src == lane ? v : from_lane<T>(vals, mask, src, #name);            \
    }
EMU_SIMD_SHUFFLE(simd_shuffle, src_lane, uint(src_lane))
EMU_SIMD_SHUFFLE(simd_broadcast, src_lane, uint(src_lane))
// simd_shuffle_down: lane l reads lane l+delta, or keeps its own value past
// the end of the SIMD group.
EMU_SIMD_SHUFFLE(simd_shuffle_down, delta, lane + delta < 32 ? lane + delta : lane)
EMU_SIMD_SHUFFLE(simd_shuffle_xor, m, (lane ^ m) & 31u)
#undef EMU_SIMD_SHUFFLE

} // namespace metal

using namespace metal;
