package metal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
	"weak"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// ErrDeclined reports a product the GPU does not run (a shape past the
// kernels' 32-bit offsets, a buffer the device cannot create): the caller
// runs it on the CPU instead, with the same result. It wraps
// kernels.ErrDeclined, so a kernels.Engine does that by itself.
var ErrDeclined = fmt.Errorf("metal: %w", kernels.ErrDeclined)

// ErrClosed reports a GPU used after Close.
var ErrClosed = errors.New("metal: GPU closed")

// GPU runs BitNet products on a Backend with the operands of package
// kernels, bit-identical to its generic path: ternary matrices
// (MatMul, MatMulMany), int8 heads (MatMulInt8), 6- and 4-bit heads
// (MatMulPacked) and activation quantisation (Quantize).
//
// Weights are mapped into the device once, on first use, without a copy
// where the device maps the caller's pages (Metal's newBufferWithBytesNoCopy
// over unified memory); the mapping lives as long as the matrix (a weak
// reference and a cleanup drop it). Activations and outputs go through
// buffers the CPU and GPU share, reused across products. A GPU is safe for
// concurrent use; products run one at a time.
type GPU struct {
	b Backend

	mu     sync.Mutex // guards the scratch buffers and closed
	act    Buffer     // activations: q, scales, sums (and quantize's bad flags)
	out    Buffer     // outputs
	x      Buffer     // quantize's float input
	closed bool

	wmu     sync.Mutex
	weights map[any]*weights // by weak.Pointer to the matrix

	mapped, copied, scratch atomic.Int64
	products, dispatches    atomic.Int64
}

// weights is a matrix's device buffers.
type weights struct {
	buf    Buffer
	scales Buffer // per-row scales (heads); nil for ternary
	ptr    uintptr
	n      int
	copied int64 // device bytes beyond the CPU's
	mapped int64
}

// New returns a GPU over b. It owns b: Close closes it.
func New(b Backend) *GPU {
	return &GPU{b: b, weights: map[any]*weights{}}
}

// Name describes the device.
func (g *GPU) Name() string { return g.b.Name() }

// Path is kernels.Metal: a GPU is a kernels.Accelerator.
func (g *GPU) Path() kernels.Path { return kernels.Metal }

var (
	_ kernels.Accelerator = (*GPU)(nil)
	_ kernels.Preparer    = (*GPU)(nil)
)

// Stats reports the device memory the GPU holds and the work it ran.
type Stats struct {
	// MappedBytes are weights the device reads in place (no copy).
	MappedBytes int64 `json:"mapped_bytes"`
	// CopiedBytes are weights and scales the device holds copies of:
	// memory beyond the CPU's.
	CopiedBytes int64 `json:"copied_bytes"`
	// ScratchBytes are the shared activation and output buffers.
	ScratchBytes int64 `json:"scratch_bytes"`
	// Products and Dispatches count the work run.
	Products   int64 `json:"products"`
	Dispatches int64 `json:"dispatches"`
}

// Stats returns the GPU's current figures.
func (g *GPU) Stats() Stats {
	return Stats{
		MappedBytes: g.mapped.Load(), CopiedBytes: g.copied.Load(), ScratchBytes: g.scratch.Load(),
		Products: g.products.Load(), Dispatches: g.dispatches.Load(),
	}
}

// ResidentBytes is the memory the GPU adds to the CPU's: copies and
// scratch buffers (mapped weights are the CPU's own pages).
func (g *GPU) ResidentBytes() int64 { return g.copied.Load() + g.scratch.Load() }

// Close releases every buffer and the backend. Products after Close fail
// with ErrClosed.
func (g *GPU) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	for _, b := range []Buffer{g.act, g.out, g.x} {
		if b != nil {
			b.Release()
		}
	}
	g.act, g.out, g.x = nil, nil, nil
	g.wmu.Lock()
	for k, w := range g.weights {
		w.release()
		delete(g.weights, k)
	}
	g.wmu.Unlock()
	return g.b.Close()
}

