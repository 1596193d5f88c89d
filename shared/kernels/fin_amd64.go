package kernels

// The finishers of the 4 x 4 and 4 x 2 tiles of batched products, in SSE2 (every
// amd64 CPU): the scalar loops they replace converted, scaled and stored
// one float at a time, with a bounds check each, about 6% of a 16-token
// decode step. Same operations in the same order, so the same bits; the
// Go loops remain for the other tile shapes and are their twins in tests.

// finTern4x4 stores y[j*rows+i] = float32(d[i*4+j]-s[j]) * f[j] for i, j < 4.
//
//go:noescape
func finTern4x4(y *float32, rows int, d *int32, s *int32, f *float32)

// finScaled4x4 stores y[j*rows+i] = float32(d[i*4+j]-s[j]) * (ws[i] / as[j]) for i, j < 4.
//
//go:noescape
func finScaled4x4(y *float32, rows int, d *int32, s *int32, ws *float32, as *float32)

// finScaled4x2 stores y[j*rows+i] = float32(d[i*2+j]-s[j]) * (ws[i] / as[j]) for i < 4, j < 2.
//
//go:noescape
func finScaled4x2(y *float32, rows int, d *int32, s *int32, ws *float32, as *float32)

// finTern4x2 stores y[j*rows+i] = float32(d[i*2+j]-s[j]) * f[j] for i < 4, j < 2.
//
//go:noescape
func finTern4x2(y *float32, rows int, d *int32, s *int32, f *float32)
