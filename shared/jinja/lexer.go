package jinja

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

type tokKind int

const (
	tEOF tokKind = iota
	tText
	tVarBegin
	tVarEnd
	tBlockBegin
	tBlockEnd
	tName
	tString
	tInt
	tFloat
	tOp
)

type token struct {
	kind tokKind
	val  string // text, name, operator or decoded string literal
	num  float64
	inum int64
	line int
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of template"
	case tText:
		return "text"
	case tVarBegin:
		return "'{{'"
	case tVarEnd:
		return "'}}'"
	case tBlockBegin:
		return "'{%'"
	case tBlockEnd:
		return "'%}'"
	case tString:
		return strconv.Quote(t.val)
	}
	return "'" + t.val + "'"
}

// lexer splits a template into text and tag tokens, applying whitespace
// control: '-' strips whitespace beside a tag, trim_blocks removes the
// newline after a block tag, lstrip_blocks the indentation before one ('+'
// disables both).
type lexer struct {
	src       string
	pos       int
	line      int
	toks      []token
	trim      bool // trim_blocks
	lstr      bool // lstrip_blocks
	stripNext bool // the previous tag ended with '-'
	trimNext  bool // the previous tag was a block tag (trim_blocks)
}

func lex(src string, trimBlocks, lstripBlocks bool) ([]token, error) {
	lx := &lexer{src: src, line: 1, trim: trimBlocks, lstr: lstripBlocks}
	if err := lx.run(); err != nil {
		return nil, err
	}
	return lx.toks, nil
}

func (lx *lexer) errorf(format string, args ...any) error {
	return fmt.Errorf("line %d: %s", lx.line, fmt.Sprintf(format, args...))
}

func (lx *lexer) emitText(text string) {
	if lx.stripNext {
		text = strings.TrimLeft(text, " \t\r\n\f\v")
	} else if lx.trimNext {
		if strings.HasPrefix(text, "\r\n") {
			text = text[2:]
		} else if strings.HasPrefix(text, "\n") {
			text = text[1:]
		}
	}
	lx.stripNext, lx.trimNext = false, false
	if text != "" {
		lx.toks = append(lx.toks, token{kind: tText, val: text, line: lx.line})
	}
}

func (lx *lexer) run() error {
	for {
		i := lx.nextTag()
		if i < 0 {
			lx.emitText(lx.src[lx.pos:])
			lx.line += strings.Count(lx.src[lx.pos:], "\n")
			lx.toks = append(lx.toks, token{kind: tEOF, line: lx.line})
			return nil
		}
		text := lx.src[lx.pos:i]
		open := lx.src[i : i+2]
		mod := byte(0)
		if i+2 < len(lx.src) && (lx.src[i+2] == '-' || lx.src[i+2] == '+') {
			mod = lx.src[i+2]
		}
		switch {
		case mod == '-':
			text = strings.TrimRight(text, " \t\r\n\f\v")
		case mod != '+' && lx.lstr && open != "{{":
			// lstrip_blocks: drop spaces and tabs from the line start.
			if j := strings.LastIndexByte(text, '\n'); strings.Trim(text[j+1:], " \t") == "" {
				if j >= 0 || lx.atLineStart() {
					text = text[:j+1]
				}
			}
		}
		lx.emitText(text)
		lx.line += strings.Count(lx.src[lx.pos:i], "\n")
		lx.pos = i + 2
		if mod != 0 {
			lx.pos++
		}
		switch open {
		case "{#":
			end := strings.Index(lx.src[lx.pos:], "#}")
			if end < 0 {
				return lx.errorf("unclosed comment")
			}
			body := lx.src[lx.pos : lx.pos+end]
			lx.line += strings.Count(body, "\n")
			lx.pos += end + 2
			lx.stripNext = strings.HasSuffix(body, "-")
			lx.trimNext = lx.trim && !strings.HasSuffix(body, "+")
		case "{{":
			lx.toks = append(lx.toks, token{kind: tVarBegin, line: lx.line})
			if err := lx.lexExpr("}}"); err != nil {
				return err
			}
		case "{%":
			start := len(lx.toks)
			lx.toks = append(lx.toks, token{kind: tBlockBegin, line: lx.line})
			if err := lx.lexExpr("%}"); err != nil {
				return err
			}
			if len(lx.toks) > start+1 && lx.toks[start+1].kind == tName && lx.toks[start+1].val == "raw" {
				if err := lx.lexRaw(start); err != nil {
					return err
				}
			}
		}
	}
}

// atLineStart reports whether pos is at the start of the template.
func (lx *lexer) atLineStart() bool { return lx.pos == 0 }

// nextTag returns the index of the next tag opener at or after pos, or -1.
func (lx *lexer) nextTag() int {
	s := lx.src
	for i := lx.pos; i+1 < len(s); i++ {
		if s[i] == '{' && (s[i+1] == '{' || s[i+1] == '%' || s[i+1] == '#') {
			return i
		}
	}
	return -1
}

// lexRaw turns {% raw %}...{% endraw %} into one text token.
func (lx *lexer) lexRaw(start int) error {
	lx.toks = lx.toks[:start]
	rest := lx.src[lx.pos:]
	for off := 0; ; {
		j := strings.Index(rest[off:], "{%")
		if j < 0 {
			return lx.errorf("unclosed raw block")
		}
		j += off
		k := j + 2
		for k < len(rest) && (rest[k] == '-' || rest[k] == ' ' || rest[k] == '\t' || rest[k] == '+') {
			k++
		}
		if strings.HasPrefix(rest[k:], "endraw") {
			end := strings.Index(rest[k:], "%}")
			if end < 0 {
				return lx.errorf("unclosed endraw tag")
			}
			text := rest[:j]
			if rest[j+2] == '-' {
				text = strings.TrimRight(text, " \t\r\n\f\v")
			}
			lx.emitText(text)
			lx.line += strings.Count(rest[:k+end+2], "\n")
			lx.pos += k + end + 2
			lx.stripNext = rest[k+end-1] == '-'
			lx.trimNext = lx.trim && rest[k+end-1] != '+'
			return nil
		}
		off = k
	}
}