func (w *weights) release() {
	w.buf.Release()
	if w.scales != nil {
		w.scales.Release()
	}
}

// format is a weight layout the kernels read.
type format int

const (
	fmtTernary format = iota
	fmtInt8
	fmtInt6
	fmtInt4
)

var formatNames = [...]string{"ternary", "int8", "int6", "int4"}

// zero is the offset the format stores weights with (dot -= zero*sum(q)).
func (f format) zero() uint32 { return [...]uint32{1, 0, 32, 8}[f] }

// kernel returns the kernel of f for n tokens: one GEMV per token ("mv_")
// for one token, tiled GEMM ("mm_") otherwise.
func (f format) kernel(n int) string {
	if n == 1 {
		return "mv_" + formatNames[f]
	}
	return "mm_" + formatNames[f]
}

// product is one weight matrix times the activations.
type product struct {
	f        format
	w        *weights
	rows     int
	rowBytes int
	wscale   float32
	y        []float32
}

// MatMul computes y[t*w.Rows+r] = dot(T[r], q[t]) * (w.Scale / a.Scale[t])
// like kernels.Engine.MatMul, bit for bit.
func (g *GPU) MatMul(y []float32, w *ternary.Matrix, a *kernels.Activations) error {
	return g.MatMulMany([][]float32{y}, []*ternary.Matrix{w}, a)
}

// MatMulMany runs MatMul(ys[i], ws[i], a) for every i in one command
// buffer (e.g. a layer's q, k and v projections).
func (g *GPU) MatMulMany(ys [][]float32, ws []*ternary.Matrix, a *kernels.Activations) error {
	if len(ys) != len(ws) || len(ws) == 0 {
		return fmt.Errorf("%w: %d outputs for %d matrices", kernels.ErrShape, len(ys), len(ws))
	}
	if err := checkActivations(a); err != nil {
		return err
	}
	ps := make([]product, len(ws))
	for i, w := range ws {
		if w == nil {
			return fmt.Errorf("%w: nil weights", kernels.ErrShape)
		}
		if w.Cols != a.K || w.Rows <= 0 || w.Stride != a.Stride/4 || len(w.Codes) < w.Rows*w.Stride {
			return fmt.Errorf("%w: weights %dx%d (stride %d, %d bytes), activations %dx%d",
				kernels.ErrShape, w.Rows, w.Cols, w.Stride, len(w.Codes), a.N, a.K)
		}
		if len(ys[i]) != a.N*w.Rows {
			return fmt.Errorf("%w: output has %d floats, want %d tokens x %d rows", kernels.ErrShape, len(ys[i]), a.N, w.Rows)
		}
		ps[i] = product{f: fmtTernary, rows: w.Rows, rowBytes: w.Stride, wscale: w.Scale, y: ys[i]}
	}
	if a.N == 0 {
		return nil
	}
	for i, w := range ws {
		wb, err := mapWeights(g, w, w.Codes[:w.Rows*w.Stride], nil)
		if err != nil {
			return err
		}
		ps[i].w = wb
	}
	err := g.run(a, ps)
	runtime.KeepAlive(ws) // their cleanups release the buffers the device reads
	return err
}

// MatMulInt8 computes y[t*w.Rows+r] = float32(dot(W[r], q[t])) *
// (w.Scales[r] / a.Scale[t]) like kernels.Engine.MatMulInt8, bit for bit.
func (g *GPU) MatMulInt8(y []float32, w *kernels.Int8Matrix, a *kernels.Activations) error {
	if w == nil {
		return fmt.Errorf("%w: nil int8 weights", kernels.ErrShape)
	}
	if err := checkActivations(a); err != nil {
		return err
	}
	if w.Cols != a.K || w.Stride != a.Stride || w.Rows <= 0 || len(w.Data) < w.Rows*w.Stride || len(w.Scales) < w.Rows {
		return fmt.Errorf("%w: int8 weights %dx%d (stride %d, %d bytes, %d scales), activations %dx%d (stride %d)",
			kernels.ErrShape, w.Rows, w.Cols, w.Stride, len(w.Data), len(w.Scales), a.N, a.K, a.Stride)
	}
	if len(y) != a.N*w.Rows {
		return fmt.Errorf("%w: output has %d floats, want %d tokens x %d rows", kernels.ErrShape, len(y), a.N, w.Rows)
	}
	if a.N == 0 {
		return nil
	}
	data := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(w.Data))), w.Rows*w.Stride)
	wb, err := mapWeights(g, w, data, w.Scales[:w.Rows])
	if err != nil {
		return err
	}
	err = g.run(a, []product{{f: fmtInt8, w: wb, rows: w.Rows, rowBytes: w.Stride, y: y}})
	runtime.KeepAlive(w)
	return err
}

