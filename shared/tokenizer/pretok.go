package tokenizer

import (
	"fmt"
	"regexp"
	"strings"
)

// Split patterns with a hand-written scanner.
const (
	// Llama3Pattern is the Split regex of LLaMA 3 (and BitNet b1.58 2B4T).
	Llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// QwenPattern is the Split regex of Qwen2 and Qwen3 (LLaMA 3's with
	// single digits).
	QwenPattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// GPT2Pattern is the regex of the ByteLevel pre-tokenizer (use_regex).
	GPT2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
)

// Names llama.cpp stores in tokenizer.ggml.pre for the scanned patterns.
const (
	PreLlama3 = "llama-bpe"
	PreGPT2   = "gpt-2"
	PreQwen2  = "qwen2"
)

// Split behaviours (what happens to the pattern's matches).
const (
	behIsolated = iota
	behRemoved
	behMergedWithPrevious
	behMergedWithNext
	behContiguous
)

var behaviors = map[string]int{
	"Isolated": behIsolated, "Removed": behRemoved, "MergedWithPrevious": behMergedWithPrevious,
	"MergedWithNext": behMergedWithNext, "Contiguous": behContiguous,
}

// stage is one pre-tokenizer step: it splits each piece further.
type stage struct {
	pattern     string
	next        func(s string, i int) int // scanner for a known pattern
	re          *regexp.Regexp            // otherwise
	behavior    int
	prefixSpace bool            // ByteLevel(add_prefix_space): prepend " " to each piece
	meta        *metaspaceStage // Metaspace pre-tokenizer
}

// preTokenizer is the list of stages; no stages means "the whole text".
type preTokenizer struct {
	stages []stage
}

// newSplitStage builds the stage for a Split pattern: a scanner for the LLaMA 3
// and GPT-2 patterns, Go's regexp (with Oniguruma's Unicode \s \d \w) for
// others.
func newSplitStage(pattern string, behavior int) (stage, error) {
	st := stage{pattern: pattern, behavior: behavior}
	switch canonicalPattern(pattern) {
	case Llama3Pattern:
		st.next = nextLlama3
		return st, nil
	case GPT2Pattern:
		st.next = nextGPT2
		return st, nil
	case QwenPattern:
		st.next = nextQwen2
		return st, nil
	}
	goPat, err := translatePattern(pattern)
	if err != nil {
		return stage{}, fmt.Errorf("split pattern %q: %w", pattern, err)
	}
	re, err := regexp.Compile(goPat)
	if err != nil {
		return stage{}, fmt.Errorf("split pattern %q is not supported (Go regexp has no look-around or back-references): %w", pattern, err)
	}
	st.re = re
	return st, nil
}

// canonicalPattern maps spellings of the LLaMA 3 pattern that some
// tokenizer.json files use to Llama3Pattern: the possessive forms
// [^\r\n\p{L}\p{N}]?+\p{L}+ and [^\s\p{L}\p{N}]++[\r\n]* match exactly what
// the greedy ones match, because backtracking into them can never let the
// rest of their alternative succeed.
func canonicalPattern(p string) string {
	q := strings.Replace(p, `[^\r\n\p{L}\p{N}]?+\p{L}+`, `[^\r\n\p{L}\p{N}]?\p{L}+`, 1)
	q = strings.Replace(q, ` ?[^\s\p{L}\p{N}]++[\r\n]*`, ` ?[^\s\p{L}\p{N}]+[\r\n]*`, 1)
	if q == Llama3Pattern || q == QwenPattern {
		return q
	}
	return p
}

// Oniguruma's Unicode meanings of the Perl classes; Go's are ASCII-only.
const (
	onigSpace = `\t-\r\x{85}\p{Z}`
	onigDigit = `\p{Nd}`
	onigWord  = `\p{L}\p{M}\p{Nd}\p{Pc}`
)

