package jinja

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Options bound and configure rendering.
type Options struct {
	// MaxOutput is the most bytes a render may produce (default 4 MiB).
	MaxOutput int
	// MaxSteps bounds the statements and loop iterations a render runs
	// (default 1,000,000).
	MaxSteps int
	// Now is the clock strftime_now reads (default time.Now).
	Now func() time.Time
}

// Template is a parsed template, safe for concurrent Render calls.
type Template struct {
	body []node
	opts Options
}

// Parse parses src with Hugging Face's environment settings (trim_blocks
// and lstrip_blocks on).
func Parse(src string, opts ...Options) (*Template, error) {
	toks, err := lex(src, true, true)
	if err != nil {
		return nil, fmt.Errorf("jinja: %w", err)
	}
	body, err := parseTemplate(toks)
	if err != nil {
		return nil, fmt.Errorf("jinja: %w", err)
	}
	t := &Template{body: body}
	if len(opts) > 0 {
		t.opts = opts[0]
	}
	if t.opts.MaxOutput <= 0 {
		t.opts.MaxOutput = 4 << 20
	}
	if t.opts.MaxSteps <= 0 {
		t.opts.MaxSteps = 1_000_000
	}
	if t.opts.Now == nil {
		t.opts.Now = time.Now
	}
	return t, nil
}

// RaiseError is the error a template's raise_exception(msg) returns.
type RaiseError struct{ Message string }

func (e *RaiseError) Error() string { return e.Message }

// Render renders the template with vars (converted with FromGo). Errors
// name the template line; a raise_exception call returns a *RaiseError
// (wrapped).
func (t *Template) Render(vars map[string]any) (string, error) {
	s := &state{t: t, scopes: []map[string]any{globals(t), {}}}
	for k, v := range vars {
		s.scopes[1][k] = FromGo(v)
	}
	var b strings.Builder
	s.out = &b
	err := s.renderNodes(t.body)
	switch {
	case errors.Is(err, errBreak), errors.Is(err, errContinue):
		return "", errors.New("jinja: break or continue outside a loop")
	case err != nil:
		return "", fmt.Errorf("jinja: %w", err)
	}
	return b.String(), nil
}

var (
	errBreak    = errors.New("break")
	errContinue = errors.New("continue")
)

type state struct {
	t      *Template
	scopes []map[string]any
	out    *strings.Builder
	steps  int
}

func (s *state) step() error {
	s.steps++
	if s.steps > s.t.opts.MaxSteps {
		return fmt.Errorf("render exceeded %d steps", s.t.opts.MaxSteps)
	}
	return nil
}

func (s *state) write(str string) error {
	if s.out.Len()+len(str) > s.t.opts.MaxOutput {
		return fmt.Errorf("render exceeded %d bytes of output", s.t.opts.MaxOutput)
	}
	s.out.WriteString(str)
	return nil
}

func (s *state) lookup(name string) (any, bool) {
	for i := len(s.scopes) - 1; i >= 0; i-- {
		if v, ok := s.scopes[i][name]; ok {
			return v, true
		}
	}
	return nil, false
}

func (s *state) set(name string, v any) { s.scopes[len(s.scopes)-1][name] = v }

func (s *state) push() { s.scopes = append(s.scopes, map[string]any{}) }
func (s *state) pop()  { s.scopes = s.scopes[:len(s.scopes)-1] }

func lineErr(line int, err error) error {
	var re *RaiseError
	if errors.As(err, &re) || strings.HasPrefix(err.Error(), "line ") {
		return err
	}
	return fmt.Errorf("line %d: %w", line, err)
}

func (s *state) renderNodes(nodes []node) error {
	for _, n := range nodes {
		if err := s.step(); err != nil {
			return err
		}
		if err := s.render(n); err != nil {
			return err
		}
	}
	return nil
}

