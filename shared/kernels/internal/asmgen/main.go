// Command asmgen writes the amd64 tile kernels of package kernels
// (tiles_amd64.s and their Go declarations in tiles_amd64.go).
//
// Each kernel computes a rows x tokens tile of int32 dot products over nblk
// blocks of 256 weights and stores them to out[r*T+t]. Unrolling by hand in
// Go assembly for every tile shape is error-prone; generating keeps the
// register allocation in one place. Run "go generate" in shared/kernels.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/format"
	"log"
	"os"
	"path/filepath"
)

// isa is one family of kernels.
type isa struct {
	name    string // function name prefix
	comment string
	wide    bool // zmm (AVX-512) rather than ymm (AVX2)
	int8    bool // int8 weights rather than 2-bit ternary codes
	tiles   [][2]int
	// split (wide ternary, T = 1) masks the codes in place (c << 2n) with
	// one accumulator per n, instead of shifting each vector down: 8 rather
	// than 12 vector ops per 64 code bytes. Each lane of accumulator n is
	// a multiple of 4^n, so an arithmetic shift at the end is exact; lanes
	// stay below 2^31 while K < 8M.
	split bool
	// bw (wide ternary) uses VPMADDUBSW/VPMADDWD instead of VPDPBUSD, for
	// AVX-512BW CPUs without VNNI (Skylake-SP).
	bw bool
	// vnni256 runs VPDPBUSD on ymm registers (AVX-512 VL + VNNI, EVEX
	// encoded, Y0-Y31): half the vector width of zmm, for cores that
	// execute 512-bit instructions as two 256-bit halves (AMD Zen 4).
	// Ternary codes pair with q in natural order (no permutation).
	vnni256 bool
	// pf is the software prefetch distance in tiles (rows of the tile
	// after next: 2); negative means no software prefetch.
	pf int
	// head (4 or 6) makes packed output-head kernels (see headKernel).
	head int
	// trits makes 1.6-bit ternary GEMV kernels (see tritKernel).
	trits bool
	// tsum (trits, VNNI) decodes by byte additions instead of multiplies
	// (see tritSumKernel).
	tsum bool
}

var families = []isa{
	{name: "tern512", comment: "ternary codes x int8, AVX-512 VNNI (q permuted per 256-block: chunks 0,4,1,5,2,6,3,7)", wide: true,
		tiles: [][2]int{{1, 1}, {4, 1}, {1, 4}, {4, 4}}, pf: 2},
	{name: "tern512s", comment: "ternary GEMV, AVX-512 VNNI, codes masked in place (same q order as tern512)", wide: true,
		tiles: [][2]int{{1, 1}, {4, 1}}, split: true, pf: 2},
	{name: "tern512n", comment: "ternary GEMV as tern512s, no software prefetch", wide: true,
		tiles: [][2]int{{1, 1}, {4, 1}}, split: true, pf: -1},
	{name: "tern512f", comment: "ternary GEMV as tern512s, 8 rows, prefetch 4 tiles ahead", wide: true,
		tiles: [][2]int{{1, 1}, {4, 1}}, split: true, pf: 4},
	{name: "tern512bw", comment: "ternary codes x int8, AVX-512BW without VNNI (same q order as tern512)", wide: true,
		tiles: [][2]int{{1, 1}, {4, 1}, {8, 1}, {1, 4}, {4, 4}}, bw: true, pf: 2},
	{name: "tern256", comment: "ternary codes x int8, AVX2 (q in natural order)",
		tiles: [][2]int{{1, 1}, {4, 1}, {8, 1}, {1, 2}, {4, 2}}, pf: 2},
	{name: "tern256v", comment: "ternary codes x int8, VPDPBUSD on ymm (AVX-512 VL+VNNI; q in natural order)", vnni256: true,
		tiles: [][2]int{{1, 1}, {4, 1}, {1, 4}, {4, 4}}, pf: 2},
	{name: "tern256vs", comment: "ternary GEMV, VPDPBUSD on ymm, codes masked in place (q in natural order)", vnni256: true,
		tiles: [][2]int{{1, 1}, {4, 1}}, split: true, pf: 2},
	{name: "tern256vn", comment: "ternary GEMV as tern256vs, no software prefetch", vnni256: true,
		tiles: [][2]int{{1, 1}, {4, 1}}, split: true, pf: -1},
	{name: "i8x512", comment: "int8 x int8 via VPDPBUSD on (w^0x80): the caller subtracts 128*sum(q)", wide: true, int8: true,
		tiles: [][2]int{{1, 1}, {4, 1}, {8, 1}, {1, 4}, {4, 4}}, pf: 2},
	{name: "i8x256v", comment: "int8 x int8 via VPDPBUSD on ymm (AVX-512 VL+VNNI) on (w^0x80): the caller subtracts 128*sum(q)", vnni256: true, int8: true,
		tiles: [][2]int{{1, 1}, {4, 1}, {8, 1}, {1, 4}, {4, 4}}, pf: 2},
	{name: "i8x256", comment: "int8 x int8, AVX2 (sign-extended to int16, VPMADDWD)", int8: true,
		tiles: [][2]int{{1, 1}, {4, 1}, {1, 2}, {4, 2}}, pf: 2},
	{name: "t5s512", comment: "1.6-bit ternary GEMV (5 trits per byte) decoded by byte additions, VPDPBUSD on zmm", wide: true, trits: true, tsum: true,
		tiles: [][2]int{{1, 1}, {4, 1}}, pf: 2},
	{name: "t5s256v", comment: "1.6-bit ternary GEMV (5 trits per byte) decoded by byte additions, VPDPBUSD on ymm (AVX-512 VL+VNNI)", vnni256: true, trits: true, tsum: true,
		tiles: [][2]int{{1, 1}, {4, 1}}, pf: 2},
	{name: "t5x256", comment: "1.6-bit ternary GEMV (5 trits per byte), AVX2 (VPMADDUBSW)", trits: true,
		tiles: [][2]int{{1, 1}, {4, 1}}, pf: 2},
	{name: "h4x512", comment: "packed 4-bit head rows (u = w+8) x int8, VPDPBUSD on zmm: the caller subtracts 8*sum(q)", wide: true, head: 4,
		tiles: [][2]int{{1, 1}, {4, 1}, {1, 4}, {4, 4}}, pf: 2},
	{name: "h6x512", comment: "packed 6-bit head rows (u = w+32) x int8, VPDPBUSD on zmm: the caller subtracts 32*sum(q)", wide: true, head: 6,
		tiles: [][2]int{{1, 1}, {4, 1}, {1, 2}, {4, 2}}, pf: 2},
	{name: "h4x256v", comment: "packed 4-bit head rows x int8, VPDPBUSD on ymm (AVX-512 VL+VNNI)", vnni256: true, head: 4,
		tiles: [][2]int{{1, 1}, {4, 1}, {1, 4}, {4, 4}}, pf: 2},
	{name: "h6x256v", comment: "packed 6-bit head rows x int8, VPDPBUSD on ymm (AVX-512 VL+VNNI)", vnni256: true, head: 6,
		tiles: [][2]int{{1, 1}, {4, 1}, {1, 2}, {4, 2}}, pf: 2},
	{name: "h4x256", comment: "packed 4-bit head rows x int8, AVX2 (VPMADDUBSW)", head: 4,
		tiles: [][2]int{{1, 1}, {4, 1}, {1, 2}, {4, 2}}, pf: 2},
	{name: "h6x256", comment: "packed 6-bit head rows x int8, AVX2 (VPMADDUBSW)", head: 6,
		tiles: [][2]int{{1, 1}, {2, 1}, {1, 2}, {2, 2}}, pf: 2},
}

