package constrained

import "fmt"

type phase uint8

const (
	phStart phase = iota // a value's first byte

	// root
	rDone

	// object with declared properties: i is the next property index
	oAfterOpen
	oKey // matching a key: i the lowest candidate, j the bytes matched
	oColon
	oAfterColon // i the property whose value comes
	oAfterValue
	oAfterComma

	// object with any keys (the key is a pushed string frame)
	mAfterOpen
	mColon
	mAfterColon
	mAfterValue
	mAfterComma

	// array: i the items begun
	aAfterOpen
	aAfterItem
	aAfterComma

	// string: i the characters so far
	sBody
	sEscape
	sHex  // j hex digits read; lo = 1 when the first was d/D
	sCont // j continuation bytes left; lo..hi the next byte's range

	// number: j the digits of the current part
	nMinus
	nZero
	nInt
	nDot
	nFrac
	nExp
	nExpSign
	nExpDigits

	// literal: i the trie node
	lBody
)

// frame is one open value. Values, not pointers: stepping a byte copies the
// top frame and allocates only when a value opens inside another.
type frame struct {
	n      *node
	ph     phase
	ws     uint8
	lo, hi byte
	i, j   int32
}

// stack holds the frames below the top.
type stack struct {
	f     frame
	up    *stack
	rest  int // fewest bytes to complete f and everything below
	depth int
}

type thread struct {
	f  frame
	up *stack
}

var (
	anyArray = &node{kind: kArray, maxItems: -1, min: 2}
	anyMap   = &node{kind: kMap, min: 2}
	anyLit   = &node{kind: kLiteral, lits: newLitTrie([][]byte{[]byte("true"), []byte("false"), []byte("null")}), min: 4}
)

func isWS(b byte) bool { return b == ' ' || b == '\n' || b == '\t' || b == '\r' }

func (t thread) depth() int {
	if t.up == nil {
		return 0
	}
	return t.up.depth + 1
}

// push opens a value of n above t (whose frame is already in its
// after-value phase) and appends the resulting threads (a union opens one
// per alternative) to out.
func push(t thread, n *node, out []thread) []thread {
	up := &stack{f: t.f, up: t.up, depth: t.depth()}
	up.rest = frameRem(&t.f)
	if t.up != nil {
		up.rest = sat(up.rest, t.up.rest)
	}
	return open(up, n, out, 0)
}

func open(up *stack, n *node, out []thread, guard int) []thread {
	if n.kind == kUnion {
		if guard > 64 {
			return out
		}
		for _, a := range n.alts {
			out = open(up, a, out, guard+1)
		}
		return out
	}
	return append(out, thread{f: frame{n: n}, up: up})
}

func pop(t thread) thread { return thread{f: t.up.f, up: t.up.up} }

// endable reports whether the top frame may end here (numbers and
// literals end when the next byte is not theirs).
func endable(f *frame) bool {
	switch f.ph {
	case nZero, nInt, nFrac, nExpDigits:
		return true
	case lBody:
		return f.n.lits.nodes[f.i].terminal
	}
	return false
}

// accepting reports whether the document is complete in t.
func accepting(t thread) bool {
	for {
		if t.up == nil {
			return t.f.ph == rDone
		}
		if !endable(&t.f) {
			return false
		}
		t = pop(t)
	}
}

// dist is the fewest bytes that complete the document from t.
func dist(t thread) int {
	d := frameRem(&t.f)
	if t.up != nil {
		d = sat(d, t.up.rest)
	}
	return d
}