func (s *state) render(n node) error {
	switch n := n.(type) {
	case *textNode:
		return s.write(n.s)
	case *outputNode:
		v, err := s.eval(n.x)
		if err != nil {
			return lineErr(n.line, err)
		}
		return s.write(str(v))
	case *ifNode:
		for i, c := range n.conds {
			v, err := s.eval(c)
			if err != nil {
				return err
			}
			if truthy(v) {
				return s.renderNodes(n.bodies[i])
			}
		}
		return s.renderNodes(n.els)
	case *forNode:
		return s.renderFor(n)
	case *setNode:
		return s.renderSet(n)
	case *macroNode:
		s.set(n.m.name, n.m)
		return nil
	case *breakNode:
		return errBreak
	case *continueNode:
		return errContinue
	case *blockNode:
		return s.renderNodes(n.body)
	}
	return fmt.Errorf("unknown node %T", n)
}

// loopInfo is the loop variable of a for loop.
type loopInfo struct {
	index int // 0-based
	items []any
}

func (l *loopInfo) attr(name string) (any, bool) {
	n := len(l.items)
	switch name {
	case "index":
		return int64(l.index + 1), true
	case "index0":
		return int64(l.index), true
	case "revindex":
		return int64(n - l.index), true
	case "revindex0":
		return int64(n - l.index - 1), true
	case "first":
		return l.index == 0, true
	case "last":
		return l.index == n-1, true
	case "length":
		return int64(n), true
	case "depth":
		return int64(1), true
	case "depth0":
		return int64(0), true
	case "previtem":
		if l.index > 0 {
			return l.items[l.index-1], true
		}
		return Undefined{name: "loop.previtem"}, true
	case "nextitem":
		if l.index+1 < n {
			return l.items[l.index+1], true
		}
		return Undefined{name: "loop.nextitem"}, true
	case "cycle":
		return callable(func(_ *state, args []any, _ *Dict) (any, error) {
			if len(args) == 0 {
				return nil, errors.New("loop.cycle needs at least one argument")
			}
			return args[l.index%len(args)], nil
		}), true
	}
	return nil, false
}

func (s *state) renderFor(n *forNode) error {
	it, err := s.eval(n.iter)
	if err != nil {
		return err
	}
	items, err := iterate(it)
	if err != nil {
		return lineErr(n.line, err)
	}
	s.push()
	defer s.pop()
	if n.cond != nil { // the filter sees the target, not loop
		kept := make([]any, 0, len(items))
		for _, item := range items {
			if err := s.step(); err != nil {
				return err
			}
			if err := s.bind(n.targets, item, n.line); err != nil {
				return err
			}
			v, err := s.eval(n.cond)
			if err != nil {
				return err
			}
			if truthy(v) {
				kept = append(kept, item)
			}
		}
		items = kept
	}
	if len(items) == 0 {
		return s.renderNodes(n.els)
	}
	loop := &loopInfo{items: items}
	outer, hadOuter := s.scopes[len(s.scopes)-1]["loop"]
	for i, item := range items {
		if err := s.step(); err != nil {
			return err
		}
		loop.index = i
		s.set("loop", loop)
		if err := s.bind(n.targets, item, n.line); err != nil {
			return err
		}
		err := s.renderNodes(n.body)
		if errors.Is(err, errBreak) {
			break
		}
		if err != nil && !errors.Is(err, errContinue) {
			return err
		}
	}
	if hadOuter {
		s.set("loop", outer)
	}
	return nil
}

// bind assigns item to the loop targets, unpacking for several.
func (s *state) bind(targets []string, item any, line int) error {
	if len(targets) == 1 {
		s.set(targets[0], item)
		return nil
	}
	parts, err := iterate(item)
	if err != nil || len(parts) != len(targets) {
		return lineErr(line, fmt.Errorf("cannot unpack %s into %d names", typeName(item), len(targets)))
	}
	for i, t := range targets {
		s.set(t, parts[i])
	}
	return nil
}