// gp lists the general registers used as row and token pointers.
// AX is the block offset, CX its end; BP, SP, R14 and R15 are avoided.
var gp = []string{"SI", "DX", "R9", "R10", "R11", "R12", "R13", "BX", "DI", "R8"}

// regs hands out vector register numbers, from 0 up.
type regs struct{ next int }

// take returns the next n register numbers.
func (r *regs) take(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = r.next
		r.next++
	}
	return out
}

type gen struct {
	b bytes.Buffer
}

func (g *gen) f(format string, args ...any) { fmt.Fprintf(&g.b, format+"\n", args...) }

func main() {
	out := flag.String("out", ".", "directory of package kernels")
	flag.Parse()
	asm, decl, err := generate()
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*out, "tiles_amd64.s"), asm, 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*out, "tiles_amd64.go"), decl, 0o644); err != nil {
		log.Fatal(err)
	}
}

// generate returns the assembly and the gofmt-ed Go declarations.
func generate() (asm, decl []byte, err error) {
	var s, d gen
	s.f("// Code generated by internal/asmgen; DO NOT EDIT.\n")
	s.f("#include \"textflag.h\"\n")
	d.f("// Code generated by internal/asmgen; DO NOT EDIT.\n")
	d.f("package kernels\n")
	for _, fam := range families {
		d.f("// %s: %s.", fam.name, fam.comment)
		for _, t := range fam.tiles {
			name := fmt.Sprintf("%s_%dx%d", fam.name, t[0], t[1])
			d.f("\n//go:noescape")
			d.f("func %s(codes *byte, stride int, q *int8, qstride int, nblk int, out *int32)", name)
			if fam.head > 0 {
				s.headKernel(fam, name, t[0], t[1])
				continue
			}
			if fam.tsum {
				s.tritSumKernel(fam, name, t[0])
				continue
			}
			if fam.trits {
				s.tritKernel(fam, name, t[0])
				continue
			}
			s.kernel(fam, name, t[0], t[1])
		}
		d.f("")
	}
	src, err := format.Source(d.b.Bytes())
	if err != nil {
		return nil, nil, fmt.Errorf("format declarations: %w", err)
	}
	return s.b.Bytes(), src, nil
}