// MatMulPacked computes the 6- and 4-bit head products like
// kernels.Engine.MatMulPacked, bit for bit.
func (g *GPU) MatMulPacked(y []float32, w *kernels.PackedMatrix, a *kernels.Activations) error {
	if w == nil {
		return fmt.Errorf("%w: nil packed weights", kernels.ErrShape)
	}
	if err := checkActivations(a); err != nil {
		return err
	}
	f := fmtInt6
	block := 192
	if w.Bits == 4 {
		f, block = fmtInt4, 128
	}
	if w.Cols != a.K || (w.Bits != 6 && w.Bits != 4) || w.Rows <= 0 || w.Stride != a.Stride/ternary.BlockSize*block ||
		len(w.Data) < w.Rows*w.Stride || len(w.Scales) < w.Rows {
		return fmt.Errorf("%w: packed %d-bit weights %dx%d (stride %d, %d bytes, %d scales), activations %dx%d (stride %d)",
			kernels.ErrShape, w.Bits, w.Rows, w.Cols, w.Stride, len(w.Data), len(w.Scales), a.N, a.K, a.Stride)
	}
	if len(y) != a.N*w.Rows {
		return fmt.Errorf("%w: output has %d floats, want %d tokens x %d rows", kernels.ErrShape, len(y), a.N, w.Rows)
	}
	if a.N == 0 {
		return nil
	}
	wb, err := mapWeights(g, w, w.Data[:w.Rows*w.Stride], w.Scales[:w.Rows])
	if err != nil {
		return err
	}
	err = g.run(a, []product{{f: f, w: wb, rows: w.Rows, rowBytes: w.Stride, y: y}})
	runtime.KeepAlive(w)
	return err
}

// Prepare maps a model's matrices into the device ahead of its first
// product (kernels.Preparer) and returns the device memory they take
// beyond the CPU's: copies of weights Metal could not map in place, and
// the heads' row scales. It stops at the first matrix the device declines
// (ErrDeclined: past its working set, say); those run on the CPU.
func (g *GPU) Prepare(ws []*ternary.Matrix, h8 *kernels.Int8Matrix, hp *kernels.PackedMatrix) (int64, error) {
	var n int64
	add := func(w *weights, err error) error {
		if err == nil {
			n += w.copied
		}
		return err
	}
	for _, w := range ws {
		if w == nil {
			continue
		}
		if err := add(mapWeights(g, w, w.Codes[:w.Rows*w.Stride], nil)); err != nil {
			return n, err
		}
	}
	if h8 != nil {
		data := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(h8.Data))), h8.Rows*h8.Stride)
		if err := add(mapWeights(g, h8, data, h8.Scales[:h8.Rows])); err != nil {
			return n, err
		}
	}
	if hp != nil {
		if err := add(mapWeights(g, hp, hp.Data[:hp.Rows*hp.Stride], hp.Scales[:hp.Rows])); err != nil {
			return n, err
		}
	}
	return n, nil
}

// checkActivations validates what the kernels rely on, as package kernels
// does.
func checkActivations(a *kernels.Activations) error {
	if a == nil {
		return fmt.Errorf("%w: nil activations", kernels.ErrShape)
	}
	if a.N < 0 || a.K <= 0 || a.Stride != ternary.PaddedCols(a.K) || len(a.Q) < a.N*a.Stride ||
		len(a.Scale) < a.N || len(a.Sum) < a.N {
		return fmt.Errorf("%w: activations %dx%d with stride %d, %d q, %d scales, %d sums (use NewActivations/Reset)",
			kernels.ErrShape, a.N, a.K, a.Stride, len(a.Q), len(a.Scale), len(a.Sum))
	}
	return nil
}

