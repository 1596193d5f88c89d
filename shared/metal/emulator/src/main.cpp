// main.cpp is the emulator's driver: it compiles in the kernels (the exact
// source package metal hands to Metal, written next to this file as
// kernels.metal.inc by package emulator) and serves dispatches over
// stdin/stdout, little-endian:
//
//   request:  u32 magic 'MTLE', u32 op
//     op 1 dispatch: u32 len, name; u32 grid[3] (threadgroups); u32 group[3]
//       (threads per threadgroup); u32 order (0 ascending, 1 descending,
//       2 shuffled); u64 seed; u32 nbuf, then per buffer u32 index, u32 flags
//       (1: writable, returned), u64 len, bytes; u32 ntg, then per
//       threadgroup allocation u32 index, u32 len
//     op 2 list: the kernels compiled in
//     op 3 quit
//   response: u32 status (0 ok; else u32 len, message), then
//     dispatch: per writable buffer, in request order, u64 len, bytes
//     list: u32 count, then per kernel u32 len, name
//
// Kernel errors (out-of-bounds or misaligned access, barrier divergence,
// non-uniform SIMD-group functions) print "emu: ..." on stderr and exit 3.
#include "msl_emu.h"

#include "kernels.metal.inc"

// Package emulator's own tests add kernels that break the rules, to show
// that the emulator catches them: their source and TEST_KERNELS, more
// entries for the table below.
#if __has_include("test_kernels.inc")
#include "test_kernels.inc"
#endif

