package jinja

import (
	"errors"
	"fmt"
	"html"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

func globals(t *Template) map[string]any {
	return map[string]any{
		"range": callable(func(_ *state, args []any, _ *Dict) (any, error) {
			var a [3]int64
			a[2] = 1
			switch len(args) {
			case 1:
				n, ok := asInt(args[0])
				if !ok {
					return nil, errors.New("range() needs integers")
				}
				a[1] = n
			case 2, 3:
				for i, v := range args {
					n, ok := asInt(v)
					if !ok {
						return nil, errors.New("range() needs integers")
					}
					a[i] = n
				}
			default:
				return nil, fmt.Errorf("range() takes 1 to 3 arguments, got %d", len(args))
			}
			if a[2] == 0 {
				return nil, errors.New("range() step must not be zero")
			}
			var out []any
			for i := a[0]; (a[2] > 0 && i < a[1]) || (a[2] < 0 && i > a[1]); i += a[2] {
				if len(out) >= 100_000 {
					return nil, errors.New("range() longer than 100000")
				}
				out = append(out, i)
			}
			if out == nil {
				out = []any{}
			}
			return out, nil
		}),
		"namespace": callable(func(_ *state, args []any, kw *Dict) (any, error) {
			ns := &namespace{attrs: NewDict()}
			for _, a := range args {
				if d, ok := a.(*Dict); ok {
					for _, k := range d.keys {
						ns.attrs.Set(k, d.m[k])
					}
				}
			}
			if kw != nil {
				for _, k := range kw.keys {
					ns.attrs.Set(k, kw.m[k])
				}
			}
			return ns, nil
		}),
		"dict": callable(func(_ *state, _ []any, kw *Dict) (any, error) {
			d := NewDict()
			if kw != nil {
				for _, k := range kw.keys {
					d.Set(k, kw.m[k])
				}
			}
			return d, nil
		}),
		"raise_exception": callable(func(_ *state, args []any, _ *Dict) (any, error) {
			msg := "raise_exception called"
			if len(args) > 0 {
				msg = str(args[0])
			}
			return nil, &RaiseError{Message: msg}
		}),
		"strftime_now": callable(func(_ *state, args []any, _ *Dict) (any, error) {
			if len(args) != 1 {
				return nil, errors.New("strftime_now() takes a format")
			}
			return strftime(str(args[0]), t.opts.Now()), nil
		}),
	}
}

// method returns the bound method name of obj (str, dict, list), or nil.
func method(obj any, name string) any {
	switch o := obj.(type) {
	case string:
		if f, ok := strMethods[name]; ok {
			return callable(func(_ *state, args []any, kw *Dict) (any, error) { return f(o, args) })
		}
	case *Dict:
		switch name {
		case "items":
			return callable(func(*state, []any, *Dict) (any, error) {
				out := make([]any, len(o.keys))
				for i, k := range o.keys {
					out[i] = []any{k, o.m[k]}
				}
				return out, nil
			})
		case "keys":
			return callable(func(*state, []any, *Dict) (any, error) { return iterate(o) })
		case "values":
			return callable(func(*state, []any, *Dict) (any, error) {
				out := make([]any, len(o.keys))
				for i, k := range o.keys {
					out[i] = o.m[k]
				}
				return out, nil
			})
		case "get":
			return callable(func(_ *state, args []any, _ *Dict) (any, error) {
				if len(args) == 0 {
					return nil, errors.New("get() takes a key")
				}
				if k, ok := args[0].(string); ok {
					if v, ok := o.m[k]; ok {
						return v, nil
					}
				}
				if len(args) > 1 {
					return args[1], nil
				}
				return nil, nil
			})
		}
	case []any:
		switch name {
		case "index":
			return callable(func(_ *state, args []any, _ *Dict) (any, error) {
				if len(args) == 0 {
					return nil, errors.New("index() takes a value")
				}
				if i := slices.IndexFunc(o, func(e any) bool { return equal(e, args[0]) }); i >= 0 {
					return int64(i), nil
				}
				return nil, fmt.Errorf("%s is not in list", repr(args[0]))
			})
		case "count":
			return callable(func(_ *state, args []any, _ *Dict) (any, error) {
				n := int64(0)
				for _, e := range o {
					if len(args) > 0 && equal(e, args[0]) {
						n++
					}
				}
				return n, nil
			})
		}
	}
	return nil
}

func isPySpace(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) }