// maxOffset bounds every byte or element offset the kernels compute in
// 32-bit arithmetic.
const maxOffset = math.MaxInt32

// mapWeights returns the device buffers of matrix m (data and, for heads,
// per-row scales), mapping them on first use.
func mapWeights[T any](g *GPU, m *T, data []byte, scales []float32) (*weights, error) {
	if len(data) > maxOffset {
		return nil, fmt.Errorf("%w: %d weight bytes exceed 32-bit offsets", ErrDeclined, len(data))
	}
	key := weak.Make(m)
	ptr := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	g.wmu.Lock()
	defer g.wmu.Unlock()
	if g.weights == nil {
		return nil, ErrClosed
	}
	if w, ok := g.weights[key]; ok {
		if w.ptr == ptr && w.n == len(data) {
			return w, nil
		}
		g.dropLocked(key) // the matrix's bytes moved
	}
	if int64(len(data)) > g.b.MaxBufferBytes() {
		return nil, fmt.Errorf("%w: %d weight bytes, the device's largest buffer is %d", ErrDeclined, len(data), g.b.MaxBufferBytes())
	}
	if ws := g.b.WorkingSetBytes(); ws > 0 && g.mapped.Load()+g.copied.Load()+g.scratch.Load()+int64(len(data)) > ws {
		return nil, fmt.Errorf("%w: %d more weight bytes exceed the device's working set of %d bytes (%d in use)",
			ErrDeclined, len(data), ws, g.mapped.Load()+g.copied.Load()+g.scratch.Load())
	}
	buf, err := g.b.WrapBuffer(data)
	if err != nil {
		return nil, fmt.Errorf("%w: map %d weight bytes: %w", ErrDeclined, len(data), err)
	}
	w := &weights{buf: buf, ptr: ptr, n: len(data)}
	if buf.Copied() {
		w.copied += int64(len(data))
	} else {
		w.mapped += int64(len(data))
	}
	if scales != nil {
		sb, err := g.b.NewBuffer(4 * len(scales))
		if err != nil {
			buf.Release()
			return nil, fmt.Errorf("%w: %d row scales: %w", ErrDeclined, len(scales), err)
		}
		copy(sb.Bytes(), floatBytes(scales))
		w.scales = sb
		w.copied += int64(4 * len(scales))
	}
	g.weights[key] = w
	g.mapped.Add(w.mapped)
	g.copied.Add(w.copied)
	runtime.AddCleanup(m, func(k any) { g.drop(k) }, any(key))
	return w, nil
}

// drop releases the buffers of a matrix that was collected.
func (g *GPU) drop(key any) {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	g.dropLocked(key)
}

func (g *GPU) dropLocked(key any) {
	if w, ok := g.weights[key]; ok {
		delete(g.weights, key)
		g.mapped.Add(-w.mapped)
		g.copied.Add(-w.copied)
		w.release()
	}
}

// floatBytes views f as bytes (little-endian, like every GPU host).
func floatBytes(f []float32) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(f))), 4*len(f))
}

func int32Bytes(f []int32) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(f))), 4*len(f))
}

// ensure returns *b grown to at least n bytes (doubling, so that it is
// reallocated rarely).
func (g *GPU) ensure(b *Buffer, n int) (Buffer, error) {
	if *b != nil && len((*b).Bytes()) >= n {
		return *b, nil
	}
	size := 64 << 10
	if *b != nil {
		size = len((*b).Bytes())
	}
	for size < n {
		size *= 2
	}
	nb, err := g.b.NewBuffer(size)
	if err != nil {
		return nil, fmt.Errorf("%w: scratch buffer of %d bytes: %w", ErrDeclined, size, err)
	}
	if *b != nil {
		g.scratch.Add(-int64(len((*b).Bytes())))
		(*b).Release()
	}
	g.scratch.Add(int64(size))
	*b = nb
	return nb, nil
}