// kernel emits one R x T tile kernel.
func (g *gen) kernel(fam isa, name string, R, T int) {
	if R+T > len(gp) {
		log.Fatalf("%s: %d pointers, have %d registers", name, R+T, len(gp))
	}
	p := gp[:R]
	q := gp[R : R+T]
	g.header(name, p)
	// Prefetch the rows of the tile after next (weights come from DRAM on
	// the first pass): R*step bytes per iteration cover exactly those R
	// rows by the end of the loop, as rows are contiguous. Prefetches past
	// the matrix are harmless.
	pf := ""
	if R+T < len(gp) && fam.pf >= 0 {
		pf = gp[R+T]
		g.f("\tIMUL3Q $%d, AX, %s", fam.pf*R, pf)
		g.f("\tADDQ %s, %s", p[0], pf)
	}
	g.f("\tMOVQ q+16(FP), %s", q[0])
	g.f("\tMOVQ qstride+24(FP), AX")
	for i := 1; i < T; i++ {
		g.f("\tLEAQ (%s)(AX*1), %s", q[i-1], q[i])
	}
	// Vector registers.
	v := "Y"
	if fam.wide {
		v = "Z"
	}
	evex := fam.wide || fam.vnni256 // EVEX encodings: registers 16-31, VPDPBUSD
	var rs regs
	alloc := rs.take
	acc := alloc(R * T)
	limit := 14 // Y14, Y15 hold constants
	if evex {
		limit = 31 // Z31 (Y31) holds the constant
	}
	if fam.split {
		limit = 28 // Z28..Z31 hold the masks 0xc0, 0x30, 0x0c, 0x03
	}
	if fam.bw {
		limit = 30 // Z30: int16 ones, Z31: mask 0x03
	}
	var accN [3][]int // split: accumulators of n = 1, 2, 3
	if fam.split {
		for i := range accN {
			accN[i] = alloc(R)
		}
	}
	reg := func(i int) string { return fmt.Sprintf("%s%d", v, i) }
	cst := func(i int) string { return fmt.Sprintf("%s%d", v, i) }
	mask := limit // Z31 or Y14
	ones := 15    // Y15 (AVX2 only)
	// Constants.
	switch {
	case fam.int8 && evex:
		g.f("\tMOVL $0x80808080, AX")
		g.f("\tVPBROADCASTD AX, %s", cst(mask))
	case fam.split:
		for i, m := range []string{"0x03030303", "0x0c0c0c0c", "0x30303030", "0xc0c0c0c0"} {
			g.f("\tMOVL $%s, AX", m)
			g.f("\tVPBROADCASTD AX, %s%d", v, 31-i)
		}
	case fam.bw:
		g.f("\tMOVL $0x03030303, AX")
		g.f("\tVPBROADCASTD AX, Z31")
		g.f("\tMOVL $0x00010001, AX")
		g.f("\tVPBROADCASTD AX, Z30")
	case !fam.int8:
		g.f("\tMOVL $0x03030303, AX")
		if evex {
			g.f("\tVPBROADCASTD AX, %s", cst(mask))
		} else {
			g.f("\tMOVQ AX, X%d", mask)
			g.f("\tVPBROADCASTD X%d, %s", mask, cst(mask))
			g.f("\tMOVL $0x00010001, AX")
			g.f("\tMOVQ AX, X%d", ones)
			g.f("\tVPBROADCASTD X%d, %s", ones, cst(ones))
		}
	}
	for _, a := range append(append(append(append([]int{}, acc...), accN[0]...), accN[1]...), accN[2]...) {
		if evex {
			g.f("\tVPXORD %s, %s, %s", reg(a), reg(a), reg(a))
		} else {
			g.f("\tVPXOR %s, %s, %s", reg(a), reg(a), reg(a))
		}
	}
	g.f("\tMOVQ nblk+32(FP), CX")
	if fam.int8 {
		g.f("\tSHLQ $8, CX") // 256 bytes per block
	} else {
		g.f("\tSHLQ $6, CX") // 64 code bytes per block
	}
	g.f("\tXORQ AX, AX")
	g.f("loop:")
	var step int
	switch {
	case fam.split:
		step = 64
		if !fam.wide {
			step = 32
		}
		raw, qr, code := alloc(R), alloc(4), alloc(1)[0]
		check(name, rs.next, limit)
		for r := range R {
			g.f("\tVMOVDQU64 (%s)(AX*1), %s", p[r], reg(raw[r]))
		}
		for n := range 4 {
			g.f("\tVMOVDQU64 %d(%s)(AX*4), %s", step*n, q[0], reg(qr[n]))
		}
		for n := range 4 {
			for r := range R {
				dst := acc[r]
				if n > 0 {
					dst = accN[n-1][r]
				}
				g.f("\tVPANDQ %s%d, %s, %s", v, 31-n, reg(raw[r]), reg(code))
				g.f("\tVPDPBUSD %s, %s, %s", reg(qr[n]), reg(code), reg(dst))
			}
		}
	case fam.bw:
		step = 64
		pr, tmp, raw, code := alloc(T), alloc(1)[0], alloc(1)[0], alloc(1)[0]
		check(name, rs.next, limit)
		for r := range R {
			g.f("\tVMOVDQU64 (%s)(AX*1), %s", p[r], reg(raw))
			for n := range 4 {
				if n == 0 {
					g.f("\tVPANDQ Z31, %s, %s", reg(raw), reg(code))
				} else {
					g.f("\tVPSRLW $%d, %s, %s", 2*n, reg(raw), reg(code))
					g.f("\tVPANDQ Z31, %s, %s", reg(code), reg(code))
				}
				for t := range T {
					// int16 pair sums of code*q: |.| <= 512, four of them fit.
					if n == 0 {
						g.f("\tVPMADDUBSW %d(%s)(AX*4), %s, %s", 64*n, q[t], reg(code), reg(pr[t]))
					} else {
						g.f("\tVPMADDUBSW %d(%s)(AX*4), %s, %s", 64*n, q[t], reg(code), reg(tmp))
						g.f("\tVPADDW %s, %s, %s", reg(tmp), reg(pr[t]), reg(pr[t]))
					}
				}
			}
			for t := range T {
				g.f("\tVPMADDWD Z30, %s, %s", reg(pr[t]), reg(pr[t]))
				g.f("\tVPADDD %s, %s, %s", reg(pr[t]), reg(acc[r*T+t]), reg(acc[r*T+t]))
			}
		}
	case !fam.int8 && evex:
		step = 64
		if !fam.wide {
			step = 32
		}
		raw, code, qr := alloc(R), alloc(R), alloc(T)
		check(name, rs.next, limit)
		for r := range R {
			g.f("\tVMOVDQU64 (%s)(AX*1), %s", p[r], reg(raw[r]))
		}
		for n := range 4 {
			for t := range T {
				g.f("\tVMOVDQU64 %d(%s)(AX*4), %s", step*n, q[t], reg(qr[t]))
			}
			for r := range R {
				if n == 0 {
					g.f("\tVPANDQ %s, %s, %s", cst(mask), reg(raw[r]), reg(code[r]))
				} else {
					g.f("\tVPSRLW $%d, %s, %s", 2*n, reg(raw[r]), reg(code[r]))
					g.f("\tVPANDQ %s, %s, %s", cst(mask), reg(code[r]), reg(code[r]))
				}
				for t := range T {
					g.f("\tVPDPBUSD %s, %s, %s", reg(qr[t]), reg(code[r]), reg(acc[r*T+t]))
				}
			}
		}
	case !fam.int8:
		step = 32
		pr, tmp, raw, code := alloc(T), alloc(1)[0], alloc(1)[0], alloc(1)[0]
		check(name, rs.next, limit)
		for r := range R {
			g.f("\tVMOVDQU (%s)(AX*1), %s", p[r], reg(raw))
			for n := range 4 {
				if n == 0 {
					g.f("\tVPAND %s, %s, %s", cst(mask), reg(raw), reg(code))
				} else {
					g.f("\tVPSRLW $%d, %s, %s", 2*n, reg(raw), reg(code))
					g.f("\tVPAND %s, %s, %s", cst(mask), reg(code), reg(code))
				}
				for t := range T {
					// int16 pair sums of code*q: |.| <= 512, four of them fit.
					if n == 0 {
						g.f("\tVPMADDUBSW %d(%s)(AX*4), %s, %s", 32*n, q[t], reg(code), reg(pr[t]))
					} else {
						g.f("\tVPMADDUBSW %d(%s)(AX*4), %s, %s", 32*n, q[t], reg(code), reg(tmp))
						g.f("\tVPADDW %s, %s, %s", reg(tmp), reg(pr[t]), reg(pr[t]))
					}
				}
			}
			for t := range T {
				g.f("\tVPMADDWD %s, %s, %s", cst(ones), reg(pr[t]), reg(pr[t]))
				g.f("\tVPADDD %s, %s, %s", reg(pr[t]), reg(acc[r*T+t]), reg(acc[r*T+t]))
			}
		}
	case evex:
		vb := 64 // bytes per vector
		if !fam.wide {
			vb = 32
		}
		step = 4 * vb
		qr, wr := alloc(T), alloc(R)
		check(name, rs.next, limit)
		for s := range 4 {
			for t := range T {
				g.f("\tVMOVDQU64 %d(%s)(AX*1), %s", vb*s, q[t], reg(qr[t]))
			}
			for r := range R {
				g.f("\tVPXORQ %d(%s)(AX*1), %s, %s", vb*s, p[r], cst(mask), reg(wr[r]))
				for t := range T {
					g.f("\tVPDPBUSD %s, %s, %s", reg(qr[t]), reg(wr[r]), reg(acc[r*T+t]))
				}
			}
		}
	default:
		step = 32
		qr, wr, tmp := alloc(T), alloc(1)[0], alloc(1)[0]
		check(name, rs.next, limit)
		for s := range 2 {
			for t := range T {
				g.f("\tVPMOVSXBW %d(%s)(AX*1), %s", 16*s, q[t], reg(qr[t]))
			}
			for r := range R {
				g.f("\tVPMOVSXBW %d(%s)(AX*1), %s", 16*s, p[r], reg(wr))
				for t := range T {
					g.f("\tVPMADDWD %s, %s, %s", reg(qr[t]), reg(wr), reg(tmp))
					g.f("\tVPADDD %s, %s, %s", reg(tmp), reg(acc[r*T+t]), reg(acc[r*T+t]))
				}
			}
		}
	}
	if pf != "" {
		lines := R * step / 64 // each row advances step bytes per iteration
		for i := range lines {
			g.f("\tPREFETCHT0 %d(%s)", 64*i, pf)
		}
		g.f("\tADDQ $%d, %s", 64*lines, pf)
	}
	g.f("\tADDQ $%d, AX", step)
	g.f("\tCMPQ AX, CX")
	g.f("\tJB loop")
	if fam.split {
		for n := 1; n < 4; n++ {
			for r := range R {
				g.f("\tVPSRAD $%d, %s, %s", 2*n, reg(accN[n-1][r]), reg(accN[n-1][r]))
				g.f("\tVPADDD %s, %s, %s", reg(accN[n-1][r]), reg(acc[r]), reg(acc[r]))
			}
		}
	}
	g.reduce(fam, acc, limit-1)
}

