package jinja

import (
	"fmt"
	"slices"
)

// AST: statements render into the output, expressions evaluate to values.

type node interface{}

type (
	textNode   struct{ s string }
	outputNode struct {
		x    expr
		line int
	}
	ifNode struct {
		conds  []expr
		bodies [][]node
		els    []node
	}
	forNode struct {
		targets []string
		iter    expr
		cond    expr
		body    []node
		els     []node
		line    int
	}
	setNode struct {
		targets []string // one name, or several to unpack
		ns      string   // set ns.attr: the namespace variable
		attr    string
		x       expr
		body    []node // {% set x %}...{% endset %}
		line    int
	}
	macroNode    struct{ m *macro }
	breakNode    struct{}
	continueNode struct{}
	blockNode    struct{ body []node } // generation and other pass-through blocks
)

type macro struct {
	name     string
	params   []string
	defaults []expr // nil where the parameter has no default
	body     []node
}

type expr interface{}

type (
	litExpr  struct{ v any }
	nameExpr struct {
		name string
		line int
	}
	listExpr struct{ items []expr }
	dictExpr struct{ keys, vals []expr }
	attrExpr struct {
		obj  expr
		name string
		line int
	}
	itemExpr struct {
		obj, key expr
		line     int
	}
	sliceExpr struct {
		obj          expr
		lo, hi, step expr
		line         int
	}
	callExpr struct {
		fn      expr
		args    []expr
		kwNames []string
		kwVals  []expr
		line    int
	}
	filterExpr struct {
		x       expr
		name    string
		args    []expr
		kwNames []string
		kwVals  []expr
		line    int
	}
	testExpr struct {
		x    expr
		name string
		args []expr
		neg  bool
		line int
	}
	unaryExpr struct {
		op   string
		x    expr
		line int
	}
	binExpr struct {
		op   string
		l, r expr
		line int
	}
	cmpExpr struct {
		first expr
		ops   []string
		rest  []expr
		line  int
	}
	condExpr struct{ cond, yes, no expr }
)

type parser struct {
	toks []token
	pos  int
}

func (p *parser) peek() token { return p.toks[p.pos] }
func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tEOF {
		p.pos++
	}
	return t
}

func (p *parser) errorf(t token, format string, args ...any) error {
	return fmt.Errorf("line %d: %s", t.line, fmt.Sprintf(format, args...))
}

func (p *parser) isOp(v string) bool {
	t := p.peek()
	return t.kind == tOp && t.val == v
}

func (p *parser) isName(v string) bool {
	t := p.peek()
	return t.kind == tName && t.val == v
}

func (p *parser) expectOp(v string) error {
	t := p.next()
	if t.kind != tOp || t.val != v {
		return p.errorf(t, "expected '%s', got %s", v, t)
	}
	return nil
}

func (p *parser) expectName() (string, error) {
	t := p.next()
	if t.kind != tName {
		return "", p.errorf(t, "expected a name, got %s", t)
	}
	return t.val, nil
}

func (p *parser) expectBlockEnd() error {
	t := p.next()
	if t.kind != tBlockEnd {
		return p.errorf(t, "expected '%%}', got %s", t)
	}
	return nil
}

// parseTemplate parses the whole token stream.
func parseTemplate(toks []token) ([]node, error) {
	p := &parser{toks: toks}
	body, end, err := p.parseBody()
	if err != nil {
		return nil, err
	}
	if end != "" {
		return nil, p.errorf(p.toks[p.pos-1], "unexpected '%s'", end)
	}
	return body, nil
}

// parseBody parses nodes until the end of input or a block tag whose name
// is one of stop; it returns that name, consuming the name token only.
func (p *parser) parseBody(stop ...string) ([]node, string, error) {
	var out []node
	for {
		t := p.next()
		switch t.kind {
		case tEOF:
			if len(stop) > 0 {
				return nil, "", p.errorf(t, "missing '%s'", stop[len(stop)-1])
			}
			return out, "", nil
		case tText:
			out = append(out, &textNode{s: t.val})
		case tVarBegin:
			x, err := p.parseExpr()
			if err != nil {
				return nil, "", err
			}
			if e := p.next(); e.kind != tVarEnd {
				return nil, "", p.errorf(e, "expected '}}', got %s", e)
			}
			out = append(out, &outputNode{x: x, line: t.line})
		case tBlockBegin:
			nt := p.peek()
			if nt.kind != tName {
				return nil, "", p.errorf(nt, "expected a statement, got %s", nt)
			}
			if slices.Contains(stop, nt.val) {
				p.next()
				return out, nt.val, nil
			}
			n, err := p.parseStatement()
			if err != nil {
				return nil, "", err
			}
			if n != nil {
				out = append(out, n)
			}
		default:
			return nil, "", p.errorf(t, "unexpected %s", t)
		}
	}
}