// actLayout returns where q, the scales and the sums of n tokens of kp
// bytes live in the activation buffer, and its size.
func actLayout(n, kp int) (scaleOff, sumOff, size int) {
	scaleOff = (n*kp + 15) &^ 15
	sumOff = scaleOff + 4*n
	return scaleOff, sumOff, sumOff + 4*n
}

// matParams encodes common.metal's MatParams.
func matParams(rows, n, kp, rowBytes int, wscale float32, zero uint32) []byte {
	b := make([]byte, 24)
	binary.LittleEndian.PutUint32(b[0:], uint32(rows))
	binary.LittleEndian.PutUint32(b[4:], uint32(n))
	binary.LittleEndian.PutUint32(b[8:], uint32(kp))
	binary.LittleEndian.PutUint32(b[12:], uint32(rowBytes))
	binary.LittleEndian.PutUint32(b[16:], math.Float32bits(wscale))
	binary.LittleEndian.PutUint32(b[20:], zero)
	return b
}

// productDispatch builds the launch of one product: its grid covers the
// rows (and tokens) with whole threadgroups; the kernels skip the tail.
func productDispatch(p product, n, kp int, act, out Buffer, outOff int) Dispatch {
	scaleOff, sumOff, _ := actLayout(n, kp)
	d := Dispatch{Kernel: p.f.kernel(n)}
	if n == 1 {
		per := mvSimds * mvRows
		d.Grid = [3]int{(p.rows + per - 1) / per, n, 1}
		d.Group = [3]int{threadsOf(d.Kernel), 1, 1}
	} else {
		per := mmSimds * mmRows
		d.Grid = [3]int{(p.rows + per - 1) / per, (n + mmTokens - 1) / mmTokens, 1}
		d.Group = [3]int{threadsOf(d.Kernel), 1, 1}
		d.Threadgroup = []int{mmTokens * mmKC}
	}
	scales := Binding{Index: 4, Buf: act, Offset: scaleOff, Len: 4 * n} // unread by ternary kernels
	if p.w.scales != nil {
		scales = Binding{Index: 4, Buf: p.w.scales, Len: 4 * p.rows}
	}
	d.Buffers = []Binding{
		{Index: 0, Buf: p.w.buf, Len: p.w.n},
		{Index: 1, Buf: act, Len: n * kp},
		{Index: 2, Buf: act, Offset: scaleOff, Len: 4 * n},
		{Index: 3, Buf: act, Offset: sumOff, Len: 4 * n},
		scales,
		{Index: 5, Buf: out, Offset: outOff, Len: 4 * n * p.rows, Write: true},
	}
	d.Bytes = []Bytes{{Index: 6, Data: matParams(p.rows, n, kp, p.rowBytes, p.wscale, p.f.zero())}}
	return d
}

// run stages a's activations, runs the products in one command buffer and
// copies their outputs.
func (g *GPU) run(a *kernels.Activations, ps []product) error {
	n, kp := a.N, a.Stride
	outs := 0
	for _, p := range ps {
		if p.rows*n > maxOffset/4-outs || n*kp > maxOffset {
			return fmt.Errorf("%w: %d tokens x %d rows exceed 32-bit offsets", ErrDeclined, n, p.rows)
		}
		outs += p.rows * n
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return ErrClosed
	}
	scaleOff, sumOff, actSize := actLayout(n, kp)
	act, err := g.ensure(&g.act, actSize)
	if err != nil {
		return err
	}
	out, err := g.ensure(&g.out, 4*outs)
	if err != nil {
		return err
	}
	ab := act.Bytes()
	copy(ab, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(a.Q))), n*kp))
	copy(ab[scaleOff:], floatBytes(a.Scale[:n]))
	copy(ab[sumOff:], int32Bytes(a.Sum[:n]))
	ds := make([]Dispatch, len(ps))
	off := 0
	for i, p := range ps {
		ds[i] = productDispatch(p, n, kp, act, out, off)
		off += 4 * p.rows * n
	}
	if err := g.submit(ds); err != nil {
		return err
	}
	ob := out.Bytes()
	off = 0
	for _, p := range ps {
		m := p.rows * n
		copy(p.y[:m], unsafe.Slice((*float32)(unsafe.Pointer(&ob[off])), m))
		off += 4 * m
	}
	g.products.Add(int64(len(ps)))
	return nil
}