// reduce stores the horizontal int32 sum of each accumulator register to
// out[i] (out+40(FP)), using register tmp, and returns.
func (g *gen) reduce(fam isa, acc []int, tmp int) {
	evex := fam.wide || fam.vnni256
	g.f("\tMOVQ out+40(FP), AX")
	for i, a := range acc {
		x, t := fmt.Sprintf("X%d", a), fmt.Sprintf("X%d", tmp)
		switch {
		case fam.wide:
			g.f("\tVEXTRACTI64X4 $1, Z%d, Y%d", a, tmp)
			g.f("\tVPADDD Y%d, Y%d, Y%d", tmp, a, a)
			g.f("\tVEXTRACTI32X4 $1, Y%d, %s", a, t)
		case evex:
			g.f("\tVEXTRACTI32X4 $1, Y%d, %s", a, t)
		default:
			g.f("\tVEXTRACTI128 $1, Y%d, %s", a, t)
		}
		g.f("\tVPADDD %s, %s, %s", t, x, x)
		g.f("\tVPSHUFD $0x4e, %s, %s", x, t)
		g.f("\tVPADDD %s, %s, %s", t, x, x)
		g.f("\tVPSHUFD $0xb1, %s, %s", x, t)
		g.f("\tVPADDD %s, %s, %s", t, x, x)
		g.f("\tVMOVD %s, %d(AX)", x, 4*i)
	}
	g.f("\tVZEROUPPER")
	g.f("\tRET\n")
}