func (p *parser) parseStatement() (node, error) {
	t := p.next()
	switch t.val {
	case "if":
		return p.parseIf()
	case "for":
		return p.parseFor(t)
	case "set":
		return p.parseSet(t)
	case "macro":
		return p.parseMacro()
	case "break", "continue":
		if err := p.expectBlockEnd(); err != nil {
			return nil, err
		}
		if t.val == "break" {
			return &breakNode{}, nil
		}
		return &continueNode{}, nil
	case "generation":
		if err := p.expectBlockEnd(); err != nil {
			return nil, err
		}
		body, _, err := p.parseBody("endgeneration")
		if err != nil {
			return nil, err
		}
		return &blockNode{body: body}, p.expectBlockEnd()
	case "endif", "endfor", "endset", "endmacro", "else", "elif", "endgeneration":
		return nil, p.errorf(t, "unexpected '%s'", t.val)
	}
	return nil, p.errorf(t, "unsupported statement '%s'", t.val)
}

func (p *parser) parseIf() (node, error) {
	n := &ifNode{}
	for {
		cond, err := p.parseExpr()
		if err != nil {
			return nil, err
		}
		if err := p.expectBlockEnd(); err != nil {
			return nil, err
		}
		body, end, err := p.parseBody("elif", "else", "endif")
		if err != nil {
			return nil, err
		}
		n.conds, n.bodies = append(n.conds, cond), append(n.bodies, body)
		switch end {
		case "elif":
			continue
		case "else":
			if err := p.expectBlockEnd(); err != nil {
				return nil, err
			}
			els, _, err := p.parseBody("endif")
			if err != nil {
				return nil, err
			}
			n.els = els
		}
		return n, p.expectBlockEnd()
	}
}

func (p *parser) parseFor(t token) (node, error) {
	n := &forNode{line: t.line}
	for {
		name, err := p.expectName()
		if err != nil {
			return nil, err
		}
		n.targets = append(n.targets, name)
		if !p.isOp(",") {
			break
		}
		p.next()
	}
	if !p.isName("in") {
		return nil, p.errorf(p.peek(), "expected 'in', got %s", p.peek())
	}
	p.next()
	iter, err := p.parseOr() // no conditional expression: `if` filters
	if err != nil {
		return nil, err
	}
	n.iter = iter
	if p.isName("if") {
		p.next()
		if n.cond, err = p.parseOr(); err != nil {
			return nil, err
		}
	}
	if p.isName("recursive") {
		return nil, p.errorf(p.peek(), "unsupported: recursive loops")
	}
	if err := p.expectBlockEnd(); err != nil {
		return nil, err
	}
	body, end, err := p.parseBody("else", "endfor")
	if err != nil {
		return nil, err
	}
	n.body = body
	if end == "else" {
		if err := p.expectBlockEnd(); err != nil {
			return nil, err
		}
		if n.els, _, err = p.parseBody("endfor"); err != nil {
			return nil, err
		}
	}
	return n, p.expectBlockEnd()
}

func (p *parser) parseSet(t token) (node, error) {
	n := &setNode{line: t.line}
	name, err := p.expectName()
	if err != nil {
		return nil, err
	}
	switch {
	case p.isOp("."):
		p.next()
		attr, err := p.expectName()
		if err != nil {
			return nil, err
		}
		n.ns, n.attr = name, attr
	default:
		n.targets = []string{name}
		for p.isOp(",") {
			p.next()
			name, err := p.expectName()
			if err != nil {
				return nil, err
			}
			n.targets = append(n.targets, name)
		}
	}
	if p.peek().kind == tBlockEnd && n.ns == "" && len(n.targets) == 1 {
		p.next()
		body, _, err := p.parseBody("endset")
		if err != nil {
			return nil, err
		}
		n.body = body
		return n, p.expectBlockEnd()
	}
	if err := p.expectOp("="); err != nil {
		return nil, err
	}
	if n.x, err = p.parseTuple(); err != nil {
		return nil, err
	}
	return n, p.expectBlockEnd()
}

