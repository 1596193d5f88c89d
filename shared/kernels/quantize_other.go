//go:build !amd64

package kernels

func absMaxBits(x []float32) uint32 { return absMaxBitsGo(x) }

func quantizeScaled(q []int8, x []float32, scale float32) int32 {
	return quantizeScaledGo(q, x, scale)
}
