package constrained

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Vocab is a model's vocabulary as a byte trie in depth-first order, built
// once per tokenizer and shared (read-only) by every Matcher.
type Vocab struct {
	size  int
	nodes []tnode
	order []int32 // token IDs in trie order: a subtree's tokens are contiguous
	bytes [][]byte
}

type tnode struct {
	b          byte
	end        int32 // index after this node's subtree
	own        int32 // tokens ending here: order[tokStart : tokStart+own]
	tokStart   int32 // the subtree's tokens: order[tokStart:tokEnd]
	tokEnd     int32
	below      uint8 // longest token suffix below this node, bytes (capped)
	plainBelow bool  // every byte below is a plain string character
}

// plain reports whether b is a string character that needs no escape and
// is one byte: printable ASCII except '"' and '\'.
func plain(b byte) bool { return b >= 0x20 && b < 0x7f && b != '"' && b != '\\' }

// NewVocab builds the trie of tokens (indexed by token ID; nil or empty
// entries, e.g. special tokens, are never allowed by Mask).
func NewVocab(tokens [][]byte) *Vocab {
	type bnode struct {
		kids map[byte]*bnode
		ids  []int32
	}
	root := &bnode{}
	for id, t := range tokens {
		if len(t) == 0 {
			continue
		}
		cur := root
		for _, c := range t {
			if cur.kids == nil {
				cur.kids = map[byte]*bnode{}
			}
			nxt := cur.kids[c]
			if nxt == nil {
				nxt = &bnode{}
				cur.kids[c] = nxt
			}
			cur = nxt
		}
		cur.ids = append(cur.ids, int32(id))
	}
	v := &Vocab{size: len(tokens), bytes: tokens}
	var walk func(n *bnode, b byte) int32
	walk = func(n *bnode, b byte) int32 {
		i := int32(len(v.nodes))
		v.nodes = append(v.nodes, tnode{b: b, tokStart: int32(len(v.order)), own: int32(len(n.ids))})
		v.order = append(v.order, n.ids...)
		keys := make([]byte, 0, len(n.kids))
		for k := range n.kids {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		below, plainBelow := 0, true
		for _, k := range keys {
			c := walk(n.kids[k], k)
			cn := v.nodes[c]
			below = max(below, 1+int(cn.below))
			plainBelow = plainBelow && plain(k) && cn.plainBelow
		}
		nd := &v.nodes[i]
		nd.end, nd.tokEnd = int32(len(v.nodes)), int32(len(v.order))
		nd.below, nd.plainBelow = uint8(min(below, 255)), plainBelow
		return i
	}
	walk(root, 0)
	return v
}

// Size is the number of token IDs the vocabulary covers.
func (v *Vocab) Size() int { return v.size }

// Matcher follows one generation: Mask before each sampling step, Accept
// the sampled token after it. Not safe for concurrent use.
type Matcher struct {
	g     *Grammar
	v     *Vocab
	s     state
	bufs  []state // per trie depth
	tmp   state
	depth int // json_object nesting limit
}

// NewMatcher starts matching a document of g over v's tokens.
func (g *Grammar) NewMatcher(v *Vocab) *Matcher {
	return &Matcher{g: g, v: v, s: g.newState(), depth: g.depthLimit()}
}

// MaskWords is the length of the bitset Mask fills for v.
func (v *Vocab) MaskWords() int { return (v.size + 63) / 64 }

// Mask sets in allowed (MaskWords long; bit id%64 of word id/64) the
// tokens that keep the output a prefix of a valid document that can be
// completed in budget-1 more tokens after them (budget: the tokens left,
// this one included; at most one byte per token is assumed). End tokens
// are not covered: allow them when CanEnd. restricted reports whether the
// budget removed a token the grammar allows.
func (m *Matcher) Mask(allowed []uint64, budget int) (restricted bool) {
	clear(allowed)
	if len(m.v.nodes) == 0 || budget <= 0 {
		return false
	}
	if len(m.bufs) == 0 {
		m.bufs = make([]state, 258)
	}
	w := walker{m: m, allowed: allowed, limit: budget - 1}
	w.visit(0, 0, m.s)
	return w.restricted
}

type walker struct {
	m          *Matcher
	allowed    []uint64
	limit      int
	restricted bool
}

func (w *walker) set(id int32) { w.allowed[id>>6] |= 1 << (uint(id) & 63) }

func (w *walker) setRange(from, to int32) {
	for _, id := range w.m.v.order[from:to] {
		w.set(id)
	}
}

// visit walks the children of trie node i, whose prefix leads to state s.
func (w *walker) visit(i int32, depth int, s state) {
	v := w.m.v
	if depth+1 >= len(w.m.bufs) {
		return
	}
	for c := i + 1; c < v.nodes[i].end; c = v.nodes[c].end {
		cn := &v.nodes[c]
		next := s.step(cn.b, w.m.bufs[depth+1], w.m.depth)
		w.m.bufs[depth+1] = next
		if len(next) == 0 {
			continue
		}
		d := next.dist()
		if d <= w.limit && bulkPlain(next, cn) {
			w.setRange(cn.tokStart, cn.tokEnd)
			continue
		}
		if cn.own > 0 {
			if d <= w.limit {
				w.setRange(cn.tokStart, cn.tokStart+cn.own)
			} else {
				w.restricted = true
			}
		}
		if cn.end > c+1 {
			w.visit(c, depth+1, next)
			w.m.bufs[depth+1] = next // visit reused deeper buffers only
		}
	}
}

// bulkPlain reports whether every token below trie node n is valid from s
// without walking them: s is one thread inside a string body with room for
// the longest one, and they hold only plain characters (which only lower
// the distance to the end).
func bulkPlain(s state, n *tnode) bool {
	if len(s) != 1 || !n.plainBelow {
		return false
	}
	f := &s[0].f
	if f.ph != sBody {
		return false
	}
	return f.n.maxLen < 0 || f.n.maxLen-int(f.i) >= int(n.below)
}

// ErrRejected means Accept got a token the grammar does not allow.
var ErrRejected = errors.New("constrained: token not allowed by the grammar")

// Accept advances past token id's bytes.
func (m *Matcher) Accept(id int) error {
	if id < 0 || id >= len(m.v.bytes) || len(m.v.bytes[id]) == 0 {
		return fmt.Errorf("token %d: %w", id, ErrRejected)
	}
	return m.AcceptBytes(m.v.bytes[id])
}

// AcceptBytes advances past text.
func (m *Matcher) AcceptBytes(text []byte) error {
	s := slices.Clone(m.s)
	for _, b := range text {
		m.tmp = s.step(b, m.tmp, m.depth)
		if len(m.tmp) == 0 {
			return fmt.Errorf("byte %q: %w", b, ErrRejected)
		}
		s, m.tmp = m.tmp, s
	}
	m.s = slices.Clone(s)
	return nil
}

// CanEnd reports whether the output so far is a complete document (an end
// token may follow).
func (m *Matcher) CanEnd() bool { return m.s.accepting() }

// Done reports whether the document is complete and no byte may follow
// (generation should stop: a closed object, unlike a number that could
// take more digits).
func (m *Matcher) Done() bool {
	if !m.s.accepting() {
		return false
	}
	for b := 0; b < 256; b++ {
		if len(m.s.step(byte(b), m.tmp, m.depth)) > 0 {
			return false
		}
	}
	return true
}

// Remaining is the fewest bytes that complete the document.
func (m *Matcher) Remaining() int { return m.s.dist() }

// ApplyMask sets the logits of tokens not in allowed to -Inf; ids at or
// beyond the mask (e.g. padding rows) are masked too, end tokens are set
// allowed first by the caller.
func ApplyMask(logits []float32, allowed []uint64) {
	ninf := float32(math.Inf(-1))
	for w, word := range allowed {
		base := w * 64
		if base >= len(logits) {
			break
		}
		if word == ^uint64(0) {
			continue
		}
		end := min(base+64, len(logits))
		for i := base; i < end; i++ {
			if word&(1<<uint(i-base)) == 0 {
				logits[i] = ninf
			}
		}
	}
	for i := len(allowed) * 64; i < len(logits); i++ {
		logits[i] = ninf
	}
}

// Allow sets id in allowed.
func Allow(allowed []uint64, id int) {
	if id >= 0 && id>>6 < len(allowed) {
		allowed[id>>6] |= 1 << (uint(id) & 63)
	}
}
