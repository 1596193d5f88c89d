package constrained

// litTrie is a byte trie of encoded literal values (enum, const, true,
// false, null).
type litTrie struct {
	nodes []litNode
}

type litNode struct {
	next     []litEdge
	terminal bool
	toEnd    int // fewest bytes to a terminal node
}

type litEdge struct {
	b  byte
	to int32
}

func newLitTrie(values [][]byte) *litTrie {
	t := &litTrie{nodes: []litNode{{}}}
	for _, v := range values {
		cur := int32(0)
		for _, c := range v {
			nxt := t.child(cur, c)
			if nxt < 0 {
				nxt = int32(len(t.nodes))
				t.nodes = append(t.nodes, litNode{})
				t.nodes[cur].next = append(t.nodes[cur].next, litEdge{b: c, to: nxt})
			}
			cur = nxt
		}
		t.nodes[cur].terminal = true
	}
	// Children have higher indexes: one backward pass computes toEnd.
	for i := len(t.nodes) - 1; i >= 0; i-- {
		n := &t.nodes[i]
		n.toEnd = infBytes
		if n.terminal {
			n.toEnd = 0
		}
		for _, e := range n.next {
			n.toEnd = min(n.toEnd, 1+t.nodes[e.to].toEnd)
		}
	}
	return t
}

func (t *litTrie) child(n int32, c byte) int32 {
	for _, e := range t.nodes[n].next {
		if e.b == c {
			return e.to
		}
	}
	return -1
}
