package tokenizer

import "container/heap"

// bpe appends the tokens of word w (raw bytes) by applying merges lowest
// rank first, leftmost first among equal ranks, as the tokenizers library
// does. Bytes without a single-byte token are dropped (no unk token).
func (t *Tokenizer) bpe(w string, out []int) []int {
	syms := make([]symbol, 0, len(w))
	for i := 0; i < len(w); i++ {
		if id := t.byteID[w[i]]; id >= 0 {
			syms = append(syms, symbol{id: id, prev: int32(len(syms)) - 1, next: int32(len(syms)) + 1})
		}
	}
	return t.mergeSymbols(syms, out)
}

// mergeSymbols applies the merges to a word's initial symbols and appends
// the resulting ids.
func (t *Tokenizer) mergeSymbols(syms []symbol, out []int) []int {
	if len(syms) == 0 {
		return out
	}
	syms[len(syms)-1].next = -1
	if len(syms) <= 48 {
		t.mergeScan(syms)
	} else {
		t.mergeHeap(syms)
	}
	for i := int32(0); i >= 0; i = syms[i].next {
		out = append(out, int(syms[i].id))
	}
	return out
}

// symbol is a node of the doubly linked list of a word's current tokens.
type symbol struct {
	id         int32
	prev, next int32 // -1 at the ends
	dead       bool
}

// mergeScan repeatedly merges the best pair found by a linear scan; for short
// words this beats a heap.
func (t *Tokenizer) mergeScan(syms []symbol) {
	for {
		best, bestRank, bestID := int32(-1), int32(1<<31-1), int32(0)
		for i := int32(0); syms[i].next >= 0; i = syms[i].next {
			m, ok := t.merges[pairKey(syms[i].id, syms[syms[i].next].id)]
			if ok && m.rank < bestRank {
				best, bestRank, bestID = i, m.rank, m.id
			}
		}
		if best < 0 {
			return
		}
		mergeAt(syms, best, bestID)
	}
}

// mergeAt replaces symbols i and i.next by one symbol with id.
func mergeAt(syms []symbol, i, id int32) {
	j := syms[i].next
	syms[i].id = id
	syms[i].next = syms[j].next
	if syms[j].next >= 0 {
		syms[syms[j].next].prev = i
	}
	syms[j].dead = true
}

// candidate is a possible merge of the pair starting at symbol pos.
type candidate struct {
	rank, pos   int32
	left, right int32 // ids when queued; stale if the symbols changed
	id          int32
}

type candHeap []candidate

func (h candHeap) Len() int { return len(h) }
func (h candHeap) Less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].pos < h[j].pos
}
func (h candHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *candHeap) Push(x any)   { *h = append(*h, x.(candidate)) }
func (h *candHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// mergeHeap merges with a priority queue of candidate pairs: O(n log n) for
// long words. Symbol indices equal byte positions' order, so (rank, pos)
// ordering picks the same merges as mergeScan.
func (t *Tokenizer) mergeHeap(syms []symbol) {
	h := make(candHeap, 0, len(syms))
	push := func(i int32) {
		j := syms[i].next
		if j < 0 {
			return
		}
		if m, ok := t.merges[pairKey(syms[i].id, syms[j].id)]; ok {
			h = append(h, candidate{rank: m.rank, pos: i, left: syms[i].id, right: syms[j].id, id: m.id})
		}
	}
	for i := int32(0); i >= 0; i = syms[i].next {
		push(i)
	}
	heap.Init(&h)
	for h.Len() > 0 {
		c := heap.Pop(&h).(candidate)
		s := &syms[c.pos]
		if s.dead || s.id != c.left || s.next < 0 || syms[s.next].id != c.right {
			continue
		}
		mergeAt(syms, c.pos, c.id)
		if p := syms[c.pos].prev; p >= 0 {
			if m, ok := t.merges[pairKey(syms[p].id, c.id)]; ok {
				heap.Push(&h, candidate{rank: m.rank, pos: p, left: syms[p].id, right: c.id, id: m.id})
			}
		}
		if n := syms[c.pos].next; n >= 0 {
			if m, ok := t.merges[pairKey(c.id, syms[n].id)]; ok {
				heap.Push(&h, candidate{rank: m.rank, pos: c.pos, left: c.id, right: syms[n].id, id: m.id})
			}
		}
	}
}
