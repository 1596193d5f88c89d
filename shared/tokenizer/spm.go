package tokenizer

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// SentencePiece-style BPE ("literal" vocabularies): LLaMA 2, 1bitLLM, Gemma.
//
// Their tokenizer.json stores tokens as text in which a space is "▁"
// (U+2581) and the 256 bytes are "<0x00>".."<0xFF>". A normalizer (or the
// Metaspace pre-tokenizer) turns spaces into "▁" and, for LLaMA 2, prepends
// one "▁"; the BPE model starts from characters, not bytes: a character
// that is not a token becomes its UTF-8 bytes' <0xXX> tokens (byte_fallback),
// or the unknown token (consecutive ones fused with fuse_unk). The decoder
// turns "▁" back into spaces and <0xXX> into bytes, and LLaMA 2's strips the
// first leading space. The tokenizers library applies the normalizer to
// each piece of text between added tokens, so LLaMA 2 prepends "▁" after a
// special token too.

// Metaspace is the character SentencePiece uses for a space.
const Metaspace = "▁"

// Normalizer kinds (tokenizer.json "normalizer").
const (
	normPrepend = iota
	normReplace
	normNFC
	normNFD
	normNFKC
	normNFKD
)

// normStep is one normalizer: prepend a (to a non-empty string), replace a
// with b, or a Unicode normalization form.
type normStep struct {
	kind int
	a, b string
}

// normalizer is the sequence of steps applied to text between added tokens.
type normalizer []normStep

func (n normalizer) apply(s string) string {
	for _, st := range n {
		switch st.kind {
		case normPrepend:
			if s != "" {
				s = st.a + s
			}
		case normReplace:
			s = strings.ReplaceAll(s, st.a, st.b)
		case normNFC:
			s = norm.NFC.String(s)
		case normNFD:
			s = norm.NFD.String(s)
		case normNFKC:
			s = norm.NFKC.String(s)
		case normNFKD:
			s = norm.NFKD.String(s)
		}
	}
	return s
}

// parseNormalizer converts tokenizer.json's normalizer.
func parseNormalizer(c componentJSON, raw []byte) (normalizer, error) {
	switch c.Type {
	case "Sequence":
		var n normalizer
		for i, sub := range c.Normalizers {
			var sc componentJSON
			if err := json.Unmarshal(sub, &sc); err != nil {
				return nil, fmt.Errorf("normalizers[%d]: %w", i, err)
			}
			sn, err := parseNormalizer(sc, sub)
			if err != nil {
				return nil, fmt.Errorf("normalizers[%d]: %w", i, err)
			}
			n = append(n, sn...)
		}
		return n, nil
	case "Prepend":
		var p struct {
			Prepend string `json:"prepend"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, err
		}
		return normalizer{{kind: normPrepend, a: p.Prepend}}, nil
	case "Replace":
		if c.Pattern.String == nil || *c.Pattern.String == "" {
			return nil, fmt.Errorf("Replace needs a String pattern (regex patterns are not supported)")
		}
		var p struct {
			Content string `json:"content"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, err
		}
		return normalizer{{kind: normReplace, a: *c.Pattern.String, b: p.Content}}, nil
	case "NFC":
		return normalizer{{kind: normNFC}}, nil
	case "NFD":
		return normalizer{{kind: normNFD}}, nil
	case "NFKC":
		return normalizer{{kind: normNFKC}}, nil
	case "NFKD":
		return normalizer{{kind: normNFKD}}, nil
	}
	return nil, fmt.Errorf("type %q is not supported (want Sequence, Prepend, Replace, NFC, NFD, NFKC or NFKD)", c.Type)
}

// decoderSpec is what a tokenizer.json decoder does to the tokens of a
// literal vocabulary.
type decoderSpec struct {
	byteLevel    bool // GPT-2 byte-level alphabet
	metaspace    bool // "▁" becomes " " (Replace or Metaspace decoder)
	byteFallback bool // "<0xXX>" becomes the byte
	stripStart   int  // leading spaces removed from the decoded text
}