func (g *GPU) submit(ds []Dispatch) error {
	p, err := g.b.Submit(ds)
	if err != nil {
		return fmt.Errorf("metal: submit: %w", err)
	}
	if err := p.Wait(); err != nil {
		return fmt.Errorf("metal: command buffer: %w", err)
	}
	g.dispatches.Add(int64(len(ds)))
	return nil
}

// Quantize quantizes x (a.N*a.K floats, token-major) into a like
// kernels.Engine.Quantize, bit for bit: tokens with an Inf or NaN, which the
// kernel flags, are quantised on the CPU.
func (g *GPU) Quantize(a *kernels.Activations, x []float32) error {
	if err := checkActivations(a); err != nil {
		return err
	}
	n, k, kp := a.N, a.K, a.Stride
	if len(x) != n*k {
		return fmt.Errorf("%w: activations %dx%d (stride %d) got %d floats, want N*K = %d*%d",
			kernels.ErrShape, n, k, kp, len(x), n, k)
	}
	if n == 0 {
		return nil
	}
	if n*kp > maxOffset || n*k > maxOffset/4 {
		return fmt.Errorf("%w: %d tokens of %d features exceed 32-bit offsets", ErrDeclined, n, k)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return ErrClosed
	}
	scaleOff, sumOff, size := actLayout(n, kp)
	badOff := size
	act, err := g.ensure(&g.act, badOff+4*n)
	if err != nil {
		return err
	}
	xb, err := g.ensure(&g.x, 4*n*k)
	if err != nil {
		return err
	}
	copy(xb.Bytes(), floatBytes(x))
	d := Dispatch{
		Kernel: kernelQuantize,
		Grid:   [3]int{n, 1, 1},
		Group:  [3]int{threadsOf(kernelQuantize), 1, 1},
		Buffers: []Binding{
			{Index: 0, Buf: xb, Len: 4 * n * k},
			{Index: 1, Buf: act, Len: n * kp, Write: true},
			{Index: 2, Buf: act, Offset: scaleOff, Len: 4 * n, Write: true},
			{Index: 3, Buf: act, Offset: sumOff, Len: 4 * n, Write: true},
			{Index: 4, Buf: act, Offset: badOff, Len: 4 * n, Write: true},
		},
		Bytes:       []Bytes{{Index: 5, Data: quantParams(n, k, kp)}},
		Threadgroup: []int{4 * qThreads / simdWidth},
	}
	if err := g.submit([]Dispatch{d}); err != nil {
		return err
	}
	ab := act.Bytes()
	copy(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(a.Q))), n*kp), ab[:n*kp])
	copy(floatBytes(a.Scale[:n]), ab[scaleOff:])
	copy(int32Bytes(a.Sum[:n]), ab[sumOff:])
	for t := range n {
		if binary.LittleEndian.Uint32(ab[badOff+4*t:]) != 0 {
			q := a.Q[t*kp : (t+1)*kp]
			clear(q[k:])
			a.Scale[t], a.Sum[t] = kernels.QuantizeRow(q[:k], x[t*k:(t+1)*k])
		}
	}
	g.products.Add(1)
	return nil
}

// quantParams encodes common.metal's QuantParams.
func quantParams(n, k, kp int) []byte {
	b := make([]byte, 12)
	binary.LittleEndian.PutUint32(b[0:], uint32(n))
	binary.LittleEndian.PutUint32(b[4:], uint32(k))
	binary.LittleEndian.PutUint32(b[8:], uint32(kp))
	return b
}