func (s *state) renderSet(n *setNode) error {
	var v any
	if n.body != nil {
		saved := s.out
		var b strings.Builder
		s.out = &b
		err := s.renderNodes(n.body)
		s.out = saved
		if err != nil {
			return err
		}
		v = b.String()
	} else {
		var err error
		if v, err = s.eval(n.x); err != nil {
			return err
		}
	}
	if n.ns != "" {
		obj, _ := s.lookup(n.ns)
		ns, ok := obj.(*namespace)
		if !ok {
			return lineErr(n.line, fmt.Errorf("cannot set attribute %s on %s (only a namespace)", n.attr, typeName(obj)))
		}
		ns.attrs.Set(n.attr, v)
		return nil
	}
	return s.bind(n.targets, v, n.line)
}

func (s *state) eval(x expr) (any, error) {
	switch x := x.(type) {
	case *litExpr:
		return x.v, nil
	case *nameExpr:
		if v, ok := s.lookup(x.name); ok {
			return v, nil
		}
		return Undefined{name: x.name}, nil
	case *listExpr:
		out := make([]any, len(x.items))
		for i, e := range x.items {
			v, err := s.eval(e)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case *dictExpr:
		d := NewDict()
		for i := range x.keys {
			k, err := s.eval(x.keys[i])
			if err != nil {
				return nil, err
			}
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("dict keys must be strings, got %s", typeName(k))
			}
			v, err := s.eval(x.vals[i])
			if err != nil {
				return nil, err
			}
			d.Set(ks, v)
		}
		return d, nil
	case *attrExpr:
		obj, err := s.eval(x.obj)
		if err != nil {
			return nil, err
		}
		return getAttr(obj, x.name), nil
	case *itemExpr:
		obj, err := s.eval(x.obj)
		if err != nil {
			return nil, err
		}
		key, err := s.eval(x.key)
		if err != nil {
			return nil, err
		}
		v, err := getItem(obj, key)
		return v, lineOr(x.line, err)
	case *sliceExpr:
		return s.evalSlice(x)
	case *callExpr:
		return s.evalCall(x)
	case *filterExpr:
		return s.evalFilter(x)
	case *testExpr:
		return s.evalTest(x)
	case *unaryExpr:
		v, err := s.eval(x.x)
		if err != nil {
			return nil, err
		}
		switch x.op {
		case "not":
			return !truthy(v), nil
		case "-":
			switch n := v.(type) {
			case int64:
				return -n, nil
			case float64:
				return -n, nil
			case bool:
				if n {
					return int64(-1), nil
				}
				return int64(0), nil
			}
			return nil, lineErr(x.line, fmt.Errorf("bad operand type for unary -: %s", typeName(v)))
		case "+":
			if _, ok := toNumber(v); !ok {
				return nil, lineErr(x.line, fmt.Errorf("bad operand type for unary +: %s", typeName(v)))
			}
			return v, nil
		}
	case *binExpr:
		return s.evalBin(x)
	case *cmpExpr:
		l, err := s.eval(x.first)
		if err != nil {
			return nil, err
		}
		for i, op := range x.ops {
			r, err := s.eval(x.rest[i])
			if err != nil {
				return nil, err
			}
			ok, err := compareOp(op, l, r)
			if err != nil {
				return nil, lineErr(x.line, err)
			}
			if !ok {
				return false, nil
			}
			l = r
		}
		return true, nil
	case *condExpr:
		c, err := s.eval(x.cond)
		if err != nil {
			return nil, err
		}
		if truthy(c) {
			return s.eval(x.yes)
		}
		if x.no == nil {
			return Undefined{name: "else branch"}, nil
		}
		return s.eval(x.no)
	}
	return nil, fmt.Errorf("unknown expression %T", x)
}

func lineOr(line int, err error) error {
	if err == nil {
		return nil
	}
	return lineErr(line, err)
}

