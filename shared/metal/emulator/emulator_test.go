package emulator

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/metal"
)

// testKernels break (or exercise) the rules the emulator checks; they are
// compiled only into the test build.
const testKernels = `
#define T_ARGS device uint *out [[buffer(0)]], device const uint *in [[buffer(1)]], \
    threadgroup uint *tg [[TG_INDEX(0)]], ushort tid [[thread_index_in_threadgroup]], \
    ushort sgitg [[simdgroup_index_in_threadgroup]], ushort tiisg [[thread_index_in_simdgroup]]

// Correct: the barrier makes every thread's write visible to the others.
kernel void t_rotate(T_ARGS) {
    st_tg(tg, tid, tid * 3u);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    st_u32(out, tid, ld_tg(tg, (tid + 1u) % 64u));
}
// A race: every thread writes tg[0]; who wins depends on the order.
kernel void t_race(T_ARGS) {
    st_tg(tg, 0u, tid);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (tid == 0u) {
        st_u32(out, 0u, ld_tg(tg, 0u));
    }
}
// Lanes that returned take no part in a SIMD-group function.
kernel void t_inactive(T_ARGS) {
    if (tiisg % 2u == 1u) {
        return;
    }
    st_u32(out, tid, simd_sum(uint(tiisg)) + 1000u * uint(sgitg));
}
kernel void t_shuffle(T_ARGS) {
    uint d = simd_shuffle_down(tid, ushort(1));
    uint b = simd_broadcast(tid, ushort(5));
    uint x = simd_shuffle_xor(tid, ushort(3));
    uint m = simd_max(tid ^ 7u);
    st_u32(out, tid, d + 100000u * b + 10000000u * (x - tid + 3u) + 1000u * m);
}
kernel void t_divergent_barrier(T_ARGS) {
    if (tid < 16u) {
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    st_u32(out, tid, 1u);
}
kernel void t_divergent_simd(T_ARGS) {
    uint v;
    if (tiisg < 8u) {
        v = simd_sum(1u);
    } else {
        v = simd_sum(2u);
    }
    st_u32(out, tid, v);
}
kernel void t_oob(T_ARGS) { st_u32(out, tid + 1000u, 1u); }
kernel void t_misaligned(T_ARGS) { st_u32(out, tid, ld_u32((device const uchar*)in, 1u)); }
kernel void t_readonly(T_ARGS) { st_u32((device uint*)in, 0u, 1u); }
// div_rn and i2f_rn (common.metal) on in[], one value per thread.
kernel void t_div(T_ARGS) {
    st_u32(out, tid, as_type<uint>(div_rn(as_type<float>(in[2u * tid]), as_type<float>(in[2u * tid + 1u]))));
}
kernel void t_i2f(T_ARGS) { st_u32(out, tid, as_type<uint>(i2f_rn(as_type<int>(in[tid])))); }
kernel void t_uninit(T_ARGS) {
    if (tid == 0u) {
        st_u32(out, 0u, ld_tg(tg, 5u));
    }
}

#define T_CALL(name) \
    [](Args& a, const Builtins& b) { name((uint*)a.buf[0], (const uint*)a.buf[1], (uint*)a.tg[0], b.tid, b.sgitg, b.tiisg); }
#define T_KERNEL(name) {#name, T_CALL(name), 0x3, 1, 1, 4},
#define TEST_KERNELS T_KERNEL(t_rotate) T_KERNEL(t_race) T_KERNEL(t_inactive) T_KERNEL(t_shuffle) \
    T_KERNEL(t_divergent_barrier) T_KERNEL(t_divergent_simd) T_KERNEL(t_oob) T_KERNEL(t_misaligned) \
    T_KERNEL(t_readonly) T_KERNEL(t_uninit) T_KERNEL(t_div) T_KERNEL(t_i2f)
`

var testBin struct {
	once sync.Once
	path string
	err  error
}

