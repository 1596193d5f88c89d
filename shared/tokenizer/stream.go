package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// StreamDecoder turns a stream of token ids into text without ever emitting
// part of a UTF-8 character: bytes that may still become a character are held
// back until the next token completes them. Bytes that can never be valid
// UTF-8 come out as U+FFFD, one per byte, so the output is always valid UTF-8.
// A StreamDecoder is not safe for concurrent use.
type StreamDecoder struct {
	t           *Tokenizer
	pending     []byte
	skipSpecial bool
	stripped    int  // leading spaces removed so far (the Strip decoder's)
	started     bool // a character other than a stripped space was seen
}

// DecoderOption configures a StreamDecoder.
type DecoderOption func(*StreamDecoder)

// SkipSpecial makes the decoder drop special tokens (e.g. <|eot_id|>).
func SkipSpecial() DecoderOption { return func(d *StreamDecoder) { d.skipSpecial = true } }

// NewDecoder returns a stream decoder for t.
func (t *Tokenizer) NewDecoder(opts ...DecoderOption) *StreamDecoder {
	d := &StreamDecoder{t: t}
	for _, o := range opts {
		o(d)
	}
	return d
}

// Add appends token id and returns the text that is now complete (possibly
// ""). Unknown ids are ignored.
func (d *StreamDecoder) Add(id int) string {
	if d.skipSpecial && d.t.IsSpecial(id) {
		return ""
	}
	s, ok := d.t.Token(id)
	if !ok {
		return ""
	}
	if !d.started {
		for d.stripped < d.t.stripStart && strings.HasPrefix(s, " ") {
			s, d.stripped = s[1:], d.stripped+1
		}
		if s == "" {
			return ""
		}
		d.started = true
	}
	if len(d.pending) == 0 && utf8.ValidString(s) {
		return s // the common case: a token of whole characters
	}
	d.pending = append(d.pending, s...)
	return d.drain(false)
}

// Flush returns the held-back bytes (as U+FFFD: they never completed a
// character) and resets the decoder.
func (d *StreamDecoder) Flush() string {
	d.started, d.stripped = false, 0
	return d.drain(true)
}

// drain emits the complete prefix of pending; with final set, the incomplete
// tail too.
func (d *StreamDecoder) drain(final bool) string {
	var sb strings.Builder
	p := d.pending
	i := 0
	for i < len(p) {
		r, w := utf8.DecodeRune(p[i:])
		if r == utf8.RuneError && w <= 1 {
			if !final && !utf8.FullRune(p[i:]) {
				break // a valid prefix of a character: wait for more bytes
			}
			sb.WriteRune(utf8.RuneError)
			i++
			continue
		}
		sb.Write(p[i : i+w])
		i += w
	}
	d.pending = append(d.pending[:0], p[i:]...)
	return sb.String()
}
