package model

// attention computes causal attention for the n tokens of layer li into
// scratch.att, reading each step's KV cache (fp16 read in place where the
// CPU has F16C, else widened once per step). Large calls spread (token,
// head) pairs, or (token, KV head) groups of four query heads, over the
// engine's pool.
func (m *Model) attention(li int, steps []Step, n int) {
	c, sc := m.cfg, &m.scratch
	kvd, hd := c.KVDim(), c.HeadDim
	if cap(sc.kvs) < len(steps) {
		sc.kvs = make([]kvView, len(steps))
	}
	sc.kvs = sc.kvs[:len(steps)]
	work := 0
	for si := range steps {
		s := steps[si].Seq
		end := s.n + len(steps[si].Tokens)
		work += len(steps[si].Tokens) * (s.n + len(steps[si].Tokens)/2 + 1)
		v := &sc.kvs[si]
		v.k16, v.v16 = nil, nil
		v.head = s.cap * hd
		if s.k16 == nil {
			v.k, v.v = s.k[li], s.v[li]
			continue
		}
		if m.fl.HalfRows(hd) { // read fp16 in place: no O(context) widening per layer
			v.k, v.v = nil, nil
			v.k16, v.v16 = s.k16[li], s.v16[li]
			continue
		}
		// Widen each head's first end positions, packed head after head.
		v.kbuf, v.vbuf = grow(v.kbuf, end*kvd), grow(v.vbuf, end*kvd)
		for g := range c.NumKVHeads {
			src, dst := g*v.head, g*end*hd
			m.fl.Widen(v.kbuf[dst:dst+end*hd], s.k16[li][src:src+end*hd])
			m.fl.Widen(v.vbuf[dst:dst+end*hd], s.v16[li][src:src+end*hd])
		}
		v.k, v.v, v.head = v.kbuf, v.vbuf, end*hd
	}
	// Four query heads per KV head, read in place from fp16: a unit is a
	// KV head's group, whose rows are widened once for its four heads.
	sc.group4 = m.kvType == KVFloat16 && c.NumHeads == 4*c.NumKVHeads && m.fl.HalfRows4(hd)
	units := n * c.NumHeads
	if sc.group4 {
		units = n * c.NumKVHeads
	}
	threads := 1
	if work*c.NumHeads*c.HeadDim >= 1<<16 {
		threads = min(m.eng.Threads(), units)
	}
	for len(sc.scores) < threads {
		sc.scores = append(sc.scores, nil)
	}
	if threads == 1 {
		m.attendUnits(0, 1, units)
		return
	}
	// Worker w takes units w, w+threads, ...: its own scores buffer, and
	// long and short prefixes interleaved for balance.
	m.eng.Parallel(threads, 1, func(lo, hi int) {
		for w := lo; w < hi; w++ {
			m.attendUnits(w, threads, units)
		}
	})
}

// kvView is one step's keys and values of the current layer, head-major
// (KV head g's positions start at g*head): float32 (k, v; widened into
// kbuf, vbuf from an fp16 cache) or fp16 read in place (k16, v16).
type kvView struct {
	k, v, kbuf, vbuf []float32
	k16, v16         []uint16
	head             int
}

// attendUnits runs units w, w+stride, ... where unit u is head u%NumHeads of
// token u/NumHeads: softmax(q.K^T * scale) V over the token's prefix (its
// last SlidingWindow positions on sliding layers).
func (m *Model) attendUnits(w, stride, units int) {
	c, sc := m.cfg, &m.scratch
	if sc.group4 {
		m.attendGroups(w, stride, units)
		return
	}
	hd, qd := c.HeadDim, c.QDim()
	group := c.NumHeads / c.NumKVHeads
	scale := c.AttnScale()
	window := m.window()
	for u := w; u < units; u += stride {
		t, h := u/c.NumHeads, u%c.NumHeads
		kv := &sc.kvs[sc.step[t]]
		n := sc.pos[t] + 1
		first := firstVisible(n, window)
		sc.scores[w] = grow(sc.scores[w], n-first)
		scores := sc.scores[w]
		off := (h/group)*kv.head + first*hd
		q := sc.q[t*qd+h*hd : t*qd+(h+1)*hd]
		if kv.k16 != nil {
			m.fl.DotRowsHalf(scores, q, kv.k16[off:], hd)
		} else {
			m.fl.DotRows(scores, q, kv.k[off:], hd)
		}
		m.fl.Softmax(scores, scale)
		if out := sc.att[t*qd+h*hd : t*qd+(h+1)*hd]; kv.v16 != nil {
			m.fl.AccumRowsHalf(out, scores, kv.v16[off:], hd)
		} else {
			m.fl.AccumRows(out, scores, kv.v[off:], hd)
		}
	}
}

// firstVisible returns the first key position a query at position n-1
// sees with a sliding window of window positions (0: all of them).
func firstVisible(n, window int) int {
	if window > 0 && n > window {
		return n - window
	}
	return 0
}

// window returns how many last positions the current layer attends to (0:
// all of them).
func (m *Model) window() int {
	if m.cfg.Sliding(m.scratch.li) {
		return m.cfg.SlidingWindow
	}
	return 0
}

// attendGroups is attendUnits when unit u is KV head u%NumKVHeads of token
// u/NumKVHeads with its four query heads (scratch.group4).
func (m *Model) attendGroups(w, stride, units int) {
	c, sc := m.cfg, &m.scratch
	hd, qd := c.HeadDim, c.QDim()
	scale := c.AttnScale()
	window := m.window()
	for u := w; u < units; u += stride {
		t, g := u/c.NumKVHeads, u%c.NumKVHeads
		kv := &sc.kvs[sc.step[t]]
		n := sc.pos[t] + 1
		first := firstVisible(n, window)
		l := n - first
		sc.scores[w] = grow(sc.scores[w], 4*l)
		scores := sc.scores[w][:4*l]
		off := g*kv.head + first*hd
		heads := t*qd + g*4*hd // the group's query heads, one after another
		m.fl.DotRowsHalf4(scores, sc.q[heads:heads+4*hd], kv.k16[off:], hd)
		for h := range 4 {
			m.fl.Softmax(scores[h*l:(h+1)*l], scale)
		}
		m.fl.AccumRowsHalf4(sc.att[heads:heads+4*hd], scores, kv.v16[off:], hd)
	}
}