var operators = []string{"**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", "|", ".", ",", ":", "(", ")", "[", "]", "{", "}"}

// lexExpr lexes expression tokens up to the closer ("}}" or "%}"), which it
// emits as tVarEnd or tBlockEnd.
func (lx *lexer) lexExpr(closer string) error {
	depth := 0
	s := lx.src
	for {
		for lx.pos < len(s) && strings.IndexByte(" \t\r\n", s[lx.pos]) >= 0 {
			if s[lx.pos] == '\n' {
				lx.line++
			}
			lx.pos++
		}
		if lx.pos >= len(s) {
			return lx.errorf("unclosed tag: missing %q", closer)
		}
		rest := s[lx.pos:]
		if depth == 0 {
			mod := byte(0)
			r := rest
			if len(r) > 0 && (r[0] == '-' || r[0] == '+') && strings.HasPrefix(r[1:], closer) {
				mod, r = r[0], r[1:]
			}
			if strings.HasPrefix(r, closer) {
				kind := tVarEnd
				if closer == "%}" {
					kind = tBlockEnd
				}
				lx.toks = append(lx.toks, token{kind: kind, line: lx.line})
				lx.pos += len(closer)
				if mod != 0 {
					lx.pos++
				}
				lx.stripNext = mod == '-'
				lx.trimNext = kind == tBlockEnd && lx.trim && mod != '+'
				return nil
			}
		}
		c := rest[0]
		switch {
		case c == '\'' || c == '"':
			v, n, err := lexString(rest)
			if err != nil {
				return lx.errorf("%v", err)
			}
			lx.toks = append(lx.toks, token{kind: tString, val: v, line: lx.line})
			lx.line += strings.Count(rest[:n], "\n")
			lx.pos += n
		case c >= '0' && c <= '9':
			n := 0
			for n < len(rest) && (rest[n] >= '0' && rest[n] <= '9' || rest[n] == '_') {
				n++
			}
			isFloat := false
			if n+1 < len(rest) && rest[n] == '.' && rest[n+1] >= '0' && rest[n+1] <= '9' {
				isFloat = true
				n++
				for n < len(rest) && (rest[n] >= '0' && rest[n] <= '9' || rest[n] == '_') {
					n++
				}
			}
			if n < len(rest) && (rest[n] == 'e' || rest[n] == 'E') {
				m := n + 1
				if m < len(rest) && (rest[m] == '+' || rest[m] == '-') {
					m++
				}
				if m < len(rest) && rest[m] >= '0' && rest[m] <= '9' {
					isFloat = true
					n = m
					for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
						n++
					}
				}
			}
			lit := strings.ReplaceAll(rest[:n], "_", "")
			t := token{line: lx.line, val: rest[:n]}
			if isFloat {
				f, err := strconv.ParseFloat(lit, 64)
				if err != nil {
					return lx.errorf("bad number %q", rest[:n])
				}
				t.kind, t.num = tFloat, f
			} else {
				v, err := strconv.ParseInt(lit, 10, 64)
				if err != nil {
					return lx.errorf("integer %q out of range", rest[:n])
				}
				t.kind, t.inum = tInt, v
			}
			lx.toks = append(lx.toks, t)
			lx.pos += n
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			n := 0
			for n < len(rest) && (rest[n] == '_' || rest[n] >= 'a' && rest[n] <= 'z' || rest[n] >= 'A' && rest[n] <= 'Z' || rest[n] >= '0' && rest[n] <= '9') {
				n++
			}
			lx.toks = append(lx.toks, token{kind: tName, val: rest[:n], line: lx.line})
			lx.pos += n
		default:
			op := ""
			for _, o := range operators {
				if strings.HasPrefix(rest, o) {
					op = o
					break
				}
			}
			if op == "" {
				r, _ := utf8.DecodeRuneInString(rest)
				return lx.errorf("unexpected character %q", r)
			}
			switch op {
			case "(", "[", "{":
				depth++
			case ")", "]", "}":
				depth--
				if depth < 0 {
					return lx.errorf("unbalanced %q", op)
				}
			}
			lx.toks = append(lx.toks, token{kind: tOp, val: op, line: lx.line})
			lx.pos += len(op)
		}
	}
}

// lexString decodes a Python string literal at the start of s, returning
// its value and length.
func lexString(s string) (string, int, error) {
	q := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == q:
			return b.String(), i + 1, nil
		case c == '\\' && i+1 < len(s):
			i++
			switch e := s[i]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '0':
				b.WriteByte(0)
			case 'a':
				b.WriteByte('\a')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'v':
				b.WriteByte('\v')
			case '\\', '\'', '"':
				b.WriteByte(e)
			case '\n':
				// line continuation
			case 'x', 'u', 'U':
				n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
				if i+n >= len(s) {
					return "", 0, fmt.Errorf("truncated \\%c escape", e)
				}
				v, err := strconv.ParseUint(s[i+1:i+1+n], 16, 32)
				if err != nil {
					return "", 0, fmt.Errorf("bad \\%c escape %q", e, s[i+1:i+1+n])
				}
				b.WriteRune(rune(v))
				i += n
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, fmt.Errorf("unterminated string")
}