// headKernel emits an R x T tile of a packed output head. Each 256-weight
// block of a row holds 128 bytes of nibbles (byte j: low nibble weight j,
// high nibble weight 128+j) and, for 6 bits, 64 bytes of 2-bit high parts
// (byte j, bits 2n..2n+1: weight 64n+j); the stored value is u = w+8 (4
// bits) or u = w+32 = nibble + 16*high (6 bits), an unsigned byte that
// VPDPBUSD / VPMADDUBSW multiply with q in natural order. Sums of u*q are
// exact in int32 (and in the int16 pair sums of AVX2: at most 2 products of
// 63*128 per VPMADDUBSW, two of them added).
func (g *gen) headKernel(fam isa, name string, R, T int) {
	if R+T+1 > len(gp) {
		log.Fatalf("%s: %d pointers, have %d registers", name, R+T+1, len(gp))
	}
	evex := fam.wide || fam.vnni256
	vb := 32
	v := "Y"
	if fam.wide {
		vb, v = 64, "Z"
	}
	blk := 128 // bytes per 256-weight block
	if fam.head == 6 {
		blk = 192
	}
	p, q := gp[:R], gp[R:R+T]
	g.header(name, p)
	pf := ""
	if R+T < len(gp) && fam.pf >= 0 {
		pf = gp[R+T]
		g.f("\tIMUL3Q $%d, AX, %s", fam.pf*R, pf)
		g.f("\tADDQ %s, %s", p[0], pf)
	}
	g.f("\tMOVQ q+16(FP), %s", q[0])
	g.f("\tMOVQ qstride+24(FP), AX")
	for i := 1; i < T; i++ {
		g.f("\tLEAQ (%s)(AX*1), %s", q[i-1], q[i])
	}
	reg := func(i int) string { return fmt.Sprintf("%s%d", v, i) }
	var rs regs
	alloc := rs.take
	// Constants from the top: 0x0f, 0x30 (6-bit), and for AVX2 int16 ones.
	top := 15
	if evex {
		top = 31
	}
	// Registers below limit are free; the reduction reuses cF.
	cF, c30, ones := top, top-1, top-2
	consts := [][2]string{{"0x0f0f0f0f", reg(cF)}}
	limit := top
	if fam.head == 6 {
		consts = append(consts, [2]string{"0x30303030", reg(c30)})
		limit = c30
	}
	if !evex {
		consts = append(consts, [2]string{"0x00010001", reg(ones)})
		limit = ones
	}
	for _, c := range consts {
		g.f("\tMOVL $%s, AX", c[0])
		if evex {
			g.f("\tVPBROADCASTD AX, %s", c[1])
		} else {
			x := "X" + c[1][1:]
			g.f("\tMOVQ AX, %s", x)
			g.f("\tVPBROADCASTD %s, %s", x, c[1])
		}
	}
	acc := alloc(R * T)
	xor := "VPXOR"
	if evex {
		xor = "VPXORD"
	}
	for _, a := range acc {
		g.f("\t%s %s, %s, %s", xor, reg(a), reg(a), reg(a))
	}
	g.f("\tMOVQ nblk+32(FP), CX")
	g.f("\tIMUL3Q $%d, CX, CX", blk)
	g.f("\tXORQ AX, AX")
	g.f("loop:")
	// field(k) describes the bytes of one vector of weights: nibble
	// vector nv (its high nibbles when hi), the 2-bit vector tv and its
	// field n, and the q offset.
	type field struct {
		nv     int
		hi     bool
		tv, tn int
		qoff   int
	}
	var fields []field
	nvec := 128 / vb // nibble vectors per block
	for k := 0; k < 256/vb; k++ {
		e := k * vb // first weight
		f := field{nv: k % nvec, hi: k >= nvec, qoff: e}
		f.tn = e / 64
		f.tv = (e % 64) / vb
		fields = append(fields, f)
	}
	if evex {
		// Per nibble vector: q of its two fields once, then each row.
		qr, raw, u := alloc(2*T), alloc(1)[0], alloc(1)[0]
		h, tw := -1, -1
		if fam.head == 6 {
			h, tw = alloc(1)[0], alloc(1)[0]
		}
		if rs.next > limit {
			log.Fatalf("%s: needs %d vector registers, have %d", name, rs.next, limit)
		}
		for nv := range nvec {
			for half := range 2 {
				for t := range T {
					g.f("\tVMOVDQU64 %d(%s), %s", fields[nv+half*nvec].qoff, q[t], reg(qr[half*T+t]))
				}
			}
			for r := range R {
				g.f("\tVMOVDQU64 %d(%s)(AX*1), %s", nv*vb, p[r], reg(raw))
				for half := range 2 {
					f := fields[nv+half*nvec]
					if half == 1 {
						g.f("\tVPSRLW $4, %s, %s", reg(raw), reg(u))
						g.f("\tVPANDQ %s, %s, %s", reg(cF), reg(u), reg(u))
					} else {
						g.f("\tVPANDQ %s, %s, %s", reg(cF), reg(raw), reg(u))
					}
					if fam.head == 6 {
						// bits 2n..2n+1 of the 2-bit byte moved to bits 4..5.
						g.f("\tVMOVDQU64 %d(%s)(AX*1), %s", 128+f.tv*vb, p[r], reg(tw))
						switch sh := 4 - 2*f.tn; {
						case sh > 0:
							g.f("\tVPSLLW $%d, %s, %s", sh, reg(tw), reg(h))
						case sh < 0:
							g.f("\tVPSRLW $%d, %s, %s", -sh, reg(tw), reg(h))
						default:
							g.f("\tVMOVDQU64 %s, %s", reg(tw), reg(h))
						}
						g.f("\tVPTERNLOGD $0xf8, %s, %s, %s", reg(c30), reg(h), reg(u)) // u |= h & 0x30
					}
					for t := range T {
						g.f("\tVPDPBUSD %s, %s, %s", reg(qr[half*T+t]), reg(u), reg(acc[r*T+t]))
					}
				}
			}
		}
	} else {
		// AVX2: one row at a time; per pair of fields (nibble vector nv,
		// its low and high halves) int16 pair sums, then VPMADDWD.
		pr, tmp, raw, u := alloc(T), alloc(1)[0], alloc(1)[0], alloc(1)[0]
		h, tw := -1, -1
		if fam.head == 6 {
			h, tw = alloc(1)[0], alloc(1)[0]
		}
		if rs.next > limit {
			log.Fatalf("%s: needs %d vector registers, have %d", name, rs.next, limit)
		}
		for r := range R {
			for nv := range nvec {
				g.f("\tVMOVDQU %d(%s)(AX*1), %s", nv*vb, p[r], reg(raw))
				for half := range 2 {
					f := fields[nv+half*nvec]
					if half == 1 {
						g.f("\tVPSRLW $4, %s, %s", reg(raw), reg(u))
						g.f("\tVPAND %s, %s, %s", reg(cF), reg(u), reg(u))
					} else {
						g.f("\tVPAND %s, %s, %s", reg(cF), reg(raw), reg(u))
					}
					if fam.head == 6 {
						g.f("\tVMOVDQU %d(%s)(AX*1), %s", 128+f.tv*vb, p[r], reg(tw))
						switch sh := 4 - 2*f.tn; {
						case sh > 0:
							g.f("\tVPSLLW $%d, %s, %s", sh, reg(tw), reg(h))
						case sh < 0:
							g.f("\tVPSRLW $%d, %s, %s", -sh, reg(tw), reg(h))
						default:
							g.f("\tVMOVDQU %s, %s", reg(tw), reg(h))
						}
						g.f("\tVPAND %s, %s, %s", reg(c30), reg(h), reg(h))
						g.f("\tVPOR %s, %s, %s", reg(h), reg(u), reg(u))
					}
					for t := range T {
						if half == 0 {
							g.f("\tVPMADDUBSW %d(%s), %s, %s", f.qoff, q[t], reg(u), reg(pr[t]))
						} else {
							g.f("\tVPMADDUBSW %d(%s), %s, %s", f.qoff, q[t], reg(u), reg(tmp))
							g.f("\tVPADDW %s, %s, %s", reg(tmp), reg(pr[t]), reg(pr[t]))
						}
					}
				}
				for t := range T {
					g.f("\tVPMADDWD %s, %s, %s", reg(ones), reg(pr[t]), reg(pr[t]))
					g.f("\tVPADDD %s, %s, %s", reg(pr[t]), reg(acc[r*T+t]), reg(acc[r*T+t]))
				}
			}
		}
	}
	if pf != "" {
		lines := R * blk / 64
		for i := range lines {
			g.f("\tPREFETCHT0 %d(%s)", 64*i, pf)
		}
		g.f("\tADDQ $%d, %s", 64*lines, pf)
	}
	for t := range T {
		g.f("\tADDQ $256, %s", q[t])
	}
	g.f("\tADDQ $%d, AX", blk)
	g.f("\tCMPQ AX, CX")
	g.f("\tJB loop")
	g.reduce(fam, acc, cF)
}