func compareOp(op string, l, r any) (bool, error) {
	switch op {
	case "==":
		return equal(l, r), nil
	case "!=":
		return !equal(l, r), nil
	case "in":
		return contains(r, l)
	case "not in":
		ok, err := contains(r, l)
		return !ok, err
	}
	c, err := compare(l, r)
	if err != nil {
		return false, err
	}
	switch op {
	case "<":
		return c < 0, nil
	case "<=":
		return c <= 0, nil
	case ">":
		return c > 0, nil
	case ">=":
		return c >= 0, nil
	}
	return false, fmt.Errorf("unknown operator %s", op)
}

func (s *state) evalBin(x *binExpr) (any, error) {
	l, err := s.eval(x.l)
	if err != nil {
		return nil, err
	}
	switch x.op { // short-circuit, returning the operand as Python does
	case "and":
		if !truthy(l) {
			return l, nil
		}
		return s.eval(x.r)
	case "or":
		if truthy(l) {
			return l, nil
		}
		return s.eval(x.r)
	}
	r, err := s.eval(x.r)
	if err != nil {
		return nil, err
	}
	v, err := arith(x.op, l, r)
	return v, lineOr(x.line, err)
}

// maxValueBytes bounds the strings and lists a render builds.
const maxValueBytes = 16 << 20

var errTooBig = errors.New("value larger than 16 MiB")

func arith(op string, l, r any) (any, error) {
	if op == "~" {
		return str(l) + str(r), nil
	}
	if _, ok := l.(Undefined); ok {
		return nil, fmt.Errorf("%s is undefined", l.(Undefined).name)
	}
	if _, ok := r.(Undefined); ok {
		return nil, fmt.Errorf("%s is undefined", r.(Undefined).name)
	}
	li, lInt := asInt(l)
	ri, rInt := asInt(r)
	lf, lNum := toNumber(l)
	rf, rNum := toNumber(r)
	switch op {
	case "+":
		switch {
		case lInt && rInt:
			return li + ri, nil
		case lNum && rNum:
			return lf + rf, nil
		}
		if ls, ok := l.(string); ok {
			if rs, ok := r.(string); ok {
				if len(ls)+len(rs) > maxValueBytes {
					return nil, errTooBig
				}
				return ls + rs, nil
			}
		}
		if ll, ok := l.([]any); ok {
			if rl, ok := r.([]any); ok {
				if len(ll)+len(rl) > maxValueBytes/8 {
					return nil, errTooBig
				}
				return append(append([]any{}, ll...), rl...), nil
			}
		}
	case "-":
		switch {
		case lInt && rInt:
			return li - ri, nil
		case lNum && rNum:
			return lf - rf, nil
		}
	case "*":
		switch {
		case lInt && rInt:
			return li * ri, nil
		case lNum && rNum:
			return lf * rf, nil
		}
		if rInt {
			if ls, ok := l.(string); ok {
				if ri > 0 && int64(len(ls))*ri > maxValueBytes {
					return nil, errTooBig
				}
				return strings.Repeat(ls, int(max(ri, 0))), nil
			}
		}
	case "/":
		if lNum && rNum {
			if rf == 0 {
				return nil, errors.New("division by zero")
			}
			return lf / rf, nil
		}
	case "//":
		if lNum && rNum {
			if rf == 0 {
				return nil, errors.New("integer division by zero")
			}
			if lInt && rInt {
				q := li / ri
				if (li%ri != 0) && ((li < 0) != (ri < 0)) {
					q--
				}
				return q, nil
			}
			return math.Floor(lf / rf), nil
		}
	case "%":
		if lNum && rNum {
			if rf == 0 {
				return nil, errors.New("modulo by zero")
			}
			if lInt && rInt {
				m := li % ri
				if m != 0 && (m < 0) != (ri < 0) {
					m += ri
				}
				return m, nil
			}
			m := math.Mod(lf, rf)
			if m != 0 && (m < 0) != (rf < 0) {
				m += rf
			}
			return m, nil
		}
	case "**":
		if lInt && rInt && ri >= 0 {
			return int64(math.Pow(float64(li), float64(ri))), nil
		}
		if lNum && rNum {
			return math.Pow(lf, rf), nil
		}
	}
	return nil, fmt.Errorf("unsupported operand types for %s: %s and %s", op, typeName(l), typeName(r))
}

