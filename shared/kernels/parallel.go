package kernels

import "fmt"

// Parallel runs fn over [0, n) split into contiguous ranges of at least grain
// items (grain < 1 counts as 1), on the engine's worker threads and the
// calling goroutine; it returns when every range is done. Each item belongs
// to exactly one range. Work too small to split, a one-thread engine, a nil
// engine or one after Close runs fn(0, n) inline. fn must not call Parallel
// or the products of the same engine (the workers would wait on themselves).
func (e *Engine) Parallel(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	grain = max(grain, 1)
	chunks := 1
	if e != nil && e.pool != nil {
		chunks = min(e.threads, n/grain)
	}
	if chunks <= 1 {
		fn(0, n)
		return
	}
	per := (n + chunks - 1) / chunks
	chunks = (n + per - 1) / per
	e.pool.do(chunks, e.threads-1, func(c int) { fn(c*per, min((c+1)*per, n)) })
}

// Quantize quantizes x (a.N*a.K floats, token-major) into a like
// Activations.Quantize, spreading the tokens over the engine's threads.
func (e *Engine) Quantize(a *Activations, x []float32) error {
	if a == nil {
		return fmt.Errorf("%w: nil activations", ErrShape)
	}
	if len(x) != a.N*a.K || len(a.Q) < a.N*a.Stride || len(a.Scale) < a.N || len(a.Sum) < a.N || a.Stride < a.K {
		return fmt.Errorf("%w: activations %dx%d (stride %d) got %d floats, want N*K = %d*%d",
			ErrShape, a.N, a.K, a.Stride, len(x), a.N, a.K)
	}
	// About 16K floats per range: SIMD quantisation takes a few microseconds
	// for that, the cost of handing a range to a worker.
	grain := (16 << 10) / max(a.K, 1)
	simd := hasAVX512Quant
	if e != nil && e.cls[Quantize] != nil {
		simd = e.cls[Quantize].quant512
	}
	if e == nil || e.threads == 1 || a.N < 2*grain {
		quantizeTokens(a, x, 0, a.N, simd)
		return nil
	}
	e.Parallel(a.N, grain, func(lo, hi int) { quantizeTokens(a, x, lo, hi, simd) })
	return nil
}

// quantizeTokens quantizes tokens [lo, hi) of x into a.
func quantizeTokens(a *Activations, x []float32, lo, hi int, simd bool) {
	for t := lo; t < hi; t++ {
		a.Scale[t], a.Sum[t] = quantizeRow(a.Q[t*a.Stride:t*a.Stride+a.K], x[t*a.K:(t+1)*a.K], simd)
	}
}