// tritKernel emits an R x 1 GEMV over rows in the 1.6-bit layout of
// ternary.Matrix.Trits: each 64-byte group holds 320 codes, trit n (t0 most
// significant) of byte j the code of weight 64n+j, stored as
// ceil(sum t_n 3^(4-n) * 256/243) so that t_n = ((b*3^n mod 256) * 3) >> 8.
// In 16-bit lanes: a = w*3^n keeps the low byte's product in its low byte,
// and (w & 0xff00)*3^n the high byte's in its high byte; VPMULHUW by 3 (of
// the low byte moved up) and by 768 (of the high byte) leave the trits in
// the low byte and the high byte of each lane. nblk packs full groups << 3
// | the planes of a last partial group (0-4).
func (g *gen) tritKernel(fam isa, name string, R int) {
	evex := fam.wide || fam.vnni256
	vb, v := 32, "Y"
	if fam.wide {
		vb, v = 64, "Z"
	}
	p, q, pf := g.tritPrologue(fam, name, R)
	reg := func(i int) string { return fmt.Sprintf("%s%d", v, i) }
	top := 15
	if evex {
		top = 31
	}
	cHi, c768, c3, cLo := top, top-1, top-2, top-3 // 0xff00, 0x0300, 3, 0x00ff (AVX2: int16 ones)
	consts := [][2]string{{"0xff00ff00", reg(cHi)}, {"0x03000300", reg(c768)}, {"0x00030003", reg(c3)}}
	if evex {
		consts = append(consts, [2]string{"0x00ff00ff", reg(cLo)})
	} else {
		consts = append(consts, [2]string{"0x00010001", reg(cLo)})
	}
	for _, c := range consts {
		g.f("\tMOVL $%s, AX", c[0])
		if evex {
			g.f("\tVPBROADCASTD AX, %s", c[1])
		} else {
			x := "X" + c[1][1:]
			g.f("\tMOVQ AX, %s", x)
			g.f("\tVPBROADCASTD %s, %s", x, c[1])
		}
	}
	var rs regs
	alloc := func() int { return rs.take(1)[0] }
	acc := make([]int, R)
	for i := range acc {
		acc[i] = alloc()
	}
	a, b, tl, th, qr, pr := alloc(), alloc(), alloc(), alloc(), alloc(), alloc()
	if rs.next > cLo {
		log.Fatalf("%s: needs %d vector registers, have %d", name, rs.next, cLo)
	}
	xor, and := "VPXOR", "VPAND"
	if evex {
		xor, and = "VPXORD", "VPANDD"
	}
	for _, r := range acc {
		g.f("\t%s %s, %s, %s", xor, reg(r), reg(r), reg(r))
	}
	// group emits the planes of the 64-byte group at AX for every row,
	// row by row: a and b carry w*3^n and (w & 0xff00)*3^n from plane to
	// plane. tail > 0 checks R8 before each plane and jumps to the next
	// row (labels tail<r>) once R8 planes are done.
	group := func(tail bool) {
		for r := range R {
			for h := range 64 / vb {
				src := fmt.Sprintf("%d(%s)(AX*1)", vb*h, p[r])
				if tail { // no partial group: nothing to load past the row
					g.f("\tCMPQ R8, $1")
					g.f("\tJB tail%d_%d", r, h)
				}
				if evex {
					g.f("\tVMOVDQU64 %s, %s", src, reg(a))
				} else {
					g.f("\tVMOVDQU %s, %s", src, reg(a))
				}
				g.f("\t%s %s, %s, %s", and, reg(cHi), reg(a), reg(b))
				for n := range 5 {
					if tail && n > 0 {
						if n == 4 {
							break
						}
						g.f("\tCMPQ R8, $%d", n+1)
						g.f("\tJB tail%d_%d", r, h)
					}
					if n > 0 {
						g.f("\tVPMULLW %s, %s, %s", reg(c3), reg(a), reg(a))
						g.f("\tVPMULLW %s, %s, %s", reg(c3), reg(b), reg(b))
					}
					g.f("\tVPSLLW $8, %s, %s", reg(a), reg(tl))
					g.f("\tVPMULHUW %s, %s, %s", reg(c3), reg(tl), reg(tl))  // low-byte trit, high byte 0
					g.f("\tVPMULHUW %s, %s, %s", reg(c768), reg(b), reg(th)) // high-byte trit in the high byte
					qsrc := fmt.Sprintf("%d(%s)", 64*n+vb*h, q)
					if evex {
						g.f("\tVPTERNLOGD $0xe4, %s, %s, %s", reg(cLo), reg(th), reg(tl)) // tl = cLo ? tl : th
						g.f("\tVMOVDQU64 %s, %s", qsrc, reg(qr))
						g.f("\tVPDPBUSD %s, %s, %s", reg(qr), reg(tl), reg(acc[r]))
					} else {
						g.f("\tVPAND %s, %s, %s", reg(cHi), reg(th), reg(th))
						g.f("\tVPOR %s, %s, %s", reg(th), reg(tl), reg(tl))
						g.f("\tVPMADDUBSW %s, %s, %s", qsrc, reg(tl), reg(pr))
						g.f("\tVPMADDWD %s, %s, %s", reg(cLo), reg(pr), reg(pr))
						g.f("\tVPADDD %s, %s, %s", reg(pr), reg(acc[r]), reg(acc[r]))
					}
				}
				if tail {
					g.f("tail%d_%d:", r, h)
				}
			}
		}
	}
	g.tritLoop(R, q, pf, group)
	g.reduce(fam, acc, cHi)
}

