package ternary

import (
	"encoding/binary"
	"math"

	"github.com/bitnet-mesh/bitnet-mesh/shared/half"
)

// Straight transcriptions of the float algorithms of llama.cpp's ggml-quants.c
// (quantize_row_tq{1,2}_0_ref, dequantize_row_tq{1,2}_0), used as oracles.

func lroundf(v float32) int { return int(math.Round(float64(v))) } // half away from zero, like C

func blockScale(x []float32) (uint16, float32) {
	var amax float32
	for _, v := range x[:BlockSize] {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	id := float32(0)
	if amax != 0 {
		id = 1 / amax
	}
	return half.ToFloat16(amax), id
}

func refQuantizeTQ2(x []float32) []byte {
	var out []byte
	for len(x) > 0 {
		var y [TQ2_0Bytes]byte
		d, id := blockScale(x)
		for j := 0; j < 64; j += 32 {
			for m := 0; m < 32; m++ {
				var q byte
				for n := 0; n < 4; n++ {
					xi := lroundf(x[m+n*32]*id) + 1
					q += byte(xi&3) << (2 * n)
				}
				y[j+m] = q
			}
			x = x[128:]
		}
		binary.LittleEndian.PutUint16(y[64:], d)
		out = append(out, y[:]...)
	}
	return out
}

func refDequantTQ2(b []byte) []float32 {
	var y []float32
	for ; len(b) > 0; b = b[TQ2_0Bytes:] {
		d := half.FromFloat16(binary.LittleEndian.Uint16(b[64:]))
		for j := 0; j < 64; j += 32 {
			for l := 0; l < 4; l++ {
				for m := 0; m < 32; m++ {
					q := int8(b[j+m]>>(l*2)&3) - 1
					y = append(y, float32(q)*d)
				}
			}
		}
	}
	return y
}

func refQuantizeTQ1(x []float32) []byte {
	var out []byte
	for len(x) > 0 {
		var y [TQ1_0Bytes]byte
		d, id := blockScale(x)
		for m := 0; m < 32; m++ {
			var q byte
			for n := 0; n < 5; n++ {
				q = q*3 + byte(lroundf(x[m+n*32]*id)+1)
			}
			y[m] = byte((uint16(q)*256 + 242) / 243)
		}
		x = x[160:]
		for m := 0; m < 16; m++ {
			var q byte
			for n := 0; n < 5; n++ {
				q = q*3 + byte(lroundf(x[m+n*16]*id)+1)
			}
			y[32+m] = byte((uint16(q)*256 + 242) / 243)
		}
		x = x[80:]
		for j := 0; j < 4; j++ {
			var q byte
			for m := 0; m < 4; m++ {
				q = q*3 + byte(lroundf(x[j+m*4]*id)+1)
			}
			q *= 3
			y[48+j] = byte((uint16(q)*256 + 242) / 243)
		}
		x = x[16:]
		binary.LittleEndian.PutUint16(y[52:], d)
		out = append(out, y[:]...)
	}
	return out
}

func refDequantTQ1(b []byte) []float32 {
	pow3 := [6]byte{1, 3, 9, 27, 81, 243}
	trit := func(v byte, n int) float32 {
		q := v * pow3[n]
		return float32(int16(uint16(q)*3>>8) - 1)
	}
	var y []float32
	for ; len(b) > 0; b = b[TQ1_0Bytes:] {
		d := half.FromFloat16(binary.LittleEndian.Uint16(b[52:]))
		for n := 0; n < 5; n++ {
			for m := 0; m < 32; m++ {
				y = append(y, trit(b[m], n)*d)
			}
		}
		for n := 0; n < 5; n++ {
			for m := 0; m < 16; m++ {
				y = append(y, trit(b[32+m], n)*d)
			}
		}
		for n := 0; n < 4; n++ {
			for j := 0; j < 4; j++ {
				y = append(y, trit(b[48+j], n)*d)
			}
		}
	}
	return y
}

// dense returns T*Scale of m, row-major, in fp32.
func dense(m *Matrix) []float32 {
	t := m.Unpack()
	x := make([]float32, len(t))
	for i, v := range t {
		x[i] = float32(v) * m.Scale
	}
	return x
}
