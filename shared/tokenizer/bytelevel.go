package tokenizer

import "unicode/utf8"

// byteLevel is GPT-2's bytes_to_unicode table: printable Latin-1 bytes map to
// themselves, the other 68 bytes to U+0100.. in order, so every byte string
// becomes a printable string without spaces.
type byteLevel struct {
	enc [256]rune
	dec map[rune]byte
}

func newByteLevel() *byteLevel {
	bl := &byteLevel{dec: make(map[rune]byte, 256)}
	n := rune(0)
	for b := 0; b < 256; b++ {
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		r := rune(b)
		if !printable {
			r = 256 + n
			n++
		}
		bl.enc[b] = r
		bl.dec[r] = byte(b)
	}
	return bl
}

// decode maps a byte-level string back to raw bytes; ok is false when s holds
// a character outside the alphabet (such a token can never be produced from
// text, e.g. a GGUF padding token).
func (bl *byteLevel) decode(s string) (raw string, ok bool) {
	buf := make([]byte, 0, len(s))
	for _, r := range s {
		b, found := bl.dec[r]
		if !found {
			return "", false
		}
		buf = append(buf, b)
	}
	if !utf8.ValidString(s) {
		return "", false
	}
	return string(buf), true
}