func (p *parser) parseMacro() (node, error) {
	name, err := p.expectName()
	if err != nil {
		return nil, err
	}
	m := &macro{name: name}
	if err := p.expectOp("("); err != nil {
		return nil, err
	}
	for !p.isOp(")") {
		param, err := p.expectName()
		if err != nil {
			return nil, err
		}
		var def expr
		if p.isOp("=") {
			p.next()
			if def, err = p.parseExpr(); err != nil {
				return nil, err
			}
		}
		m.params, m.defaults = append(m.params, param), append(m.defaults, def)
		if !p.isOp(",") {
			break
		}
		p.next()
	}
	if err := p.expectOp(")"); err != nil {
		return nil, err
	}
	if err := p.expectBlockEnd(); err != nil {
		return nil, err
	}
	if m.body, _, err = p.parseBody("endmacro"); err != nil {
		return nil, err
	}
	return &macroNode{m: m}, p.expectBlockEnd()
}

// parseTuple parses `a, b, c` (a tuple) or a single expression.
func (p *parser) parseTuple() (expr, error) {
	x, err := p.parseExpr()
	if err != nil || !p.isOp(",") {
		return x, err
	}
	items := []expr{x}
	for p.isOp(",") {
		p.next()
		if t := p.peek(); t.kind == tBlockEnd || t.kind == tVarEnd {
			break
		}
		x, err := p.parseExpr()
		if err != nil {
			return nil, err
		}
		items = append(items, x)
	}
	return &listExpr{items: items}, nil
}

// parseExpr parses a conditional expression: `a if c else b`.
func (p *parser) parseExpr() (expr, error) {
	x, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	for p.isName("if") {
		p.next()
		cond, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		var no expr
		if p.isName("else") {
			p.next()
			if no, err = p.parseExpr(); err != nil {
				return nil, err
			}
		}
		x = &condExpr{cond: cond, yes: x, no: no}
	}
	return x, nil
}

func (p *parser) parseOr() (expr, error) {
	x, err := p.parseAnd()
	for err == nil && p.isName("or") {
		t := p.next()
		var r expr
		if r, err = p.parseAnd(); err == nil {
			x = &binExpr{op: "or", l: x, r: r, line: t.line}
		}
	}
	return x, err
}

func (p *parser) parseAnd() (expr, error) {
	x, err := p.parseNot()
	for err == nil && p.isName("and") {
		t := p.next()
		var r expr
		if r, err = p.parseNot(); err == nil {
			x = &binExpr{op: "and", l: x, r: r, line: t.line}
		}
	}
	return x, err
}

func (p *parser) parseNot() (expr, error) {
	if p.isName("not") {
		t := p.next()
		x, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		return &unaryExpr{op: "not", x: x, line: t.line}, nil
	}
	return p.parseCompare()
}

func (p *parser) parseCompare() (expr, error) {
	x, err := p.parseMath1()
	if err != nil {
		return nil, err
	}
	c := &cmpExpr{first: x, line: p.peek().line}
	for {
		t := p.peek()
		op := ""
		switch {
		case t.kind == tOp && slices.Contains([]string{"==", "!=", "<", "<=", ">", ">="}, t.val):
			op = t.val
			p.next()
		case t.kind == tName && t.val == "in":
			op = "in"
			p.next()
		case t.kind == tName && t.val == "not" && p.toks[p.pos+1].kind == tName && p.toks[p.pos+1].val == "in":
			op = "not in"
			p.pos += 2
		}
		if op == "" {
			break
		}
		r, err := p.parseMath1()
		if err != nil {
			return nil, err
		}
		c.ops, c.rest = append(c.ops, op), append(c.rest, r)
	}
	if len(c.ops) == 0 {
		return x, nil
	}
	return c, nil
}

