//go:build !amd64

package kernels

// hasAVX512Quant is false: the quantisation loops are Go off amd64.
const hasAVX512Quant = false

func absMaxBits(x []float32, _ bool) uint32 { return absMaxBitsGo(x) }

func quantizeScaled(q []int8, x []float32, scale float32, _ bool) int32 {
	return quantizeScaledGo(q, x, scale)
}
