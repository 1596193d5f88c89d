package constrained

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Vocab is a model's vocabulary as byte tries in depth-first order,
// built once per tokenizer and shared (read-only) by every Matcher.
//
// Inside a string body most tokens are plain text (printable ASCII but
// '"' and '\', and whole UTF-8 characters): those are valid there as a
// block, so they sit in a bitset (text) and only the others are walked
// (rest).
type Vocab struct {
	size         int
	full, rest   trie
	text         []uint64 // the text tokens
	textChars    []uint16 // characters of each text token
	maxTextChars int
	bytes        [][]byte
}

type trie struct {
	nodes []tnode
	order []int32 // token IDs in trie order: a subtree's tokens are contiguous
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

// textChars returns the characters of t when it is plain text (see Vocab),
// else -1.
func textChars(t []byte) int {
	n := 0
	for i := 0; i < len(t); {
		c := t[i]
		if plain(c) {
			i, n = i+1, n+1
			continue
		}
		var need int
		lo, hi := byte(0x80), byte(0xBF)
		switch {
		case c >= 0xC2 && c <= 0xDF:
			need = 1
		case c >= 0xE0 && c <= 0xEF:
			need = 2
			if c == 0xE0 {
				lo = 0xA0
			} else if c == 0xED {
				hi = 0x9F
			}
		case c >= 0xF0 && c <= 0xF4:
			need = 3
			if c == 0xF0 {
				lo = 0x90
			} else if c == 0xF4 {
				hi = 0x8F
			}
		default:
			return -1
		}
		if i+need >= len(t) {
			return -1 // a character cut by the token's end
		}
		for k := 1; k <= need; k++ {
			b := t[i+k]
			if b < lo || b > hi {
				return -1
			}
			lo, hi = 0x80, 0xBF
		}
		i, n = i+need+1, n+1
	}
	return n
}

// NewVocab builds the tries of tokens (indexed by token ID; nil or empty
// entries, e.g. special tokens, are never allowed by Mask).
func NewVocab(tokens [][]byte) *Vocab {
	v := &Vocab{size: len(tokens), bytes: tokens, text: make([]uint64, (len(tokens)+63)/64), textChars: make([]uint16, len(tokens))}
	rest := make([][]byte, len(tokens))
	for id, t := range tokens {
		if len(t) == 0 {
			continue
		}
		if n := textChars(t); n >= 0 && n < 1<<16 {
			v.text[id>>6] |= 1 << (uint(id) & 63)
			v.textChars[id] = uint16(n)
			v.maxTextChars = max(v.maxTextChars, n)
		} else {
			rest[id] = t
		}
	}
	v.full = buildTrie(tokens)
	v.rest = buildTrie(rest)
	return v
}

// buildTrie lays out the trie of tokens in depth-first order: sorting the
// tokens makes every subtree a run of them.
func buildTrie(tokens [][]byte) trie {
	ids := make([]int32, 0, len(tokens))
	for id, t := range tokens {
		if len(t) > 0 {
			ids = append(ids, int32(id))
		}
	}
	slices.SortFunc(ids, func(a, b int32) int {
		if c := bytes.Compare(tokens[a], tokens[b]); c != 0 {
			return c
		}
		return int(a - b)
	})
	tr := trie{order: ids}
	// build(lo, hi, depth, b): the node for the tokens ids[lo:hi], which
	// share their first depth bytes (the last being b).
	var build func(lo, hi, depth int, b byte) int32
	build = func(lo, hi, depth int, b byte) int32 {
		i := int32(len(tr.nodes))
		tr.nodes = append(tr.nodes, tnode{b: b, tokStart: int32(lo), tokEnd: int32(hi)})
		own := lo
		for own < hi && len(tokens[ids[own]]) == depth {
			own++
		}
		below, plainBelow := 0, true
		for j := own; j < hi; {
			c := tokens[ids[j]][depth]
			k := j
			for k < hi && tokens[ids[k]][depth] == c {
				k++
			}
			ci := build(j, k, depth+1, c)
			cn := tr.nodes[ci]
			below = max(below, 1+int(cn.below))
			plainBelow = plainBelow && plain(c) && cn.plainBelow
			j = k
		}
		nd := &tr.nodes[i]
		nd.own, nd.end = int32(own-lo), int32(len(tr.nodes))
		nd.below, nd.plainBelow = uint8(min(below, 255)), plainBelow
		return i
	}
	build(0, len(ids), 0, 0)
	return tr
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
// budget removed a token the grammar allows. When the budget is too small
// for any complete document, the grammar alone decides (and restricted is
// true): the output is then cut by the limit.
func (m *Matcher) Mask(allowed []uint64, budget int) (restricted bool) {
	clear(allowed)
	if budget <= 0 {
		return false
	}
	if len(m.bufs) == 0 {
		m.bufs = make([]state, 258)
	}
	w := walker{m: m, t: &m.v.full, allowed: allowed, limit: budget - 1}
	if len(m.s) == 1 && m.s[0].f.ph == sBody && m.s.dist() <= w.limit {
		// In a string body every text token is valid (and brings the end
		// no further): set them as a block, walk only the rest.
		f := &m.s[0].f
		room := f.n.maxLen - int(f.i)
		if f.n.maxLen < 0 || room >= m.v.maxTextChars {
			copy(allowed, m.v.text)
		} else {
			for id, n := range m.v.textChars {
				if n > 0 && int(n) <= room && m.v.text[id>>6]&(1<<(uint(id)&63)) != 0 {
					allowed[id>>6] |= 1 << (uint(id) & 63)
				}
			}
		}
		w.t = &m.v.rest
	}
	if len(w.t.nodes) > 0 {
		w.visit(0, 0, m.s)
	}
	if w.restricted && !m.s.accepting() && allZero(allowed) {
		// The budget cannot close the document (max_tokens below its
		// shortest form): follow the grammar alone; the output will be cut
		// by the limit.
		m.Mask(allowed, infBytes)
		return true
	}
	return w.restricted
}

func allZero(words []uint64) bool {
	for _, w := range words {
		if w != 0 {
			return false
		}
	}
	return true
}

type walker struct {
	m          *Matcher
	t          *trie
	allowed    []uint64
	limit      int
	restricted bool
}

func (w *walker) set(id int32) { w.allowed[id>>6] |= 1 << (uint(id) & 63) }

func (w *walker) setRange(from, to int32) {
	for _, id := range w.t.order[from:to] {
		w.set(id)
	}
}

// visit walks the children of trie node i, whose prefix leads to state s.
func (w *walker) visit(i int32, depth int, s state) {
	nodes := w.t.nodes
	if depth+1 >= len(w.m.bufs) {
		return
	}
	for c := i + 1; c < nodes[i].end; c = nodes[c].end {
		cn := &nodes[c]
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

// Tokens is what VocabOf reads of a tokenizer (*tokenizer.Tokenizer has
// these methods).
type Tokens interface {
	Token(id int) (string, bool)
	IsSpecial(id int) bool
}

// VocabOf builds the vocabulary of the first size token IDs of tok (a
// model's vocab_size may exceed the tokenizer's: those rows are never
// allowed), leaving special tokens out.
func VocabOf(tok Tokens, size int) *Vocab {
	toks := make([][]byte, size)
	for id := range toks {
		if tok.IsSpecial(id) {
			continue
		}
		if s, ok := tok.Token(id); ok {
			toks[id] = []byte(s)
		}
	}
	return NewVocab(toks)
}