// start runs the test build of the emulator, or skips without clang.
func start(t *testing.T, opts ...Option) *Backend {
	t.Helper()
	testBin.once.Do(func() {
		dir, err := os.UserCacheDir()
		if err != nil {
			dir = os.TempDir()
		}
		testBin.path, testBin.err = build(context.Background(), filepath.Join(dir, "bitnet-mesh", "msl-emu"), []byte(testKernels))
	})
	if errors.Is(testBin.err, ErrNoCompiler) && os.Getenv("BITNET_REQUIRE_EMULATOR") == "" {
		t.Skipf("%v (set BITNET_REQUIRE_EMULATOR=1 to fail instead)", testBin.err)
	}
	if testBin.err != nil {
		t.Fatal(testBin.err)
	}
	b, err := Start(testBin.path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// run launches kernel on one threadgroup of threads threads with 64 words
// of threadgroup memory and returns out (64 words, initially 0xffffffff).
func run(b *Backend, kernel string, threads int) ([]uint32, error) {
	return runIO(b, kernel, threads, make([]uint32, 4), 64)
}

// runIO is run with input words in and outWords output words.
func runIO(b *Backend, kernel string, threads int, in []uint32, outWords int) ([]uint32, error) {
	out, _ := b.NewBuffer(4 * outWords)
	inb, _ := b.NewBuffer(4 * len(in))
	for i := range out.Bytes() {
		out.Bytes()[i] = 0xff
	}
	for i, v := range in {
		binary.LittleEndian.PutUint32(inb.Bytes()[4*i:], v)
	}
	p, err := b.Submit([]metal.Dispatch{{
		Kernel: kernel, Grid: [3]int{1, 1, 1}, Group: [3]int{threads, 1, 1},
		Buffers: []metal.Binding{
			{Index: 0, Buf: out, Len: 4 * outWords, Write: true},
			{Index: 1, Buf: inb, Len: 4 * len(in)},
		},
		Threadgroup: []int{4 * 64},
	}})
	if err != nil {
		return nil, err
	}
	if err := p.Wait(); err != nil {
		return nil, err
	}
	w := make([]uint32, outWords)
	for i := range w {
		w[i] = binary.LittleEndian.Uint32(out.Bytes()[4*i:])
	}
	return w, nil
}

// TestDivRN compares common.metal's integer division with Go's float32
// division (IEEE 754, round half to even) on scales' whole range and on
// the edges div_rn leaves to a / b.
func TestDivRN(t *testing.T) {
	b := start(t)
	rng := rand.New(rand.NewPCG(1, 2))
	special := []float32{1, 2, 3, 0.1, 127, 1e-5, 7.9e-8, 1.27e7, 1e-30, 1e30, 3e38, 1.2e-38, 0,
		math.Float32frombits(0x7fffff), math.Float32frombits(0x800000), math.Float32frombits(0x7f7fffff)}
	for round := range 20 {
		in := make([]uint32, 2*1024)
		for i := range 1024 {
			var x, y float32
			switch {
			case round == 0 && i < len(special)*len(special):
				x, y = special[i/len(special)], special[i%len(special)]
			case i%3 == 0: // equal significands, powers of two: exact quotients
				x = float32(math.Ldexp(1+float64(rng.IntN(1<<23))/(1<<23), rng.IntN(60)-30))
				y = float32(math.Ldexp(float64(x), rng.IntN(20)-10))
			default:
				x = math.Float32frombits(rng.Uint32() & 0x7fffffff)
				y = math.Float32frombits(uint32(rng.IntN(0x7f800000)))
				if i%2 == 0 { // the range of real scales
					x = float32(math.Pow(10, rng.Float64()*14-9))
					y = float32(math.Pow(10, rng.Float64()*14-9))
				}
			}
			in[2*i], in[2*i+1] = math.Float32bits(x), math.Float32bits(y)
		}
		got, err := runIO(b, "t_div", 1024, in, 1024)
		if err != nil {
			t.Fatal(err)
		}
		for i, g := range got {
			x, y := math.Float32frombits(in[2*i]), math.Float32frombits(in[2*i+1])
			want := x / y
			if g != math.Float32bits(want) && !(math.IsNaN(float64(want)) && math.IsNaN(float64(math.Float32frombits(g)))) {
				t.Fatalf("div_rn(%g, %g) = %g (%#08x), want %g (%#08x)", x, y, math.Float32frombits(g), g, want, math.Float32bits(want))
			}
		}
	}
}

// TestI2FRN compares common.metal's int-to-float conversion with Go's
// around every power of two from 2^24 (where rounding starts), ties
// included, and at the extremes.
func TestI2FRN(t *testing.T) {
	b := start(t)
	var vals []int32
	for e := 23; e <= 30; e++ {
		for d := int32(-40); d <= 40; d++ {
			vals = append(vals, int32(1)<<e+d, -(int32(1)<<e + d))
		}
		step := int32(1) << (e - 23) // the ulp above 2^e: halves are ties
		for k := int32(1); k < 8; k++ {
			vals = append(vals, int32(1)<<e+k*step/2, -(int32(1)<<e + k*step/2))
		}
	}
	vals = append(vals, math.MaxInt32, math.MinInt32, math.MaxInt32-64, math.MinInt32+63, 0, 1, -1, 1<<24-1, -(1<<24 - 1))
	for len(vals)%1024 != 0 {
		vals = append(vals, 0)
	}
	for lo := 0; lo < len(vals); lo += 1024 {
		in := make([]uint32, 1024)
		for i := range in {
			in[i] = uint32(vals[lo+i])
		}
		got, err := runIO(b, "t_i2f", 1024, in, 1024)
		if err != nil {
			t.Fatal(err)
		}
		for i, g := range got {
			d := vals[lo+i]
			if want := math.Float32bits(float32(d)); g != want {
				t.Fatalf("i2f_rn(%d) = %#08x, want %#08x", d, g, want)
			}
		}
	}
}

// TestBarrier: every thread reads what another wrote before the barrier,
// in every order (a scheduler that ran threads to completion one by one
// would read the pattern of unwritten memory).
func TestBarrier(t *testing.T) {
	for _, o := range []Order{Ascending, Descending, Shuffled} {
		b := start(t, WithOrder(o, 7))
		got, err := run(b, "t_rotate", 64)
		if err != nil {
			t.Fatal(err)
		}
		for tid, v := range got {
			if want := uint32((tid+1)%64) * 3; v != want {
				t.Fatalf("order %d: out[%d] = %d, want %d", o, tid, v, want)
			}
		}
	}
}

func TestRaceShowsAcrossOrders(t *testing.T) {
	up, err := run(start(t, WithOrder(Ascending, 1)), "t_race", 64)
	if err != nil {
		t.Fatal(err)
	}
	down, err := run(start(t, WithOrder(Descending, 1)), "t_race", 64)
	if err != nil {
		t.Fatal(err)
	}
	if up[0] != 63 || down[0] != 0 {
		t.Errorf("got last writers %d (ascending) and %d (descending), want 63 and 0", up[0], down[0])
	}
}

func TestUninitializedThreadgroupMemoryShows(t *testing.T) {
	a, err := run(start(t, WithOrder(Ascending, 1)), "t_uninit", 32)
	if err != nil {
		t.Fatal(err)
	}
	b, err := run(start(t, WithOrder(Ascending, 2)), "t_uninit", 32)
	if err != nil {
		t.Fatal(err)
	}
	if a[0] == b[0] {
		t.Errorf("reading unwritten threadgroup memory gave %#x with both seeds, want a difference", a[0])
	}
}

func TestSIMDFunctions(t *testing.T) {
	b := start(t, WithOrder(Shuffled, 3))
	got, err := run(b, "t_inactive", 64)
	if err != nil {
		t.Fatal(err)
	}
	for tid, v := range got {
		want := uint32(0xffffffff)
		if tid%2 == 0 {
			want = 240 + 1000*uint32(tid/32) // 0+2+...+30 over the even lanes
		}
		if v != want {
			t.Errorf("t_inactive: out[%d] = %d, want %d", tid, v, want)
		}
	}
	got, err = run(b, "t_shuffle", 64)
	if err != nil {
		t.Fatal(err)
	}
	for tid, v := range got {
		lane, base := tid%32, tid/32*32
		d := tid + 1
		if lane == 31 {
			d = tid
		}
		x := base + (lane ^ 3)
		m := 0
		for l := range 32 {
			m = max(m, (base+l)^7)
		}
		if want := uint32(d + 100000*(base+5) + 10000000*(x-tid+3) + 1000*m); v != want {
			t.Errorf("t_shuffle: out[%d] = %d, want %d", tid, v, want)
		}
	}
}

// TestRuleBreaks: each kernel breaks a rule; the emulator must say which.
func TestRuleBreaks(t *testing.T) {
	for _, tc := range []struct{ kernel, want string }{
		{"t_divergent_barrier", "threadgroup_barrier not reached by thread 16"},
		{"t_divergent_simd", "different SIMD-group functions"},
		{"t_oob", "write of 4 bytes outside every bound buffer"},
		{"t_misaligned", "misaligned read"},
		{"t_readonly", "write to read-only buffer"},
	} {
		t.Run(tc.kernel, func(t *testing.T) {
			b := start(t)
			_, err := run(b, tc.kernel, 64)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if _, err := run(b, "t_rotate", 64); err == nil {
				t.Error("the emulator ran on after a kernel error")
			}
		})
	}
}

func TestBadDispatch(t *testing.T) {
	b := start(t)
	for _, d := range []metal.Dispatch{
		{Kernel: "no_such_kernel", Grid: [3]int{1, 1, 1}, Group: [3]int{32, 1, 1}},
		{Kernel: "mv_ternary", Grid: [3]int{1, 1, 1}, Group: [3]int{64, 1, 1}}, // no buffers
	} {
		p, err := b.Submit([]metal.Dispatch{d})
		if err == nil {
			err = p.Wait()
		}
		if err == nil {
			t.Errorf("%s: got no error", d.Kernel)
		}
	}
	// The process survives bad requests.
	if _, err := run(b, "t_rotate", 64); err != nil {
		t.Fatal(err)
	}
}