// frameRem is the fewest bytes that complete frame f (not those below).
func frameRem(f *frame) int {
	n := f.n
	switch f.ph {
	case phStart:
		if _, ok := rootOf(n); ok {
			return n.items.min
		}
		return n.min
	case rDone:
		return 0
	case oAfterOpen:
		if n.first[0] == len(n.props) {
			return 1
		}
		return n.tail[0] - 1 // no comma before the first property
	case oKey:
		best := infBytes
		for c := int(f.i); c < len(n.props) && c <= n.first[f.i]; c++ {
			if keyAlive(n, int(f.i), c, int(f.j)) {
				p := n.props[c]
				best = min(best, sat(len(p.key)-int(f.j)+1+p.val.min, n.tail[c+1]))
			}
		}
		return best
	case oColon:
		p := n.props[f.i]
		return sat(1+p.val.min, n.tail[f.i+1])
	case oAfterColon:
		return sat(n.props[f.i].val.min, n.tail[f.i+1])
	case oAfterValue:
		return n.tail[f.i]
	case oAfterComma:
		best := infBytes
		for c := int(f.i); c < len(n.props) && c <= n.first[f.i]; c++ {
			p := n.props[c]
			best = min(best, sat(len(p.key)+1+p.val.min, n.tail[c+1]))
		}
		return best
	case mAfterOpen, mAfterValue:
		return 1
	case mColon:
		return sat(2, minOf(n.items))
	case mAfterColon:
		return sat(1, minOf(n.items))
	case mAfterComma:
		return sat(4, minOf(n.items)) // "":v}
	case aAfterOpen:
		if n.minItems == 0 {
			return 1
		}
		return sat(n.minItems*minOf(n.items)+n.minItems-1, 1)
	case aAfterItem:
		left := max(n.minItems-int(f.i), 0)
		return sat(left*(1+minOf(n.items)), 1)
	case aAfterComma: // an item must follow
		left := max(n.minItems-int(f.i)-1, 0)
		return sat(minOf(n.items)+left*(1+minOf(n.items)), 1)
	case sBody:
		return max(n.minLen-int(f.i), 0) + 1
	case sEscape:
		return 1 + max(n.minLen-int(f.i), 0) + 1
	case sHex:
		return 4 - int(f.j) + max(n.minLen-int(f.i), 0) + 1
	case sCont:
		return int(f.j) + max(n.minLen-int(f.i), 0) + 1
	case nMinus, nDot, nExp, nExpSign:
		return 1
	case nZero, nInt, nFrac, nExpDigits:
		return 0
	case lBody:
		return n.lits.nodes[f.i].toEnd
	}
	return infBytes
}

// keyAlive reports whether property c's key starts with the j bytes matched
// so far, which are those of the lowest alive candidate lo.
func keyAlive(n *node, lo, c, j int) bool {
	k, ref := n.props[c].key, n.props[lo].key
	return len(k) >= j && string(k[:j]) == string(ref[:j])
}

// rootOf reports whether n is the root marker; the real root is n.items.
func rootOf(n *node) (*node, bool) {
	if n.kind == kAny && n.items != nil && n.props == nil && n.lits == nil && n.alts == nil && n.minItems == -2 {
		return n.items, true
	}
	return nil, false
}

