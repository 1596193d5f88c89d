package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// Character classes of the split patterns, with Oniguruma's Unicode meaning
// (the engine Hugging Face tokenizers uses): \p{L}, \p{N} and \s = White_Space.
const (
	clsOther = iota
	clsLetter
	clsNumber
	clsSpace
)

// asciiClass caches the class of every ASCII byte.
var asciiClass = func() (t [128]uint8) {
	for c := 0; c < 128; c++ {
		t[c] = classOfRune(rune(c))
	}
	return t
}()

func classOfRune(r rune) uint8 {
	switch {
	case unicode.IsLetter(r):
		return clsLetter
	case unicode.IsNumber(r):
		return clsNumber
	case unicode.IsSpace(r): // \t-\r, space, U+0085, U+00A0 and White_Space
		return clsSpace
	}
	return clsOther
}

// classAt returns the class and byte width of the character at s[i]. Invalid
// UTF-8 bytes are one-byte "other" characters.
func classAt(s string, i int) (cls uint8, w int) {
	if c := s[i]; c < utf8.RuneSelf {
		return asciiClass[c], 1
	}
	r, w := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && w == 1 {
		return clsOther, 1
	}
	return classOfRune(r), w
}

// runOf returns the end of the run of characters of class cls starting at i.
func runOf(s string, i int, cls uint8) int {
	for i < len(s) {
		c, w := classAt(s, i)
		if c != cls {
			break
		}
		i += w
	}
	return i
}

// foldEq reports whether byte c equals lower-case ASCII letter l ignoring
// case.
func foldEq(c, l byte) bool { return c == l || c == l-'a'+'A' }

// contraction matches (?i:'s|'t|'re|'ve|'m|'ll|'d) (caseless=true) or the
// case-sensitive GPT-2 form at an apostrophe s[i] and returns the end, or -1.
// Caseless matching also accepts U+017F (long s), which case-folds to s.
func contraction(s string, i int, caseless bool) int {
	j := i + 1
	if j >= len(s) {
		return -1
	}
	eq := func(k int, l byte) bool {
		if k >= len(s) {
			return false
		}
		if caseless {
			return foldEq(s[k], l)
		}
		return s[k] == l
	}
	switch {
	case eq(j, 's'), eq(j, 't'), eq(j, 'm'), eq(j, 'd'):
		return j + 1
	case eq(j, 'r') && eq(j+1, 'e'), eq(j, 'v') && eq(j+1, 'e'), eq(j, 'l') && eq(j+1, 'l'):
		return j + 2
	case caseless && len(s)-j >= 2 && s[j] == 0xC5 && s[j+1] == 0xBF: // ſ
		return j + 2
	}
	return -1
}

// spaceTail matches the last three alternatives shared by the LLaMA 3 and
// GPT-2 patterns at a whitespace character: \s+(?!\S)|\s+ (and, when
// newlines is set, the LLaMA 3 \s*[\r\n]+ before them).
func spaceTail(s string, i int, newlines bool) int {
	j := runOf(s, i, clsSpace)
	if newlines {
		// \s*[\r\n]+: backtracking ends the match after the last CR/LF of the
		// whitespace run.
		for k := j - 1; k >= i; k-- {
			if s[k] == '\r' || s[k] == '\n' {
				return k + 1
			}
		}
	}
	if j == len(s) {
		return j // \s+(?!\S) at the end of the text
	}
	// \s+(?!\S) backtracks one character so that the next word keeps its
	// leading space; a lone space falls through to \s+.
	if _, w := lastRune(s[i:j]); j-w > i {
		return j - w
	}
	return j
}

// lastRune returns the last character of s and its width.
func lastRune(s string) (rune, int) { return utf8.DecodeLastRuneInString(s) }

// nextLlama3 returns the end of the match of the LLaMA 3 split pattern
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//	 ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// starting at i < len(s). Every character is covered by some alternative, so
// the matches tile the text.
func nextLlama3(s string, i int) int { return nextLlama3Digits(s, i, 3) }

// nextQwen2 returns the end of the match of the Qwen2/Qwen3 split pattern,
// which is LLaMA 3's with \p{N} (one digit per piece) for \p{N}{1,3}.
func nextQwen2(s string, i int) int { return nextLlama3Digits(s, i, 1) }

// nextLlama3Digits is nextLlama3 with runs of at most digits numbers.
func nextLlama3Digits(s string, i, digits int) int {
	c0 := s[i]
	if c0 == '\'' {
		if e := contraction(s, i, true); e > 0 {
			return e
		}
	}
	cls, w := classAt(s, i)
	switch cls {
	case clsLetter:
		return runOf(s, i+w, clsLetter)
	case clsNumber:
		j := i + w
		for n := 1; n < digits && j < len(s); n++ {
			c, cw := classAt(s, j)
			if c != clsNumber {
				break
			}
			j += cw
		}
		return j
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+ with one leading non-letter (spaces included).
	if c0 != '\r' && c0 != '\n' && i+w < len(s) {
		if c, _ := classAt(s, i+w); c == clsLetter {
			return runOf(s, i+w, clsLetter)
		}
	}
	if cls == clsOther || (c0 == ' ' && i+1 < len(s)) {
		// ` ?[^\s\p{L}\p{N}]+[\r\n]*`
		j := i
		if c0 == ' ' {
			j = i + 1
		}
		if e := runOf(s, j, clsOther); e > j {
			for e < len(s) && (s[e] == '\r' || s[e] == '\n') {
				e++
			}
			return e
		}
	}
	return spaceTail(s, i, true)
}

// nextGPT2 returns the end of the match of the GPT-2 split pattern
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// starting at i < len(s).
func nextGPT2(s string, i int) int {
	c0 := s[i]
	if c0 == '\'' {
		if e := contraction(s, i, false); e > 0 {
			return e
		}
	}
	j := i
	if c0 == ' ' && i+1 < len(s) {
		j = i + 1
	}
	cls, _ := classAt(s, j)
	if cls != clsSpace {
		return runOf(s, j, cls)
	}
	return spaceTail(s, i, false)
}
