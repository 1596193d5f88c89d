package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// addedMatcher finds added tokens in text, leftmost-longest, with a byte
// trie: text without any token's first byte costs one table lookup per byte,
// and shared prefixes (LLaMA 3's 256 "<|...|>" tokens) are walked once.
type addedMatcher struct {
	root trieNode
}

type trieNode struct {
	next  map[byte]*trieNode
	token *addedToken // a token ends here
}

func newAddedMatcher(added []addedToken) addedMatcher {
	var m addedMatcher
	for i := range added {
		a := &added[i]
		n := &m.root
		for j := 0; j < len(a.Content); j++ {
			if n.next == nil {
				n.next = map[byte]*trieNode{}
			}
			c, ok := n.next[a.Content[j]]
			if !ok {
				c = &trieNode{}
				n.next[a.Content[j]] = c
			}
			n = c
		}
		if a.Content != "" {
			n.token = a
		}
	}
	return m
}

// match is an added token found at text[start:end] (end includes the
// whitespace that rstrip absorbs, start the whitespace of lstrip).
type match struct {
	start, end, id int
}

// find returns the first added token at or after pos; special tokens are
// considered only when special is set.
func (m *addedMatcher) find(text string, pos int, special bool) (match, bool) {
	if m.root.next == nil {
		return match{}, false
	}
	var ends [8]*addedToken // tokens ending along the walk, shortest first
	for i := pos; i < len(text); i++ {
		n := m.root.next[text[i]]
		if n == nil {
			continue
		}
		found := ends[:0]
		for j := i + 1; ; j++ {
			if n.token != nil && (special || !n.token.Special) {
				found = append(found, n.token)
			}
			if j >= len(text) || n.next == nil {
				break
			}
			if n = n.next[text[j]]; n == nil {
				break
			}
		}
		for k := len(found) - 1; k >= 0; k-- {
			a := found[k]
			end := i + len(a.Content)
			if a.singleWord && (isWordBefore(text, i) || isWordAfter(text, end)) {
				continue
			}
			start := i
			if a.lstrip {
				start = pos + len(strings.TrimRightFunc(text[pos:i], unicode.IsSpace))
			}
			if a.rstrip {
				end = len(text) - len(strings.TrimLeftFunc(text[end:], unicode.IsSpace))
			}
			return match{start: start, end: end, id: a.ID}, true
		}
	}
	return match{}, false
}

// isWordRune approximates the Unicode \w that the tokenizers library uses for
// single_word: letters, marks, decimal digits and connector punctuation.
func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsDigit(r) || unicode.Is(unicode.Pc, r)
}

func isWordBefore(text string, i int) bool {
	if i == 0 {
		return false
	}
	r, _ := utf8.DecodeLastRuneInString(text[:i])
	return isWordRune(r)
}

func isWordAfter(text string, i int) bool {
	if i >= len(text) {
		return false
	}
	r, _ := utf8.DecodeRuneInString(text[i:])
	return isWordRune(r)
}