// step feeds byte b to t, appending the threads that survive to out.
func step(t thread, b byte, out []thread, anyDepth int) []thread {
	f := t.f
	n := f.n
	switch f.ph {
	case phStart:
		if root, ok := rootOf(n); ok {
			t.f.ph = rDone
			var buf [8]thread
			for _, c := range push(t, root, buf[:0]) {
				out = step(c, b, out, anyDepth)
			}
			return out
		}
		return stepStart(t, b, out, anyDepth)
	case rDone:
		return out
	case oAfterOpen, oAfterComma:
		if isWS(b) {
			return wsStep(t, out)
		}
		if b == '"' {
			lo := int(f.i)
			if lo >= len(n.props) {
				return out
			}
			t.f.ph, t.f.j, t.f.ws = oKey, 1, 0
			return append(out, t)
		}
		if b == '}' && f.ph == oAfterOpen && n.first[0] == len(n.props) {
			return appendPop(t, out)
		}
		return out
	case oKey:
		lo, j := int(f.i), int(f.j)
		last := n.first[lo] // the first required property: no candidate after it
		for c := lo; c < len(n.props) && c <= last; c++ {
			k := n.props[c].key
			if keyAlive(n, lo, c, j) && j < len(k) && k[j] == b {
				t.f.i, t.f.j = int32(c), int32(j+1)
				if j+1 == len(k) {
					t.f.ph = oColon
				}
				return append(out, t)
			}
		}
		return out
	case oColon:
		if isWS(b) {
			return wsStep(t, out)
		}
		if b == ':' {
			t.f.ph, t.f.ws = oAfterColon, 0
			return append(out, t)
		}
		return out
	case oAfterColon:
		if isWS(b) {
			return wsStep(t, out)
		}
		p := n.props[f.i]
		t.f.ph, t.f.ws, t.f.i = oAfterValue, 0, f.i+1
		return pushStep(t, p.val, b, out, anyDepth)
	case oAfterValue:
		if isWS(b) {
			return wsStep(t, out)
		}
		switch b {
		case ',':
			if int(f.i) < len(n.props) {
				t.f.ph, t.f.ws = oAfterComma, 0
				return append(out, t)
			}
		case '}':
			if n.first[f.i] == len(n.props) {
				return appendPop(t, out)
			}
		}
		return out
	case mAfterOpen, mAfterComma:
		if isWS(b) {
			return wsStep(t, out)
		}
		if b == '"' {
			t.f.ph, t.f.ws = mColon, 0
			return pushStep(t, stringNode, b, out, anyDepth)
		}
		if b == '}' && f.ph == mAfterOpen {
			return appendPop(t, out)
		}
		return out
	case mColon:
		if isWS(b) {
			return wsStep(t, out)
		}
		if b == ':' {
			t.f.ph, t.f.ws = mAfterColon, 0
			return append(out, t)
		}
		return out
	case mAfterColon:
		if isWS(b) {
			return wsStep(t, out)
		}
		t.f.ph, t.f.ws = mAfterValue, 0
		v := n.items
		if v == nil {
			v = anyNode
		}
		return pushStep(t, v, b, out, anyDepth)
	case mAfterValue:
		if isWS(b) {
			return wsStep(t, out)
		}
		switch b {
		case ',':
			t.f.ph, t.f.ws = mAfterComma, 0
			return append(out, t)
		case '}':
			return appendPop(t, out)
		}
		return out
	case aAfterOpen, aAfterComma:
		if isWS(b) {
			return wsStep(t, out)
		}
		if b == ']' && f.ph == aAfterOpen && n.minItems == 0 {
			return appendPop(t, out)
		}
		if n.maxItems >= 0 && int(f.i) >= n.maxItems {
			return out
		}
		t.f.ph, t.f.ws, t.f.i = aAfterItem, 0, f.i+1
		v := n.items
		if v == nil {
			v = anyNode
		}
		return pushStep(t, v, b, out, anyDepth)
	case aAfterItem:
		if isWS(b) {
			return wsStep(t, out)
		}
		switch b {
		case ',':
			if n.maxItems < 0 || int(f.i) < n.maxItems {
				t.f.ph, t.f.ws = aAfterComma, 0
				return append(out, t)
			}
		case ']':
			if int(f.i) >= n.minItems {
				return appendPop(t, out)
			}
		}
		return out
	case sBody:
		switch {
		case b == '"':
			if int(f.i) >= n.minLen {
				return appendPop(t, out)
			}
			return out
		case n.maxLen >= 0 && int(f.i) >= n.maxLen:
			return out
		case b == '\\':
			t.f.ph, t.f.i = sEscape, f.i+1
		case b < 0x20:
			return out
		case b < 0x80:
			t.f.i++
		case b >= 0xC2 && b <= 0xDF:
			t.f.ph, t.f.i, t.f.j, t.f.lo, t.f.hi = sCont, f.i+1, 1, 0x80, 0xBF
		case b >= 0xE0 && b <= 0xEF:
			t.f.ph, t.f.i, t.f.j, t.f.lo, t.f.hi = sCont, f.i+1, 2, 0x80, 0xBF
			if b == 0xE0 {
				t.f.lo = 0xA0
			} else if b == 0xED {
				t.f.hi = 0x9F
			}
		case b >= 0xF0 && b <= 0xF4:
			t.f.ph, t.f.i, t.f.j, t.f.lo, t.f.hi = sCont, f.i+1, 3, 0x80, 0xBF
			if b == 0xF0 {
				t.f.lo = 0x90
			} else if b == 0xF4 {
				t.f.hi = 0x8F
			}
		default:
			return out
		}
		return append(out, t)
	case sEscape:
		switch b {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			t.f.ph = sBody
		case 'u':
			t.f.ph, t.f.j, t.f.lo = sHex, 0, 0
		default:
			return out
		}
		return append(out, t)
	case sHex:
		if !isHex(b) {
			return out
		}
		switch {
		case f.j == 0 && (b == 'd' || b == 'D'):
			t.f.lo = 1
		case f.j == 1 && f.lo == 1 && !(b >= '0' && b <= '7'): // D800-DFFF: surrogates
			return out
		}
		t.f.j++
		if t.f.j == 4 {
			t.f.ph = sBody
		}
		return append(out, t)
	case sCont:
		if b < f.lo || b > f.hi {
			return out
		}
		t.f.lo, t.f.hi = 0x80, 0xBF
		t.f.j--
		if t.f.j == 0 {
			t.f.ph = sBody
		}
		return append(out, t)
	case nMinus:
		switch {
		case b == '0':
			t.f.ph, t.f.j = nZero, 1
		case b >= '1' && b <= '9':
			t.f.ph, t.f.j = nInt, 1
		default:
			return out
		}
		return append(out, t)
	case nZero, nInt:
		switch {
		case f.ph == nInt && b >= '0' && b <= '9':
			if f.j >= maxIntDigits {
				return out
			}
			t.f.j++
			return append(out, t)
		case b == '.' && n.kind == kNumber:
			t.f.ph, t.f.j = nDot, 0
			return append(out, t)
		case (b == 'e' || b == 'E') && n.kind == kNumber:
			t.f.ph, t.f.j = nExp, 0
			return append(out, t)
		}
		return endStep(t, b, out, anyDepth)
	case nDot, nFrac:
		if b >= '0' && b <= '9' {
			if f.j >= maxFracDigits {
				return out
			}
			t.f.ph, t.f.j = nFrac, f.j+1
			return append(out, t)
		}
		if f.ph == nFrac {
			if b == 'e' || b == 'E' {
				t.f.ph, t.f.j = nExp, 0
				return append(out, t)
			}
			return endStep(t, b, out, anyDepth)
		}
		return out
	case nExp, nExpSign, nExpDigits:
		switch {
		case f.ph == nExp && (b == '+' || b == '-'):
			t.f.ph = nExpSign
			return append(out, t)
		case b >= '0' && b <= '9':
			if f.j >= maxExpDigits {
				return out
			}
			t.f.ph, t.f.j = nExpDigits, f.j+1
			return append(out, t)
		case f.ph == nExpDigits:
			return endStep(t, b, out, anyDepth)
		}
		return out
	case lBody:
		if c := n.lits.child(f.i, b); c >= 0 {
			t.f.i = c
			if len(n.lits.nodes[c].next) == 0 { // complete, nothing can follow
				return appendPop(t, out)
			}
			return append(out, t)
		}
		if n.lits.nodes[f.i].terminal {
			return endStep(t, b, out, anyDepth)
		}
		return out
	}
	return out
}