namespace {

struct Builtins {
    uint3 tgpig;
    ushort tid; // thread_index_in_threadgroup (the kernels declare every index ushort)
    ushort sgitg;
    ushort tiisg;
};

const int maxBuffers = 31;
const int maxTG = 8;

struct Args {
    char* buf[maxBuffers] = {};
    uint64_t len[maxBuffers] = {};
    char* tg[maxTG] = {};
    uint32_t tglen[maxTG] = {};
};

typedef void (*Tramp)(Args&, const Builtins&);

struct Kernel {
    const char* name;
    Tramp fn;
    uint32_t buffers; // bit i: buffer i must be bound
    uint32_t tgs;     // bit i: threadgroup allocation i must be set
    uint32_t params;  // index of the constant-argument struct
    uint32_t params_size;
};

#define MAT_CALL(name)                                                                                     \
    [](Args& a, const Builtins& b) {                                                                       \
        name((const uchar*)a.buf[0], (const char*)a.buf[1], (const float*)a.buf[2], (const int*)a.buf[3],  \
             (const float*)a.buf[4], (float*)a.buf[5], *(const MatParams*)a.buf[6], b.tgpig, b.sgitg,      \
             b.tiisg);                                                                                     \
    }
#define MM_CALL(name)                                                                                      \
    [](Args& a, const Builtins& b) {                                                                       \
        name((const uchar*)a.buf[0], (const char*)a.buf[1], (const float*)a.buf[2], (const int*)a.buf[3],  \
             (const float*)a.buf[4], (float*)a.buf[5], *(const MatParams*)a.buf[6], (uint*)a.tg[0],        \
             b.tgpig, b.tid, b.sgitg, b.tiisg);                                                            \
    }
#define MV_KERNEL(name) {#name, MAT_CALL(name), 0x7f, 0, 6, sizeof(MatParams)}
#define MM_KERNEL(name) {#name, MM_CALL(name), 0x7f, 1, 6, sizeof(MatParams)}

const Kernel kernels[] = {
    MV_KERNEL(mv_ternary),
    MV_KERNEL(mv_int8),
    MV_KERNEL(mv_int6),
    MV_KERNEL(mv_int4),
    MM_KERNEL(mm_ternary),
    MM_KERNEL(mm_int8),
    MM_KERNEL(mm_int6),
    MM_KERNEL(mm_int4),
    {"quantize_rows",
     [](Args& a, const Builtins& b) {
         quantize_rows((const float*)a.buf[0], (char*)a.buf[1], (float*)a.buf[2], (int*)a.buf[3], (uint*)a.buf[4],
                       *(const QuantParams*)a.buf[5], (uint*)a.tg[0], b.tgpig, b.tid, b.sgitg, b.tiisg);
     },
     0x3f, 1, 5, sizeof(QuantParams)},
#ifdef TEST_KERNELS
    TEST_KERNELS
#endif
};

void readFull(void* p, size_t n) {
    if (n > 0 && fread(p, 1, n, stdin) != n) {
        if (feof(stdin)) {
            exit(0); // the host went away
        }
        emu::fail("read: short input");
    }
}
uint32_t readU32() {
    uint32_t v;
    readFull(&v, 4);
    return v;
}
uint64_t readU64() {
    uint64_t v;
    readFull(&v, 8);
    return v;
}
void writeFull(const void* p, size_t n) {
    if (n > 0 && fwrite(p, 1, n, stdout) != n) {
        exit(1);
    }
}
void writeU32(uint32_t v) { writeFull(&v, 4); }
void writeU64(uint64_t v) { writeFull(&v, 8); }

void reply_error(const std::string& msg) {
    writeU32(1);
    writeU32((uint32_t)msg.size());
    writeFull(msg.data(), msg.size());
    fflush(stdout);
}

struct Run {
    const Kernel* k;
    Args* args;
    uint3 tgpig;
};

void body(void* ctx, uint tid) {
    Run* r = (Run*)ctx;
    Builtins b;
    b.tgpig = r->tgpig;
    b.tid = (ushort)tid;
    b.sgitg = (ushort)(tid / 32);
    b.tiisg = (ushort)(tid % 32);
    r->k->fn(*r->args, b);
}

void dispatch() {
    uint32_t nlen = readU32();
    if (nlen > 256) {
        emu::fail("kernel name of %u bytes", nlen);
    }
    std::string name(nlen, '\0');
    readFull(name.data(), nlen);
    uint32_t grid[3], group[3];
    for (auto& v : grid) v = readU32();
    for (auto& v : group) v = readU32();
    uint32_t order = readU32();
    uint64_t seed = readU64();
    uint32_t nbuf = readU32();
    struct Buf {
        uint32_t index, flags;
        std::vector<char> data;
    };
    std::vector<Buf> bufs(nbuf);
    for (auto& b : bufs) {
        b.index = readU32();
        b.flags = readU32();
        uint64_t len = readU64();
        if (len > (uint64_t(1) << 34)) {
            emu::fail("buffer of %llu bytes", (unsigned long long)len);
        }
        // Room past the end so that a stray read is a check failure, not a crash.
        b.data.resize(len + 64);
        readFull(b.data.data(), len);
        b.data.resize(len);
    }
    uint32_t ntg = readU32();
    std::vector<std::pair<uint32_t, uint32_t>> tgs(ntg);
    for (auto& t : tgs) {
        t.first = readU32();
        t.second = readU32();
    }

    const Kernel* k = nullptr;
    for (const Kernel& c : kernels) {
        if (name == c.name) {
            k = &c;
        }
    }
    if (!k) {
        reply_error("no kernel " + name);
        return;
    }
    Args args;
    static emu::Group g; // reused: its coroutine stacks are allocated once
    g.ranges.clear();
    for (auto& b : bufs) {
        if (b.index >= maxBuffers || args.buf[b.index]) {
            reply_error("bad or repeated buffer index " + std::to_string(b.index));
            return;
        }
        args.buf[b.index] = b.data.data();
        args.len[b.index] = b.data.size();
        g.ranges.push_back({b.data.data(), b.data.data() + b.data.size(), (b.flags & 1) != 0, "buffer"});
    }
    uint32_t tgTotal = 0;
    for (auto& t : tgs) {
        if (t.first >= maxTG || args.tglen[t.first]) {
            reply_error("bad or repeated threadgroup index " + std::to_string(t.first));
            return;
        }
        args.tglen[t.first] = t.second;
        tgTotal += t.second;
    }
    if (tgTotal > 32768) {
        reply_error("threadgroup memory of " + std::to_string(tgTotal) + " bytes, more than 32 KiB");
        return;
    }
    for (int i = 0; i < maxBuffers; i++) {
        if ((k->buffers >> i & 1) && !args.buf[i]) {
            reply_error(name + ": buffer " + std::to_string(i) + " not bound");
            return;
        }
    }
    for (int i = 0; i < maxTG; i++) {
        if ((k->tgs >> i & 1) && !args.tglen[i]) {
            reply_error(name + ": threadgroup memory " + std::to_string(i) + " not set");
            return;
        }
    }
    if (args.len[k->params] < k->params_size) {
        reply_error(name + ": constant argument of " + std::to_string(args.len[k->params]) + " bytes, want " +
                    std::to_string(k->params_size));
        return;
    }
    uint64_t threads = uint64_t(group[0]) * group[1] * group[2];
    if (threads == 0 || threads > 1024 || group[1] != 1 || group[2] != 1) {
        reply_error("threadgroup size must be (1..1024, 1, 1)");
        return;
    }
    std::vector<std::vector<char>> tgmem(maxTG);
    for (int i = 0; i < maxTG; i++) {
        if (args.tglen[i]) {
            tgmem[i].resize(args.tglen[i]);
            args.tg[i] = tgmem[i].data();
            g.ranges.push_back({tgmem[i].data(), tgmem[i].data() + args.tglen[i], true, "threadgroup memory"});
        }
    }
    std::vector<uint3> order_tg;
    for (uint32_t z = 0; z < grid[2]; z++)
        for (uint32_t y = 0; y < grid[1]; y++)
            for (uint32_t x = 0; x < grid[0]; x++) order_tg.push_back(uint3{x, y, z});
    std::mt19937_64 rng(seed);
    if (order == 1) {
        std::reverse(order_tg.begin(), order_tg.end());
    } else if (order == 2) {
        std::shuffle(order_tg.begin(), order_tg.end(), rng);
    }
    for (const uint3& pos : order_tg) {
        // Threadgroup memory starts undefined on the GPU: fill it with a
        // pattern so that reading before writing shows.
        for (auto& m : tgmem) {
            for (size_t i = 0; i < m.size(); i++) {
                m[i] = (char)(0xA5 ^ (i * 7) ^ rng());
            }
        }
        Run r{k, &args, pos};
        g.body = body;
        g.body_ctx = &r;
        emu::run_group(g, (uint)threads, (int)order, rng);
    }
    writeU32(0);
    for (auto& b : bufs) {
        if (b.flags & 1) {
            writeU64(b.data.size());
            writeFull(b.data.data(), b.data.size());
        }
    }
    fflush(stdout);
}

} // namespace

int main() {
    static char inbuf[1 << 20], outbuf[1 << 20];
    setvbuf(stdin, inbuf, _IOFBF, sizeof inbuf);
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    for (;;) {
        uint32_t magic = readU32();
        if (magic != 0x454c544d) { // "MTLE"
            emu::fail("bad magic %08x", magic);
        }
        switch (readU32()) {
        case 1:
            dispatch();
            break;
        case 2:
            writeU32(0);
            writeU32(sizeof(kernels) / sizeof(kernels[0]));
            for (const Kernel& k : kernels) {
                writeU32((uint32_t)strlen(k.name));
                writeFull(k.name, strlen(k.name));
            }
            fflush(stdout);
            break;
        case 3:
            return 0;
        default:
            emu::fail("unknown op");
        }
    }
}