// getAttr is Jinja's getattr: an attribute, else an item (dict key).
func getAttr(obj any, name string) any {
	switch o := obj.(type) {
	case *Dict:
		if v, ok := o.m[name]; ok {
			return v
		}
		if m := method(obj, name); m != nil {
			return m
		}
	case *namespace:
		if v, ok := o.attrs.m[name]; ok {
			return v
		}
	case *loopInfo:
		if v, ok := o.attr(name); ok {
			return v
		}
	default:
		if m := method(obj, name); m != nil {
			return m
		}
	}
	return Undefined{name: name}
}

// getItem is Jinja's getitem: an item, else an attribute.
func getItem(obj, key any) (any, error) {
	switch o := obj.(type) {
	case []any:
		i, ok := asInt(key)
		if !ok {
			return Undefined{name: "item"}, nil
		}
		if i < 0 {
			i += int64(len(o))
		}
		if i < 0 || i >= int64(len(o)) {
			return Undefined{name: fmt.Sprintf("item %d", i)}, nil
		}
		return o[i], nil
	case string:
		i, ok := asInt(key)
		if !ok {
			return Undefined{name: "item"}, nil
		}
		r := []rune(o)
		if i < 0 {
			i += int64(len(r))
		}
		if i < 0 || i >= int64(len(r)) {
			return Undefined{name: fmt.Sprintf("item %d", i)}, nil
		}
		return string(r[i]), nil
	case *Dict:
		if k, ok := key.(string); ok {
			if v, ok := o.m[k]; ok {
				return v, nil
			}
			return Undefined{name: k}, nil
		}
		return Undefined{name: "item"}, nil
	case Undefined:
		return nil, fmt.Errorf("%s is undefined", o.name)
	}
	if k, ok := key.(string); ok {
		return getAttr(obj, k), nil
	}
	return Undefined{name: "item"}, nil
}

func (s *state) evalSlice(x *sliceExpr) (any, error) {
	obj, err := s.eval(x.obj)
	if err != nil {
		return nil, err
	}
	var bounds [3]*int64
	for i, e := range []expr{x.lo, x.hi, x.step} {
		if e == nil {
			continue
		}
		v, err := s.eval(e)
		if err != nil {
			return nil, err
		}
		if v == nil {
			continue
		}
		n, ok := asInt(v)
		if !ok {
			return nil, lineErr(x.line, fmt.Errorf("slice indices must be integers, got %s", typeName(v)))
		}
		bounds[i] = &n
	}
	var items []any
	isStr := false
	switch o := obj.(type) {
	case []any:
		items = o
	case string:
		isStr = true
		for _, r := range o {
			items = append(items, string(r))
		}
	default:
		return nil, lineErr(x.line, fmt.Errorf("%s is not sliceable", typeName(obj)))
	}
	out, err := pySlice(items, bounds[0], bounds[1], bounds[2])
	if err != nil {
		return nil, lineErr(x.line, err)
	}
	if isStr {
		var b strings.Builder
		for _, c := range out {
			b.WriteString(c.(string))
		}
		return b.String(), nil
	}
	return out, nil
}

// pySlice is Python's seq[lo:hi:step].
func pySlice(items []any, lo, hi, step *int64) ([]any, error) {
	n := int64(len(items))
	st := int64(1)
	if step != nil {
		st = *step
	}
	if st == 0 {
		return nil, errors.New("slice step cannot be zero")
	}
	clamp := func(p *int64, def int64, lower, upper int64) int64 {
		if p == nil {
			return def
		}
		v := *p
		if v < 0 {
			v += n
		}
		return min(max(v, lower), upper)
	}
	var out []any
	if st > 0 {
		a, b := clamp(lo, 0, 0, n), clamp(hi, n, 0, n)
		for i := a; i < b; i += st {
			out = append(out, items[i])
		}
	} else {
		a, b := clamp(lo, n-1, -1, n-1), clamp(hi, -1, -1, n-1)
		if hi != nil && *hi < 0 && *hi+n < 0 {
			b = -1
		}
		for i := a; i > b; i += st {
			out = append(out, items[i])
		}
	}
	if out == nil {
		out = []any{}
	}
	return out, nil
}

