package model

import "fmt"

// kvChunk is the KV cache growth unit in positions.
const kvChunk = 256

// Sequence is one token stream and its KV cache. A Sequence belongs to its
// caller: it must not be used by two Forward calls at once.
type Sequence struct {
	m     *Model
	epoch uint64 // Model.epoch of the last Forward that checked it
	n     int    // positions in the cache
	cap   int    // positions allocated
	// Per layer, head-major [NumKVHeads][cap][HeadDim]: attention reads
	// one KV head's positions as one contiguous run (the hardware
	// prefetchers follow it; position-major rows left 80% of the head's
	// bytes between two reads). f32 or f16 by the model's KVType.
	k, v     [][]float32
	k16, v16 [][]uint16
}

// NewSequence returns an empty sequence for m.
func (m *Model) NewSequence() *Sequence {
	s := &Sequence{m: m}
	if m.kvType == KVFloat16 {
		s.k16 = make([][]uint16, m.cfg.NumLayers)
		s.v16 = make([][]uint16, m.cfg.NumLayers)
	} else {
		s.k = make([][]float32, m.cfg.NumLayers)
		s.v = make([][]float32, m.cfg.NumLayers)
	}
	return s
}

// Len returns the number of tokens processed so far (the next position).
func (s *Sequence) Len() int {
	if s == nil {
		return 0
	}
	return s.n
}

// Reset empties the sequence, keeping its cache memory.
func (s *Sequence) Reset() {
	if s != nil {
		s.n = 0
	}
}

// Truncate keeps the first n positions (to reuse a common prefix).
func (s *Sequence) Truncate(n int) error {
	if s == nil {
		return fmt.Errorf("%w: truncate of a nil sequence", ErrInput)
	}
	if n < 0 || n > s.n {
		return fmt.Errorf("%w: truncate to %d positions, sequence has %d", ErrInput, n, s.n)
	}
	s.n = n
	return nil
}

// CacheBytes returns the memory held by the KV cache.
func (s *Sequence) CacheBytes() int {
	if s == nil {
		return 0
	}
	return s.cap * s.CacheBytesPerPosition()
}

// CacheBytesPerPosition returns the KV cache bytes of one position: what
// attention reads per cached token at every decode step.
func (s *Sequence) CacheBytesPerPosition() int {
	if s == nil {
		return 0
	}
	per := 4
	if s.m.kvType == KVFloat16 {
		per = 2
	}
	return 2 * s.m.cfg.NumLayers * s.m.cfg.KVDim() * per
}

// reserve makes room for n positions in total (n <= MaxPositions).
func (s *Sequence) reserve(n int) {
	if n <= s.cap {
		return
	}
	c := max(n, 2*s.cap)
	c = (c + kvChunk - 1) / kvChunk * kvChunk
	c = min(c, s.m.cfg.MaxPositions)
	heads, hd := s.m.cfg.NumKVHeads, s.m.cfg.HeadDim
	for l := 0; l < s.m.cfg.NumLayers; l++ {
		if s.k16 != nil {
			s.k16[l] = regrow(s.k16[l], heads, hd, s.cap, s.n, c)
			s.v16[l] = regrow(s.v16[l], heads, hd, s.cap, s.n, c)
		} else {
			s.k[l] = regrow(s.k[l], heads, hd, s.cap, s.n, c)
			s.v[l] = regrow(s.v[l], heads, hd, s.cap, s.n, c)
		}
	}
	s.cap = c
}

// regrow returns a head-major buffer of heads x n positions x hd holding
// the first keep positions of each head of old (heads x oldCap x hd).
func regrow[T any](old []T, heads, hd, oldCap, keep, n int) []T {
	b := make([]T, heads*n*hd)
	for g := range heads {
		copy(b[g*n*hd:g*n*hd+keep*hd], old[g*oldCap*hd:g*oldCap*hd+keep*hd])
	}
	return b
}

// store writes the key and value (KVDim floats, head after head) of one
// position of layer l.
func (s *Sequence) store(l, pos int, k, v []float32) {
	hd := s.m.cfg.HeadDim
	for g := range len(k) / hd {
		off := (g*s.cap + pos) * hd
		kh, vh := k[g*hd:(g+1)*hd], v[g*hd:(g+1)*hd]
		if s.k16 != nil {
			s.m.fl.Narrow(s.k16[l][off:off+hd], kh)
			s.m.fl.Narrow(s.v16[l][off:off+hd], vh)
			continue
		}
		copy(s.k[l][off:off+hd], kh)
		copy(s.v[l][off:off+hd], vh)
	}
}