// header emits a kernel's declaration comment and TEXT line, and loads
// the row pointers p (stride bytes apart; AX holds the stride).
func (g *gen) header(name string, p []string) {
	g.f("// func %s(codes *byte, stride int, q *int8, qstride int, nblk int, out *int32)", name)
	g.f("TEXT ·%s(SB), NOSPLIT, $0-48", name)
	g.f("\tMOVQ codes+0(FP), %s", p[0])
	g.f("\tMOVQ stride+8(FP), AX")
	for i := 1; i < len(p); i++ {
		g.f("\tLEAQ (%s)(AX*1), %s", p[i-1], p[i])
	}
}

// tritPrologue emits the head of a 1.6-bit GEMV kernel: R row pointers
// (stride apart), the prefetch pointer pf ("" without) fam.pf tiles ahead,
// and q's pointer.
func (g *gen) tritPrologue(fam isa, name string, R int) (p []string, q, pf string) {
	p, q = gp[:R], gp[R]
	g.header(name, p)
	if fam.pf >= 0 {
		pf = gp[R+1]
		g.f("\tIMUL3Q $%d, AX, %s", fam.pf*R, pf)
		g.f("\tADDQ %s, %s", p[0], pf)
	}
	g.f("\tMOVQ q+16(FP), %s", q)
	return p, q, pf
}