func (p *parser) parseMath1() (expr, error) {
	x, err := p.parseConcat()
	for err == nil && (p.isOp("+") || p.isOp("-")) {
		t := p.next()
		var r expr
		if r, err = p.parseConcat(); err == nil {
			x = &binExpr{op: t.val, l: x, r: r, line: t.line}
		}
	}
	return x, err
}

func (p *parser) parseConcat() (expr, error) {
	x, err := p.parseMath2()
	for err == nil && p.isOp("~") {
		t := p.next()
		var r expr
		if r, err = p.parseMath2(); err == nil {
			x = &binExpr{op: "~", l: x, r: r, line: t.line}
		}
	}
	return x, err
}

func (p *parser) parseMath2() (expr, error) {
	x, err := p.parsePow()
	for err == nil && (p.isOp("*") || p.isOp("/") || p.isOp("//") || p.isOp("%")) {
		t := p.next()
		var r expr
		if r, err = p.parsePow(); err == nil {
			x = &binExpr{op: t.val, l: x, r: r, line: t.line}
		}
	}
	return x, err
}

func (p *parser) parsePow() (expr, error) {
	x, err := p.parseUnary(true)
	for err == nil && p.isOp("**") {
		t := p.next()
		var r expr
		if r, err = p.parseUnary(true); err == nil {
			x = &binExpr{op: "**", l: x, r: r, line: t.line}
		}
	}
	return x, err
}

func (p *parser) parseUnary(withFilter bool) (expr, error) {
	var x expr
	var err error
	if p.isOp("-") || p.isOp("+") {
		t := p.next()
		if x, err = p.parseUnary(false); err != nil {
			return nil, err
		}
		x = &unaryExpr{op: t.val, x: x, line: t.line}
	} else {
		if x, err = p.parsePrimary(); err != nil {
			return nil, err
		}
		if x, err = p.parsePostfix(x); err != nil {
			return nil, err
		}
	}
	if withFilter {
		return p.parseFilters(x)
	}
	return x, nil
}

func (p *parser) parsePrimary() (expr, error) {
	t := p.next()
	switch t.kind {
	case tString:
		s := t.val
		for p.peek().kind == tString { // adjacent literals concatenate
			s += p.next().val
		}
		return &litExpr{v: s}, nil
	case tInt:
		return &litExpr{v: t.inum}, nil
	case tFloat:
		return &litExpr{v: t.num}, nil
	case tName:
		switch t.val {
		case "true", "True":
			return &litExpr{v: true}, nil
		case "false", "False":
			return &litExpr{v: false}, nil
		case "none", "None":
			return &litExpr{v: nil}, nil
		}
		return &nameExpr{name: t.val, line: t.line}, nil
	case tOp:
		switch t.val {
		case "(":
			if p.isOp(")") {
				p.next()
				return &listExpr{}, nil
			}
			x, err := p.parseExpr()
			if err != nil {
				return nil, err
			}
			if p.isOp(",") {
				items := []expr{x}
				for p.isOp(",") {
					p.next()
					if p.isOp(")") {
						break
					}
					x, err := p.parseExpr()
					if err != nil {
						return nil, err
					}
					items = append(items, x)
				}
				x = &listExpr{items: items}
			}
			return x, p.expectOp(")")
		case "[":
			l := &listExpr{}
			for !p.isOp("]") {
				x, err := p.parseExpr()
				if err != nil {
					return nil, err
				}
				l.items = append(l.items, x)
				if !p.isOp(",") {
					break
				}
				p.next()
			}
			return l, p.expectOp("]")
		case "{":
			d := &dictExpr{}
			for !p.isOp("}") {
				k, err := p.parseExpr()
				if err != nil {
					return nil, err
				}
				if err := p.expectOp(":"); err != nil {
					return nil, err
				}
				v, err := p.parseExpr()
				if err != nil {
					return nil, err
				}
				d.keys, d.vals = append(d.keys, k), append(d.vals, v)
				if !p.isOp(",") {
					break
				}
				p.next()
			}
			return d, p.expectOp("}")
		}
	}
	return nil, p.errorf(t, "unexpected %s", t)
}