// translatePattern rewrites \s \d \w (and \S \D \W outside brackets) to their
// Unicode sets so that Go's regexp matches what Oniguruma matches.
func translatePattern(p string) (string, error) {
	var sb strings.Builder
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '\\' && i+1 < len(p) {
			d := p[i+1]
			i++
			var set string
			switch d {
			case 's', 'S':
				set = onigSpace
			case 'd', 'D':
				set = onigDigit
			case 'w', 'W':
				set = onigWord
			default:
				sb.WriteByte(c)
				sb.WriteByte(d)
				continue
			}
			neg := d == 'S' || d == 'D' || d == 'W'
			switch {
			case inClass && neg:
				return "", fmt.Errorf(`\%c inside a bracket expression is not supported`, d)
			case inClass:
				sb.WriteString(set)
			case neg:
				sb.WriteString("[^" + set + "]")
			default:
				sb.WriteString("[" + set + "]")
			}
			continue
		}
		switch {
		case c == '[' && !inClass:
			inClass = true
			sb.WriteByte(c)
			// A leading ] or ^] is literal.
			if i+1 < len(p) && p[i+1] == '^' {
				sb.WriteByte('^')
				i++
			}
			if i+1 < len(p) && p[i+1] == ']' {
				sb.WriteByte(']')
				i++
			}
			continue
		case c == '[' && inClass && i+1 < len(p) && p[i+1] == ':':
			// POSIX class [:alpha:] inside brackets.
			end := strings.Index(p[i:], ":]")
			if end < 0 {
				return "", fmt.Errorf("unterminated POSIX class at offset %d", i)
			}
			sb.WriteString(p[i : i+end+2])
			i += end + 1
			continue
		case c == ']' && inClass:
			inClass = false
		}
		sb.WriteByte(c)
	}
	return sb.String(), nil
}

// apply splits s and appends the pieces to dst; first tells whether s
// starts the text (Metaspace's prepend_scheme "first").
func (st *stage) apply(s string, first bool, dst []string) []string {
	if st.meta != nil {
		return st.meta.apply(s, first, dst)
	}
	if st.prefixSpace {
		if !strings.HasPrefix(s, " ") {
			s = " " + s
		}
		return append(dst, s)
	}
	if st.next != nil && st.behavior == behIsolated {
		for i := 0; i < len(s); {
			e := st.next(s, i)
			dst = append(dst, s[i:e])
			i = e
		}
		return dst
	}
	var spans [][]int
	if st.next != nil {
		for i := 0; i < len(s); {
			e := st.next(s, i)
			spans = append(spans, []int{i, e})
			i = e
		}
	} else {
		spans = st.re.FindAllStringIndex(s, -1)
	}
	return splitSpans(s, spans, st.behavior, dst)
}

// splitSpans cuts s at the match spans according to behavior, with the
// tokenizers library's semantics (a delimiter merges with a neighbouring
// non-delimiter piece only).
func splitSpans(s string, spans [][]int, behavior int, dst []string) []string {
	prev := 0     // end of the material already emitted
	pending := -1 // MergedWithNext: start of the piece that begins at a match
	for _, m := range spans {
		a, b := m[0], m[1]
		if a == b {
			continue // empty matches split nothing
		}
		gap := s[prev:a]
		switch behavior {
		case behIsolated:
			if gap != "" {
				dst = append(dst, gap)
			}
			dst = append(dst, s[a:b])
		case behContiguous:
			if gap != "" {
				dst = append(dst, gap)
			}
			if gap == "" && prev > 0 && len(dst) > 0 {
				dst[len(dst)-1] = s[a-len(dst[len(dst)-1]) : b]
			} else {
				dst = append(dst, s[a:b])
			}
		case behRemoved:
			if gap != "" {
				dst = append(dst, gap)
			}
		case behMergedWithPrevious:
			if gap != "" {
				dst = append(dst, s[prev:b])
			} else {
				dst = append(dst, s[a:b])
			}
		case behMergedWithNext:
			if pending >= 0 {
				dst = append(dst, s[pending:a])
			} else if gap != "" {
				dst = append(dst, gap)
			}
			pending = a
		}
		prev = b
	}
	if pending >= 0 {
		return append(dst, s[pending:])
	}
	if prev < len(s) {
		dst = append(dst, s[prev:])
	}
	return dst
}

// split appends the words of s to dst; first tells whether s starts the
// text (rather than following an added token).
func (p *preTokenizer) split(s string, first bool, dst []string) []string {
	if len(p.stages) == 0 {
		if s == "" {
			return dst
		}
		return append(dst, s)
	}
	if len(p.stages) == 1 {
		return p.stages[0].apply(s, first, dst)
	}
	words := []string{s}
	for i := range p.stages {
		var out []string
		if i == len(p.stages)-1 {
			out = dst
		}
		for k, w := range words {
			out = p.stages[i].apply(w, first && k == 0, out)
		}
		words = out
	}
	return words
}

// name is what GGUF stores in tokenizer.ggml.pre for this pre-tokenizer.
func (p *preTokenizer) name() string {
	var pats []string
	for _, st := range p.stages {
		if st.pattern != "" {
			pats = append(pats, st.pattern)
		}
	}
	if len(pats) == 1 {
		switch canonicalPattern(pats[0]) {
		case Llama3Pattern:
			return PreLlama3
		case GPT2Pattern:
			return PreGPT2
		case QwenPattern:
			return PreQwen2
		}
		return pats[0]
	}
	return strings.Join(pats, "\n")
}