// tritLoop emits the loop over nblk's full 64-byte groups (AX up to CX;
// R8 the planes of the partial group), with
// software prefetch of the R rows' next groups, then the partial group:
// group(tail) emits one group's planes.
func (g *gen) tritLoop(R int, q, pf string, group func(tail bool)) {
	g.f("\tMOVQ nblk+32(FP), CX")
	g.f("\tMOVQ CX, R8") // R8: planes of the partial group
	g.f("\tANDQ $7, R8")
	g.f("\tSHRQ $3, CX")
	g.f("\tSHLQ $6, CX") // 64 bytes per group
	g.f("\tXORQ AX, AX")
	g.f("\tCMPQ AX, CX")
	g.f("\tJAE tail")
	g.f("loop:")
	group(false)
	if pf != "" {
		for i := range R {
			g.f("\tPREFETCHT0 %d(%s)", 64*i, pf)
		}
		g.f("\tADDQ $%d, %s", 64*R, pf)
	}
	g.f("\tADDQ $320, %s", q)
	g.f("\tADDQ $64, AX")
	g.f("\tCMPQ AX, CX")
	g.f("\tJB loop")
	g.f("tail:")
	group(true)
}

// tritSumKernel emits an R x 1 GEMV over the 1.6-bit layout (see
// tritKernel) without multiplies: with x_0 = b and x_{n+1} = 3*x_n mod 256
// (two byte additions), trit n is t_n = floor(3*x_n/256), so
// 256*t_n = 3*x_n - x_{n+1} and
//
//	sum_n t_n*q_n = (3*sum_n x_n*q_n - sum_n x_{n+1}*q_n) / 256.
//
// Both sums are VPDPBUSD of unsigned bytes x with signed q: two per plane
// instead of four multiplies and one VPDPBUSD. The identity holds per byte,
// so per int32 lane: 3*S1 - S2 is 256 times the lane's trit sum, exact in
// int32 (wrapping) while that sum's magnitude stays below 2^23, that is
// for K below 2^23 / (2*128) * 16 (ymm: * 8) = 2^19 (2^18) weights; the
// lanes are shifted back before they are added up.
func (g *gen) tritSumKernel(fam isa, name string, R int) {
	vb, v := 32, "Y"
	if fam.wide {
		vb, v = 64, "Z"
	}
	p, q, pf := g.tritPrologue(fam, name, R)
	reg := func(i int) string { return fmt.Sprintf("%s%d", v, i) }
	var rs regs
	alloc := rs.take
	s1, s2, x, t, qr := alloc(R), alloc(R), alloc(R), alloc(R), alloc(1)[0]
	tmp := alloc(1)[0]
	if rs.next > 32 {
		log.Fatalf("%s: needs %d vector registers, have 32", name, rs.next)
	}
	for r := range R {
		g.f("\tVPXORD %s, %s, %s", reg(s1[r]), reg(s1[r]), reg(s1[r]))
		g.f("\tVPXORD %s, %s, %s", reg(s2[r]), reg(s2[r]), reg(s2[r]))
	}
	// group emits the planes of the 64-byte group at AX, plane by plane
	// for all rows (q loaded once per plane). tail checks R8 before each
	// plane and leaves the group (label tail<h>) once R8 planes are done.
	group := func(tail bool) {
		for h := range 64 / vb {
			if tail {
				g.f("\tCMPQ R8, $1")
				g.f("\tJB tail%d", h)
			}
			for r := range R {
				g.f("\tVMOVDQU64 %d(%s)(AX*1), %s", vb*h, p[r], reg(x[r]))
			}
			for n := range 5 {
				if tail && n > 0 {
					if n == 4 {
						break
					}
					g.f("\tCMPQ R8, $%d", n+1)
					g.f("\tJB tail%d", h)
				}
				g.f("\tVMOVDQU64 %d(%s), %s", 64*n+vb*h, q, reg(qr))
				for r := range R {
					g.f("\tVPDPBUSD %s, %s, %s", reg(qr), reg(x[r]), reg(s1[r]))
					g.f("\tVPADDB %s, %s, %s", reg(x[r]), reg(x[r]), reg(t[r]))
					g.f("\tVPADDB %s, %s, %s", reg(t[r]), reg(x[r]), reg(x[r]))
					g.f("\tVPDPBUSD %s, %s, %s", reg(qr), reg(x[r]), reg(s2[r]))
				}
			}
			if tail {
				g.f("tail%d:", h)
			}
		}
	}
	g.tritLoop(R, q, pf, group)
	for r := range R { // s1 = (3*s1 - s2) >> 8, lane by lane
		g.f("\tVPADDD %s, %s, %s", reg(s1[r]), reg(s1[r]), reg(t[r]))
		g.f("\tVPADDD %s, %s, %s", reg(t[r]), reg(s1[r]), reg(s1[r]))
		g.f("\tVPSUBD %s, %s, %s", reg(s2[r]), reg(s1[r]), reg(s1[r]))
		g.f("\tVPSRAD $8, %s, %s", reg(s1[r]), reg(s1[r]))
	}
	g.reduce(fam, s1, tmp)
}

func check(name string, used, limit int) {
	if used > limit-1 { // one below the constants is the reduction temporary
		log.Fatalf("%s: needs %d vector registers, have %d", name, used, limit-1)
	}
}