func isHex(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F'
}

// stepStart feeds a value's first byte.
func stepStart(t thread, b byte, out []thread, anyDepth int) []thread {
	n := t.f.n
	switch n.kind {
	case kAny:
		switch {
		case b == '{':
			if t.depth() >= anyDepth {
				return out
			}
			t.f = frame{n: anyMap, ph: mAfterOpen}
		case b == '[':
			if t.depth() >= anyDepth {
				return out
			}
			t.f = frame{n: anyArray, ph: aAfterOpen}
		case b == '"':
			t.f = frame{n: stringNode, ph: sBody}
		case b == '-' || b >= '0' && b <= '9':
			t.f = frame{n: numberNode}
			return stepStart(t, b, out, anyDepth)
		case b == 't' || b == 'f' || b == 'n':
			t.f = frame{n: anyLit, ph: lBody}
			return step(t, b, out, anyDepth)
		default:
			return out
		}
		return append(out, t)
	case kObject:
		if b == '{' {
			t.f.ph = oAfterOpen
			return append(out, t)
		}
	case kMap:
		if b == '{' {
			t.f.ph = mAfterOpen
			return append(out, t)
		}
	case kArray:
		if b == '[' {
			t.f.ph = aAfterOpen
			return append(out, t)
		}
	case kString:
		if b == '"' {
			t.f.ph = sBody
			return append(out, t)
		}
	case kNumber, kInteger:
		switch {
		case b == '-':
			t.f.ph = nMinus
		case b == '0':
			t.f.ph, t.f.j = nZero, 1
		case b >= '1' && b <= '9':
			t.f.ph, t.f.j = nInt, 1
		default:
			return out
		}
		return append(out, t)
	case kLiteral:
		t.f.ph, t.f.i = lBody, 0
		return step(t, b, out, anyDepth)
	}
	return out
}