func (p *parser) parsePostfix(x expr) (expr, error) {
	for {
		t := p.peek()
		switch {
		case p.isOp("."):
			p.next()
			nt := p.next()
			switch nt.kind {
			case tName:
				x = &attrExpr{obj: x, name: nt.val, line: nt.line}
			case tInt: // foo.0 is foo[0]
				x = &itemExpr{obj: x, key: &litExpr{v: nt.inum}, line: nt.line}
			default:
				return nil, p.errorf(nt, "expected an attribute name, got %s", nt)
			}
		case p.isOp("["):
			p.next()
			var parts [3]expr
			colons := 0
			for !p.isOp("]") {
				if p.isOp(":") {
					p.next()
					colons++
					if colons > 2 {
						return nil, p.errorf(t, "bad slice")
					}
					continue
				}
				e, err := p.parseExpr()
				if err != nil {
					return nil, err
				}
				parts[colons] = e
			}
			p.next()
			if colons == 0 {
				if parts[0] == nil {
					return nil, p.errorf(t, "empty subscript")
				}
				x = &itemExpr{obj: x, key: parts[0], line: t.line}
			} else {
				x = &sliceExpr{obj: x, lo: parts[0], hi: parts[1], step: parts[2], line: t.line}
			}
		case p.isOp("("):
			p.next()
			c := &callExpr{fn: x, line: t.line}
			var err error
			if c.args, c.kwNames, c.kwVals, err = p.parseArgs(); err != nil {
				return nil, err
			}
			x = c
		default:
			return x, nil
		}
	}
}

// parseArgs parses call arguments after '(' up to and including ')'.
func (p *parser) parseArgs() (args []expr, kwNames []string, kwVals []expr, err error) {
	for !p.isOp(")") {
		if p.peek().kind == tName && p.toks[p.pos+1].kind == tOp && p.toks[p.pos+1].val == "=" {
			name := p.next().val
			p.next()
			v, err := p.parseExpr()
			if err != nil {
				return nil, nil, nil, err
			}
			kwNames, kwVals = append(kwNames, name), append(kwVals, v)
		} else {
			if len(kwNames) > 0 {
				return nil, nil, nil, p.errorf(p.peek(), "positional argument after keyword argument")
			}
			v, err := p.parseExpr()
			if err != nil {
				return nil, nil, nil, err
			}
			args = append(args, v)
		}
		if !p.isOp(",") {
			break
		}
		p.next()
	}
	return args, kwNames, kwVals, p.expectOp(")")
}

func (p *parser) parseFilters(x expr) (expr, error) {
	for {
		switch {
		case p.isOp("|"):
			p.next()
			t := p.peek()
			name, err := p.expectName()
			if err != nil {
				return nil, err
			}
			for p.isOp(".") { // dotted filter names
				p.next()
				n, err := p.expectName()
				if err != nil {
					return nil, err
				}
				name += "." + n
			}
			f := &filterExpr{x: x, name: name, line: t.line}
			if p.isOp("(") {
				p.next()
				if f.args, f.kwNames, f.kwVals, err = p.parseArgs(); err != nil {
					return nil, err
				}
			}
			x = f
		case p.isName("is"):
			t := p.next()
			te := &testExpr{x: x, line: t.line}
			if p.isName("not") {
				p.next()
				te.neg = true
			}
			name, err := p.expectName()
			if err != nil {
				return nil, err
			}
			// Tests named like keywords lex as names too (none, true, ...).
			te.name = name
			switch {
			case p.isOp("("):
				p.next()
				if te.args, _, _, err = p.parseArgs(); err != nil {
					return nil, err
				}
			case p.startsPrimary():
				a, err := p.parsePrimary()
				if err != nil {
					return nil, err
				}
				if a, err = p.parsePostfix(a); err != nil {
					return nil, err
				}
				te.args = []expr{a}
			}
			x = te
		default:
			return x, nil
		}
	}
}

// startsPrimary reports whether the next token can start a test's single
// argument (`x is divisibleby 3`, `x is sameas none`).
func (p *parser) startsPrimary() bool {
	t := p.peek()
	switch t.kind {
	case tString, tInt, tFloat:
		return true
	case tName:
		return !slices.Contains([]string{"else", "or", "and", "if", "is", "in", "not", "recursive"}, t.val)
	case tOp:
		return t.val == "[" || t.val == "{"
	}
	return false
}