// stripArg returns the characters to strip: args[0] or whitespace.
func stripFunc(args []any) (func(rune) bool, error) {
	if len(args) == 0 || args[0] == nil {
		return isPySpace, nil
	}
	chars, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("strip arg must be None or str, not %s", typeName(args[0]))
	}
	return func(r rune) bool { return strings.ContainsRune(chars, r) }, nil
}

var strMethods = map[string]func(s string, args []any) (any, error){
	"strip": func(s string, args []any) (any, error) {
		f, err := stripFunc(args)
		if err != nil {
			return nil, err
		}
		return strings.TrimFunc(s, f), nil
	},
	"lstrip": func(s string, args []any) (any, error) {
		f, err := stripFunc(args)
		if err != nil {
			return nil, err
		}
		return strings.TrimLeftFunc(s, f), nil
	},
	"rstrip": func(s string, args []any) (any, error) {
		f, err := stripFunc(args)
		if err != nil {
			return nil, err
		}
		return strings.TrimRightFunc(s, f), nil
	},
	"startswith": func(s string, args []any) (any, error) { return affix(s, args, strings.HasPrefix) },
	"endswith":   func(s string, args []any) (any, error) { return affix(s, args, strings.HasSuffix) },
	"split": func(s string, args []any) (any, error) {
		max := int64(-1)
		if len(args) > 1 {
			max, _ = asInt(args[1])
		}
		var parts []string
		if len(args) == 0 || args[0] == nil {
			parts = strings.FieldsFunc(s, isPySpace)
			if max >= 0 && int64(len(parts)) > max+1 {
				// Python keeps the rest after max splits, left-trimmed.
				rest := s
				parts = parts[:0]
				for i := int64(0); i < max; i++ {
					rest = strings.TrimLeftFunc(rest, isPySpace)
					j := strings.IndexFunc(rest, isPySpace)
					parts = append(parts, rest[:j])
					rest = rest[j:]
				}
				parts = append(parts, strings.TrimLeftFunc(rest, isPySpace))
			}
		} else {
			sep, ok := args[0].(string)
			if !ok || sep == "" {
				return nil, errors.New("split() separator must be a non-empty string")
			}
			parts = strings.SplitN(s, sep, int(max)+boolInt(max >= 0))
		}
		out := make([]any, len(parts))
		for i, p := range parts {
			out[i] = p
		}
		return out, nil
	},
	"upper":      func(s string, _ []any) (any, error) { return strings.ToUpper(s), nil },
	"lower":      func(s string, _ []any) (any, error) { return strings.ToLower(s), nil },
	"title":      func(s string, _ []any) (any, error) { return pyTitle(s), nil },
	"capitalize": func(s string, _ []any) (any, error) { return capitalize(s), nil },
	"replace": func(s string, args []any) (any, error) {
		if len(args) < 2 {
			return nil, errors.New("replace() takes old and new")
		}
		n := int64(-1)
		if len(args) > 2 {
			n, _ = asInt(args[2])
		}
		return strings.Replace(s, str(args[0]), str(args[1]), int(n)), nil
	},
	"find": func(s string, args []any) (any, error) {
		if len(args) == 0 {
			return nil, errors.New("find() takes a substring")
		}
		i := strings.Index(s, str(args[0]))
		if i < 0 {
			return int64(-1), nil
		}
		return int64(len([]rune(s[:i]))), nil
	},
	"count": func(s string, args []any) (any, error) {
		if len(args) == 0 {
			return nil, errors.New("count() takes a substring")
		}
		return int64(strings.Count(s, str(args[0]))), nil
	},
	"join": func(s string, args []any) (any, error) {
		if len(args) == 0 {
			return nil, errors.New("join() takes an iterable")
		}
		items, err := iterate(args[0])
		if err != nil {
			return nil, err
		}
		parts := make([]string, len(items))
		for i, it := range items {
			ps, ok := it.(string)
			if !ok {
				return nil, fmt.Errorf("join() item %d: expected str, got %s", i, typeName(it))
			}
			parts[i] = ps
		}
		return strings.Join(parts, s), nil
	},
	"splitlines": func(s string, _ []any) (any, error) {
		lines := strings.FieldsFunc(strings.ReplaceAll(s, "\r\n", "\n"), func(r rune) bool { return r == '\n' || r == '\r' })
		out := make([]any, len(lines))
		for i, l := range lines {
			out[i] = l
		}
		return out, nil
	},
	"removeprefix": func(s string, args []any) (any, error) {
		if len(args) == 0 {
			return nil, errors.New("removeprefix() takes a prefix")
		}
		return strings.TrimPrefix(s, str(args[0])), nil
	},
	"removesuffix": func(s string, args []any) (any, error) {
		if len(args) == 0 {
			return nil, errors.New("removesuffix() takes a suffix")
		}
		return strings.TrimSuffix(s, str(args[0])), nil
	},
	"isdigit": func(s string, _ []any) (any, error) {
		return s != "" && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsDigit(r) }) < 0, nil
	},
	"isspace": func(s string, _ []any) (any, error) {
		return s != "" && strings.IndexFunc(s, func(r rune) bool { return !isPySpace(r) }) < 0, nil
	},
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// affix is startswith/endswith with a string or a tuple of strings.
func affix(s string, args []any, f func(string, string) bool) (any, error) {
	if len(args) == 0 {
		return nil, errors.New("startswith/endswith take a prefix")
	}
	switch a := args[0].(type) {
	case string:
		return f(s, a), nil
	case []any:
		for _, x := range a {
			if xs, ok := x.(string); ok && f(s, xs) {
				return true, nil
			}
		}
		return false, nil
	}
	return nil, fmt.Errorf("startswith/endswith argument must be str or a tuple, not %s", typeName(args[0]))
}