// parseDecoder converts tokenizer.json's decoder.
func parseDecoder(raw []byte, d *decoderSpec) error {
	if isNull(raw) {
		return nil
	}
	var c componentJSON
	if err := json.Unmarshal(raw, &c); err != nil {
		return err
	}
	switch c.Type {
	case "ByteLevel":
		d.byteLevel = true
	case "Sequence":
		for i, sub := range c.Decoders {
			if err := parseDecoder(sub, d); err != nil {
				return fmt.Errorf("decoders[%d]: %w", i, err)
			}
		}
	case "Replace":
		var p struct {
			Content string `json:"content"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return err
		}
		if c.Pattern.String == nil || *c.Pattern.String != Metaspace || p.Content != " " {
			return fmt.Errorf("Replace decoder: only %q -> \" \" is supported", Metaspace)
		}
		d.metaspace = true
	case "ByteFallback":
		d.byteFallback = true
	case "Fuse":
	case "Strip":
		var p struct {
			Content string `json:"content"`
			Start   int    `json:"start"`
			Stop    int    `json:"stop"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return err
		}
		if p.Content != " " || p.Stop != 0 || p.Start < 0 || p.Start > 8 {
			return fmt.Errorf("Strip decoder: only leading spaces (start 0..8, stop 0) are supported")
		}
		d.stripStart = p.Start
	case "Metaspace":
		var p struct {
			Replacement    string `json:"replacement"`
			PrependScheme  string `json:"prepend_scheme"`
			AddPrefixSpace *bool  `json:"add_prefix_space"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return err
		}
		if p.Replacement != Metaspace {
			return fmt.Errorf("Metaspace decoder: replacement %q is not supported (want %q)", p.Replacement, Metaspace)
		}
		d.metaspace = true
		if p.PrependScheme != "never" && (p.AddPrefixSpace == nil || *p.AddPrefixSpace) {
			d.stripStart = 1
		}
	default:
		return fmt.Errorf("type %q is not supported (want ByteLevel, Sequence, Replace, ByteFallback, Fuse, Strip or Metaspace)", c.Type)
	}
	return nil
}

// decodeLiteral returns the text a literal vocabulary token stands for.
func (d decoderSpec) decodeLiteral(s string) string {
	if d.byteFallback {
		if b, ok := byteToken(s); ok {
			return string([]byte{b})
		}
	}
	if d.metaspace {
		return strings.ReplaceAll(s, Metaspace, " ")
	}
	return s
}

// byteToken parses a byte-fallback token "<0xXX>" (upper-case hex).
func byteToken(s string) (byte, bool) {
	if len(s) != 6 || s[:3] != "<0x" || s[5] != '>' {
		return 0, false
	}
	for _, c := range s[3:5] {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(s[3:5], 16, 8)
	return byte(v), err == nil
}

// byteTokenName is the byte-fallback token of b.
func byteTokenName(b byte) string { return fmt.Sprintf("<0x%02X>", b) }

// bpeLiteral appends the tokens of word w of a literal vocabulary: its
// characters (or their byte-fallback tokens, or the unknown token) merged by
// rank as in bpe.
func (t *Tokenizer) bpeLiteral(w string, out []int) []int {
	syms := make([]symbol, 0, len(w))
	push := func(id int32) {
		syms = append(syms, symbol{id: id, prev: int32(len(syms)) - 1, next: int32(len(syms)) + 1})
	}
	for i := 0; i < len(w); {
		_, n := utf8.DecodeRuneInString(w[i:])
		ch := w[i : i+n]
		i += n
		if id, ok := t.vocab[ch]; ok {
			push(int32(id))
			continue
		}
		if t.byteFallback {
			ok := true
			for k := 0; k < len(ch); k++ {
				ok = ok && t.byteID[ch[k]] >= 0
			}
			if ok {
				for k := 0; k < len(ch); k++ {
					push(t.byteID[ch[k]])
				}
				continue
			}
		}
		if t.unk < 0 {
			continue // no unknown token: the character is dropped
		}
		if t.fuseUnk && len(syms) > 0 && syms[len(syms)-1].id == t.unk {
			continue
		}
		push(t.unk)
	}
	return t.mergeSymbols(syms, out)
}

// metaspaceStage is the Metaspace pre-tokenizer: spaces become "▁", a "▁"
// is prepended (scheme "always", or "first" for the text's first piece) and,
// with split, the text is cut before every "▁".
type metaspaceStage struct {
	prepend int // metaNever, metaFirst, metaAlways
	split   bool
}

const (
	metaNever = iota
	metaFirst
	metaAlways
)

func (m metaspaceStage) apply(s string, first bool, dst []string) []string {
	s = strings.ReplaceAll(s, " ", Metaspace)
	if s != "" && !strings.HasPrefix(s, Metaspace) && (m.prepend == metaAlways || m.prepend == metaFirst && first) {
		s = Metaspace + s
	}
	if !m.split {
		if s == "" {
			return dst
		}
		return append(dst, s)
	}
	for s != "" {
		j := strings.Index(s[1:], Metaspace)
		if j < 0 {
			return append(dst, s)
		}
		dst = append(dst, s[:j+1])
		s = s[j+1:]
	}
	return dst
}

// Scores returns a SentencePiece score for every token, as GGUF's
// tokenizer.ggml.scores stores them for the "llama" (SPM) tokenizer: the
// negated rank of the first merge that makes the token, so that llama.cpp's
// highest-score-first merging applies the merges in rank order; tokens no
// merge makes score below every merged token.
func (t *Tokenizer) Scores() []float32 {
	out := make([]float32, len(t.tokens))
	floor := -float32(len(t.mergeList)) - 1
	for i := range out {
		out[i] = floor
	}
	for rank := len(t.mergeList) - 1; rank >= 0; rank-- {
		p := t.mergeList[rank]
		if m, ok := t.merges[pairKey(p[0], p[1])]; ok {
			out[m.id] = -float32(rank)
		}
	}
	return out
}