var numberNode = &node{kind: kNumber, min: 1}

func wsStep(t thread, out []thread) []thread {
	if t.f.ws >= MaxWhitespace {
		return out
	}
	t.f.ws++
	return append(out, t)
}

// appendPop closes the top frame: its parent continues.
func appendPop(t thread, out []thread) []thread { return append(out, pop(t)) }

// endStep ends an endable top frame and feeds b to its parent.
func endStep(t thread, b byte, out []thread, anyDepth int) []thread {
	return step(pop(t), b, out, anyDepth)
}

// pushStep opens value n above t and feeds it b.
func pushStep(t thread, n *node, b byte, out []thread, anyDepth int) []thread {
	var buf [8]thread
	for _, c := range push(t, n, buf[:0]) {
		out = step(c, b, out, anyDepth)
	}
	return out
}

// maxThreads bounds the alternatives followed at once (anyOf branches that
// share a prefix); keeping fewer is sound, as every kept thread can still
// complete.
const maxThreads = 16

// state is the set of threads after the bytes so far.
type state []thread

func (s state) step(b byte, out state, anyDepth int) state {
	out = out[:0]
	for _, t := range s {
		out = step(t, b, out, anyDepth)
		if len(out) > maxThreads {
			out = out[:maxThreads]
		}
	}
	return out
}

func (s state) dist() int {
	d := infBytes
	for _, t := range s {
		d = min(d, dist(t))
	}
	return d
}

func (s state) accepting() bool {
	for _, t := range s {
		if accepting(t) {
			return true
		}
	}
	return false
}

// newState is the state before the first byte of g's document.
func (g *Grammar) newState() state {
	root := &node{kind: kAny, items: g.root, minItems: -2}
	return state{{f: frame{n: root}}}
}

func (g *Grammar) depthLimit() int {
	if g.any {
		return MaxDepth
	}
	return 1 << 30
}

// Prefix reports whether text is a prefix of a document of g, and whether
// it is a complete document: for tests and callers that check output.
func (g *Grammar) Prefix(text []byte) (prefix, complete bool) {
	s := g.newState()
	var buf state
	d := g.depthLimit()
	for _, b := range text {
		buf = s.step(b, buf, d)
		if len(buf) == 0 {
			return false, false
		}
		s, buf = buf, s
	}
	return true, s.accepting()
}

func (f frame) String() string {
	return fmt.Sprintf("{kind %d ph %d i %d j %d}", f.n.kind, f.ph, f.i, f.j)
}