func (s *state) evalArgs(args []expr, kwNames []string, kwVals []expr) ([]any, *Dict, error) {
	vals := make([]any, len(args))
	for i, a := range args {
		v, err := s.eval(a)
		if err != nil {
			return nil, nil, err
		}
		vals[i] = v
	}
	var kw *Dict
	if len(kwNames) > 0 {
		kw = NewDict()
		for i, n := range kwNames {
			v, err := s.eval(kwVals[i])
			if err != nil {
				return nil, nil, err
			}
			kw.Set(n, v)
		}
	}
	return vals, kw, nil
}

func (s *state) evalCall(x *callExpr) (any, error) {
	fn, err := s.eval(x.fn)
	if err != nil {
		return nil, err
	}
	args, kw, err := s.evalArgs(x.args, x.kwNames, x.kwVals)
	if err != nil {
		return nil, err
	}
	v, err := s.call(fn, args, kw, x.fn)
	if err != nil {
		var re *RaiseError
		if errors.As(err, &re) {
			return nil, err
		}
		return nil, lineErr(x.line, err)
	}
	return v, nil
}

func (s *state) call(fn any, args []any, kw *Dict, what expr) (any, error) {
	switch f := fn.(type) {
	case callable:
		return f(s, args, kw)
	case *macro:
		return s.callMacro(f, args, kw)
	case Undefined:
		return nil, fmt.Errorf("%s is undefined (not a function)", f.name)
	}
	return nil, fmt.Errorf("%s object is not callable", typeName(fn))
}

func (s *state) callMacro(m *macro, args []any, kw *Dict) (any, error) {
	if len(args) > len(m.params) {
		return nil, fmt.Errorf("macro %s takes %d arguments, got %d", m.name, len(m.params), len(args))
	}
	saved := s.scopes
	s.scopes = []map[string]any{s.scopes[0], s.scopes[1], {}}
	defer func() { s.scopes = saved }()
	for i, p := range m.params {
		var v any = Undefined{name: p}
		switch {
		case i < len(args):
			v = args[i]
		case kw != nil && func() bool { _, ok := kw.m[p]; return ok }():
			v = kw.m[p]
		case m.defaults[i] != nil:
			d, err := s.eval(m.defaults[i])
			if err != nil {
				return nil, err
			}
			v = d
		}
		s.set(p, v)
	}
	savedOut := s.out
	var b strings.Builder
	s.out = &b
	err := s.renderNodes(m.body)
	s.out = savedOut
	if err != nil {
		return nil, err
	}
	return b.String(), nil
}

func (s *state) evalFilter(x *filterExpr) (any, error) {
	v, err := s.eval(x.x)
	if err != nil {
		return nil, err
	}
	args, kw, err := s.evalArgs(x.args, x.kwNames, x.kwVals)
	if err != nil {
		return nil, err
	}
	f, ok := filters[x.name]
	if !ok {
		return nil, lineErr(x.line, fmt.Errorf("unsupported filter '%s'", x.name))
	}
	out, err := f(s, v, args, kw)
	return out, lineOr(x.line, err)
}

func (s *state) evalTest(x *testExpr) (any, error) {
	v, err := s.eval(x.x)
	if err != nil {
		return nil, err
	}
	args, _, err := s.evalArgs(x.args, nil, nil)
	if err != nil {
		return nil, err
	}
	t, ok := tests[x.name]
	if !ok {
		return nil, lineErr(x.line, fmt.Errorf("unsupported test '%s'", x.name))
	}
	r, err := t(v, args)
	if err != nil {
		return nil, lineErr(x.line, err)
	}
	return r != x.neg, nil
}