// capitalize is Python's str.capitalize.
func capitalize(s string) string {
	if s == "" {
		return s
	}
	r := []rune(strings.ToLower(s))
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}

// pyTitle is Python's str.title: words (runs of letters) start upper case.
func pyTitle(s string) string {
	var b strings.Builder
	prevLetter := false
	for _, r := range s {
		if prevLetter {
			b.WriteRune(unicode.ToLower(r))
		} else {
			b.WriteRune(unicode.ToTitle(r))
		}
		prevLetter = unicode.IsLetter(r)
	}
	return b.String()
}

type filterFunc func(s *state, v any, args []any, kw *Dict) (any, error)

func kwArg(args []any, kw *Dict, i int, name string) (any, bool) {
	if i < len(args) {
		return args[i], true
	}
	if kw != nil {
		if v, ok := kw.m[name]; ok {
			return v, true
		}
	}
	return nil, false
}

func needString(name string, v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case Undefined:
		return "", fmt.Errorf("%s of undefined %s", name, v.name)
	}
	return str(v), nil
}

var filters map[string]filterFunc

func init() {
	filters = map[string]filterFunc{
		"trim": func(_ *state, v any, args []any, kw *Dict) (any, error) {
			s, err := needString("trim", v)
			if err != nil {
				return nil, err
			}
			chars, _ := kwArg(args, kw, 0, "chars")
			f, err := stripFunc([]any{chars})
			if err != nil {
				return nil, err
			}
			return strings.TrimFunc(s, f), nil
		},
		"capitalize": func(_ *state, v any, _ []any, _ *Dict) (any, error) {
			s, err := needString("capitalize", v)
			return capitalize(s), err
		},
		"upper": func(_ *state, v any, _ []any, _ *Dict) (any, error) {
			s, err := needString("upper", v)
			return strings.ToUpper(s), err
		},
		"lower": func(_ *state, v any, _ []any, _ *Dict) (any, error) {
			s, err := needString("lower", v)
			return strings.ToLower(s), err
		},
		"title": func(_ *state, v any, _ []any, _ *Dict) (any, error) {
			s, err := needString("title", v)
			return pyTitle(s), err
		},
		"length": func(_ *state, v any, _ []any, _ *Dict) (any, error) { return length(v) },
		"string": func(_ *state, v any, _ []any, _ *Dict) (any, error) { return str(v), nil },
		"safe":   func(_ *state, v any, _ []any, _ *Dict) (any, error) { return v, nil },
		"e": func(_ *state, v any, _ []any, _ *Dict) (any, error) {
			return html.EscapeString(str(v)), nil
		},
		"int": func(_ *state, v any, args []any, _ *Dict) (any, error) {
			switch x := v.(type) {
			case int64:
				return x, nil
			case bool:
				n, _ := asInt(x)
				return n, nil
			case float64:
				return int64(x), nil
			case string:
				if n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
					return n, nil
				}
				if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
					return int64(f), nil
				}
			}
			if len(args) > 0 {
				return args[0], nil
			}
			return int64(0), nil
		},
		"float": func(_ *state, v any, args []any, _ *Dict) (any, error) {
			if f, ok := toNumber(v); ok {
				return f, nil
			}
			if s, ok := v.(string); ok {
				if f, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
					return f, nil
				}
			}
			if len(args) > 0 {
				return args[0], nil
			}
			return 0.0, nil
		},
		"abs": func(_ *state, v any, _ []any, _ *Dict) (any, error) {
			switch x := v.(type) {
			case int64:
				if x < 0 {
					return -x, nil
				}
				return x, nil
			case float64:
				return math.Abs(x), nil
			}
			return nil, fmt.Errorf("bad operand type for abs(): %s", typeName(v))
		},
		"round": func(_ *state, v any, args []any, kw *Dict) (any, error) {
			f, ok := toNumber(v)
			if !ok {
				return nil, fmt.Errorf("round of %s", typeName(v))
			}
			p := int64(0)
			if a, ok := kwArg(args, kw, 0, "precision"); ok {
				p, _ = asInt(a)
			}
			m := math.Pow(10, float64(p))
			return math.RoundToEven(f*m) / m, nil
		},
		"list": func(_ *state, v any, _ []any, _ *Dict) (any, error) {
			items, err := iterate(v)
			if err != nil {
				return nil, err
			}
			return append([]any{}, items...), nil
		},
		"first": func(_ *state, v any, _ []any, _ *Dict) (any, error) {
			items, err := iterate(v)
			if err != nil || len(items) == 0 {
				return Undefined{name: "first"}, err
			}
			return items[0], nil
		},
		"last": func(_ *state, v any, _ []any, _ *Dict) (any, error) {
			items, err := iterate(v)
			if err != nil || len(items) == 0 {
				return Undefined{name: "last"}, err
			}
			return items[len(items)-1], nil
		},
		"reverse": func(_ *state, v any, _ []any, _ *Dict) (any, error) {
			if s, ok := v.(string); ok {
				r := []rune(s)
				slices.Reverse(r)
				return string(r), nil
			}
			items, err := iterate(v)
			if err != nil {
				return nil, err
			}
			out := append([]any{}, items...)
			slices.Reverse(out)
			return out, nil
		},
		"join": func(_ *state, v any, args []any, kw *Dict) (any, error) {
			items, err := iterate(v)
			if err != nil {
				return nil, err
			}
			sep := ""
			if a, ok := kwArg(args, kw, 0, "d"); ok {
				sep = str(a)
			}
			attr, hasAttr := kwArg(args, kw, 1, "attribute")
			parts := make([]string, len(items))
			for i, it := range items {
				if hasAttr {
					it = getAttr(it, str(attr))
				}
				parts[i] = str(it)
			}
			return strings.Join(parts, sep), nil
		},
		"default": defaultFilter,
		"d":       defaultFilter,
		"replace": func(_ *state, v any, args []any, _ *Dict) (any, error) {
			s, err := needString("replace", v)
			if err != nil {
				return nil, err
			}
			return strMethods["replace"](s, args)
		},
		"items": func(_ *state, v any, _ []any, _ *Dict) (any, error) {
			if d, ok := v.(*Dict); ok {
				return method(d, "items").(callable)(nil, nil, nil)
			}
			if _, ok := v.(Undefined); ok {
				return []any{}, nil
			}
			return nil, fmt.Errorf("items of %s", typeName(v))
		},
		"dictsort": func(_ *state, v any, _ []any, _ *Dict) (any, error) {
			d, ok := v.(*Dict)
			if !ok {
				return nil, fmt.Errorf("dictsort of %s", typeName(v))
			}
			keys := append([]string{}, d.keys...)
			slices.SortFunc(keys, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
			out := make([]any, len(keys))
			for i, k := range keys {
				out[i] = []any{k, d.m[k]}
			}
			return out, nil
		},
		"unique": func(_ *state, v any, _ []any, _ *Dict) (any, error) {
			items, err := iterate(v)
			if err != nil {
				return nil, err
			}
			var out []any
			for _, it := range items {
				if !slices.ContainsFunc(out, func(e any) bool { return equal(e, it) }) {
					out = append(out, it)
				}
			}
			return append([]any{}, out...), nil
		},
		"count": func(_ *state, v any, _ []any, _ *Dict) (any, error) { return length(v) },
		"sum": func(_ *state, v any, args []any, kw *Dict) (any, error) {
			items, err := iterate(v)
			if err != nil {
				return nil, err
			}
			var acc any = int64(0)
			attr, hasAttr := kwArg(args, kw, 0, "attribute")
			for _, it := range items {
				if hasAttr {
					it = getAttr(it, str(attr))
				}
				if acc, err = arith("+", acc, it); err != nil {
					return nil, err
				}
			}
			return acc, nil
		},
		"indent": func(_ *state, v any, args []any, kw *Dict) (any, error) {
			s := str(v)
			width := "    "
			if a, ok := kwArg(args, kw, 0, "width"); ok {
				if n, ok := asInt(a); ok {
					width = strings.Repeat(" ", int(min(max(n, 0), 64)))
				} else {
					width = str(a)
				}
			}
			first, _ := kwArg(args, kw, 1, "first")
			blank, _ := kwArg(args, kw, 2, "blank")
			lines := strings.Split(s, "\n")
			for i, l := range lines {
				if i == 0 && !truthy(first) {
					continue
				}
				if l == "" && !truthy(blank) {
					continue
				}
				lines[i] = width + l
			}
			return strings.Join(lines, "\n"), nil
		},
		"wordcount": func(_ *state, v any, _ []any, _ *Dict) (any, error) {
			return int64(len(strings.FieldsFunc(str(v), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' }))), nil
		},
		"map":        mapFilter,
		"select":     selectFilter(false, false),
		"reject":     selectFilter(true, false),
		"selectattr": selectFilter(false, true),
		"rejectattr": selectFilter(true, true),
		"tojson":     tojsonFilter,
		"sort":       sortFilter,
		"min":        minMax(-1),
		"max":        minMax(1),
	}
	filters["escape"] = filters["e"]
}

func defaultFilter(_ *state, v any, args []any, kw *Dict) (any, error) {
	def, _ := kwArg(args, kw, 0, "default_value")
	if def == nil && len(args) == 0 {
		def = ""
	}
	boolean, _ := kwArg(args, kw, 1, "boolean")
	if _, undef := v.(Undefined); undef || (truthy(boolean) && !truthy(v)) {
		return def, nil
	}
	return v, nil
}

func minMax(sign int) filterFunc {
	return func(_ *state, v any, _ []any, _ *Dict) (any, error) {
		items, err := iterate(v)
		if err != nil || len(items) == 0 {
			return Undefined{name: "min/max of an empty sequence"}, err
		}
		best := items[0]
		for _, it := range items[1:] {
			c, err := compare(it, best)
			if err != nil {
				return nil, err
			}
			if c*sign > 0 {
				best = it
			}
		}
		return best, nil
	}
}

func mapFilter(s *state, v any, args []any, kw *Dict) (any, error) {
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	out := make([]any, len(items))
	if kw != nil {
		if attr, ok := kw.m["attribute"]; ok {
			def, hasDef := kw.m["default"]
			for i, it := range items {
				x := getAttr(it, str(attr))
				if _, undef := x.(Undefined); undef && hasDef {
					x = def
				}
				out[i] = x
			}
			return out, nil
		}
	}
	if len(args) == 0 {
		return nil, errors.New("map needs a filter name or attribute=")
	}
	f, ok := filters[str(args[0])]
	if !ok {
		return nil, fmt.Errorf("unsupported filter '%s' in map", str(args[0]))
	}
	for i, it := range items {
		if out[i], err = f(s, it, args[1:], nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func selectFilter(reject, byAttr bool) filterFunc {
	return func(_ *state, v any, args []any, _ *Dict) (any, error) {
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		attr := ""
		if byAttr {
			if len(args) == 0 {
				return nil, errors.New("selectattr/rejectattr need an attribute")
			}
			attr, args = str(args[0]), args[1:]
		}
		var test testFunc = func(x any, _ []any) (bool, error) { return truthy(x), nil }
		if len(args) > 0 {
			t, ok := tests[str(args[0])]
			if !ok {
				return nil, fmt.Errorf("unsupported test '%s'", str(args[0]))
			}
			test, args = t, args[1:]
		}
		out := []any{}
		for _, it := range items {
			x := it
			if byAttr {
				x = getAttr(it, attr)
			}
			ok, err := test(x, args)
			if err != nil {
				return nil, err
			}
			if ok != reject {
				out = append(out, it)
			}
		}
		return out, nil
	}
}

type testFunc func(v any, args []any) (bool, error)

var tests map[string]testFunc

func init() {
	isType := func(f func(any) bool) testFunc { return func(v any, _ []any) (bool, error) { return f(v), nil } }
	arg := func(args []any) (any, error) {
		if len(args) == 0 {
			return nil, errors.New("test needs an argument")
		}
		return args[0], nil
	}
	cmpTest := func(op string) testFunc {
		return func(v any, args []any) (bool, error) {
			a, err := arg(args)
			if err != nil {
				return false, err
			}
			return compareOp(op, v, a)
		}
	}
	tests = map[string]testFunc{
		"defined":   isType(func(v any) bool { _, u := v.(Undefined); return !u }),
		"undefined": isType(func(v any) bool { _, u := v.(Undefined); return u }),
		"none":      isType(func(v any) bool { return v == nil }),
		"string":    isType(func(v any) bool { _, ok := v.(string); return ok }),
		"number": isType(func(v any) bool {
			switch v.(type) {
			case int64, float64:
				return true
			}
			return false
		}),
		"integer":  isType(func(v any) bool { _, ok := v.(int64); return ok }),
		"float":    isType(func(v any) bool { _, ok := v.(float64); return ok }),
		"boolean":  isType(func(v any) bool { _, ok := v.(bool); return ok }),
		"true":     isType(func(v any) bool { b, ok := v.(bool); return ok && b }),
		"false":    isType(func(v any) bool { b, ok := v.(bool); return ok && !b }),
		"mapping":  isType(func(v any) bool { _, ok := v.(*Dict); return ok }),
		"sequence": isType(func(v any) bool { _, err := length(v); _, u := v.(Undefined); return err == nil && !u }),
		"iterable": isType(func(v any) bool {
			switch v.(type) {
			case string, []any, *Dict:
				return true
			}
			return false
		}),
		"callable": isType(func(v any) bool {
			switch v.(type) {
			case callable, *macro:
				return true
			}
			return false
		}),
		"lower": isType(func(v any) bool { s, ok := v.(string); return ok && s == strings.ToLower(s) }),
		"upper": isType(func(v any) bool { s, ok := v.(string); return ok && s == strings.ToUpper(s) }),
		"even":  isType(func(v any) bool { n, ok := asInt(v); return ok && n%2 == 0 }),
		"odd":   isType(func(v any) bool { n, ok := asInt(v); return ok && n%2 != 0 }),
		"divisibleby": func(v any, args []any) (bool, error) {
			a, err := arg(args)
			if err != nil {
				return false, err
			}
			n, ok1 := asInt(v)
			d, ok2 := asInt(a)
			if !ok1 || !ok2 || d == 0 {
				return false, errors.New("divisibleby needs integers")
			}
			return n%d == 0, nil
		},
		"in": func(v any, args []any) (bool, error) {
			a, err := arg(args)
			if err != nil {
				return false, err
			}
			return contains(a, v)
		},
		"sameas": func(v any, args []any) (bool, error) {
			a, err := arg(args)
			if err != nil {
				return false, err
			}
			if _, ok := v.(bool); ok {
				return v == a, nil
			}
			return v == nil && a == nil || equal(v, a) && typeName(v) == typeName(a), nil
		},
		"eq": cmpTest("=="), "equalto": cmpTest("=="), "==": cmpTest("=="),
		"ne": cmpTest("!="), "!=": cmpTest("!="),
		"lt": cmpTest("<"), "lessthan": cmpTest("<"), "<": cmpTest("<"),
		"le": cmpTest("<="), "<=": cmpTest("<="),
		"gt": cmpTest(">"), "greaterthan": cmpTest(">"), ">": cmpTest(">"),
		"ge": cmpTest(">="), ">=": cmpTest(">="),
	}
}

func sortFilter(_ *state, v any, args []any, kw *Dict) (any, error) {
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	out := append([]any{}, items...)
	rev, _ := kwArg(args, kw, 0, "reverse")
	attr, hasAttr := kwArg(args, kw, 2, "attribute")
	key := func(x any) any {
		if hasAttr {
			return getAttr(x, str(attr))
		}
		if s, ok := x.(string); ok {
			return strings.ToLower(s) // case_sensitive=False
		}
		return x
	}
	var cmpErr error
	slices.SortStableFunc(out, func(a, b any) int {
		c, err := compare(key(a), key(b))
		if err != nil && cmpErr == nil {
			cmpErr = err
		}
		if truthy(rev) {
			return -c
		}
		return c
	})
	return out, cmpErr
}
