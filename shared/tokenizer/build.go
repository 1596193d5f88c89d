package tokenizer

import (
	"fmt"
	"regexp"
)

func regexpQuote(s string) string { return regexp.QuoteMeta(s) }

// builder collects tokens from a tokenizer.json or GGUF metadata and checks
// them before a Tokenizer is assembled.
type builder struct {
	file   map[int]string // id -> token in the byte-level alphabet
	byFile map[string]int
	unused map[int]bool // GGUF unused (padding) ids: kept, never produced
	added  []addedToken
	addedI map[int]int // id -> index in added
	// literal is set for SentencePiece-style vocabularies (see spm.go),
	// whose tokens dec turns into text.
	literal bool
	dec     decoderSpec
}

func newBuilder() *builder {
	return &builder{file: map[int]string{}, byFile: map[string]int{}, unused: map[int]bool{}, addedI: map[int]int{}}
}

func checkID(id int) error {
	if id < 0 || id >= MaxVocab {
		return fmt.Errorf("id %d out of range [0, %d)", id, MaxVocab)
	}
	return nil
}

func (b *builder) addModel(id int, s string) error {
	if err := checkID(id); err != nil {
		return fmt.Errorf("token %q: %w", truncate(s, 40), err)
	}
	if prev, dup := b.file[id]; dup {
		return fmt.Errorf("id %d is used by both %q and %q", id, truncate(prev, 40), truncate(s, 40))
	}
	if prevID, dup := b.byFile[s]; dup {
		return fmt.Errorf("token %q has ids %d and %d", truncate(s, 40), prevID, id)
	}
	b.file[id] = s
	b.byFile[s] = id
	return nil
}

func (b *builder) addAdded(a addedToken) error {
	if err := checkID(a.ID); err != nil {
		return fmt.Errorf("added token %q: %w", truncate(a.Content, 40), err)
	}
	if a.Content == "" {
		return fmt.Errorf("added token %d has empty content", a.ID)
	}
	if i, dup := b.addedI[a.ID]; dup {
		return fmt.Errorf("id %d is used by added tokens %q and %q", a.ID, b.added[i].Content, a.Content)
	}
	if s, ok := b.file[a.ID]; ok && s != a.Content {
		return fmt.Errorf("added token %q has id %d, which the vocabulary gives to %q", truncate(a.Content, 40), a.ID, truncate(s, 40))
	}
	for _, o := range b.added {
		if o.Content == a.Content {
			return fmt.Errorf("added token %q has ids %d and %d", truncate(a.Content, 40), o.ID, a.ID)
		}
	}
	b.addedI[a.ID] = len(b.added)
	b.added = append(b.added, a)
	return nil
}

// build assembles the tokenizer; pairs are the merges in rank order, or, when
// ranks is not nil, with those ranks (equal ranks merge leftmost first).
func (b *builder) build(pairs [][2]string, ranks []int32, ignoreMerges bool, pre preTokenizer) (*Tokenizer, error) {
	n := 0
	for id := range b.file {
		n = max(n, id+1)
	}
	for _, a := range b.added {
		n = max(n, a.ID+1)
	}
	for id := range b.unused {
		n = max(n, id+1)
	}
	t := &Tokenizer{
		tokens:       make([]string, n),
		present:      make([]bool, n),
		fileForm:     make([]string, n),
		special:      make([]bool, n),
		unused:       make([]bool, n),
		vocab:        make(map[string]int, len(b.file)),
		merges:       make(map[uint64]merge, len(pairs)),
		ignoreMerges: ignoreMerges,
		addedByText:  make(map[string]int, len(b.added)),
		pre:          pre,
		bos:          -1,
		unk:          -1,
		stripStart:   b.dec.stripStart,
	}
	t.literal = b.literal
	bl := newByteLevel()
	for id, s := range b.file {
		t.present[id] = true
		t.fileForm[id] = s
		t.unused[id] = b.unused[id]
		if b.literal {
			t.tokens[id] = b.dec.decodeLiteral(s)
			if !b.unused[id] {
				t.vocab[s] = id
			}
			continue
		}
		raw, ok := bl.decode(s)
		if !ok || b.unused[id] {
			t.tokens[id] = s // not reachable from text (e.g. GGUF padding)
			continue
		}
		t.tokens[id] = raw
		t.vocab[raw] = id
	}
	for i := range t.byteID {
		t.byteID[i] = -1
		key := string([]byte{byte(i)})
		if b.literal {
			key = byteTokenName(byte(i))
		}
		if id, ok := t.vocab[key]; ok {
			t.byteID[i] = int32(id)
		}
	}
	t.mergeList = make([][2]int32, 0, len(pairs))
	for rank, p := range pairs {
		a, okA := b.byFile[p[0]]
		c, okB := b.byFile[p[1]]
		if !okA || !okB {
			return nil, fmt.Errorf("merge %d %q: token not in the vocabulary", rank, p[0]+" "+p[1])
		}
		m, okM := b.byFile[p[0]+p[1]]
		if !okM {
			return nil, fmt.Errorf("merge %d %q: merged token %q not in the vocabulary", rank, p[0]+" "+p[1], p[0]+p[1])
		}
		t.mergeList = append(t.mergeList, [2]int32{int32(a), int32(c)})
		r := int32(rank)
		if ranks != nil {
			r = ranks[rank]
		}
		// A repeated pair takes its last rank, as in the tokenizers library.
		t.merges[pairKey(int32(a), int32(c))] = merge{rank: r, id: int32(m)}
	}
	for _, a := range b.added {
		t.present[a.ID] = true
		t.tokens[a.ID] = a.Content
		if b.literal {
			// The decoder turns every token into text, added ones too
			// (Gemma's "▁▁" whitespace tokens).
			t.tokens[a.ID] = b.dec.decodeLiteral(a.Content)
		}
		if t.fileForm[a.ID] == "" {
			t.fileForm[a.ID] = a.Content
		}
		t.special[a.ID] = a.Special
		t.addedByText[a.Content] = a.ID
	}
	t.added = b.added
	t.matcher = newAddedMatcher(t.added)
	return t, nil
}
