package jinja

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Values are Go values of these types: nil (None), Undefined, bool, int64,
// float64, string, []any (list or tuple), *Dict, *namespace, *loopInfo,
// callable and *macro. FromGo converts JSON-like Go values.

// Undefined is a missing variable, attribute or item: it renders as "",
// is false and iterates as empty; most operations on it fail.
type Undefined struct{ name string }

// Dict is an insertion-ordered mapping with string keys (Python's dict as
// JSON fills it).
type Dict struct {
	keys []string
	m    map[string]any
}

// NewDict returns an empty Dict.
func NewDict() *Dict { return &Dict{m: map[string]any{}} }

// Set adds or replaces key (a new key goes last).
func (d *Dict) Set(key string, v any) {
	if _, ok := d.m[key]; !ok {
		d.keys = append(d.keys, key)
	}
	d.m[key] = v
}

// Get returns the value of key.
func (d *Dict) Get(key string) (any, bool) {
	v, ok := d.m[key]
	return v, ok
}

// Keys returns the keys in insertion order.
func (d *Dict) Keys() []string { return d.keys }

// Len is the number of keys.
func (d *Dict) Len() int { return len(d.keys) }

// namespace is the mutable object namespace() returns.
type namespace struct{ attrs *Dict }

// callable is a global, filter-like function or bound method.
type callable func(s *state, args []any, kw *Dict) (any, error)

func typeName(v any) string {
	switch v := v.(type) {
	case nil:
		return "NoneType"
	case Undefined:
		return "undefined"
	case bool:
		return "bool"
	case int64:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []any:
		return "list"
	case *Dict:
		return "dict"
	case *namespace:
		return "Namespace"
	case *loopInfo:
		return "LoopContext"
	case callable, *macro:
		return "function"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// truthy is Python's bool().
func truthy(v any) bool {
	switch v := v.(type) {
	case nil, Undefined:
		return false
	case bool:
		return v
	case int64:
		return v != 0
	case float64:
		return v != 0
	case string:
		return v != ""
	case []any:
		return len(v) > 0
	case *Dict:
		return v.Len() > 0
	}
	return true
}

// str is Python's str() (Undefined is "").
func str(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case Undefined:
		return ""
	case string:
		return v
	case bool:
		if v {
			return "True"
		}
		return "False"
	}
	return repr(v)
}

// repr is Python's repr().
func repr(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case Undefined:
		return ""
	case bool:
		return str(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return pyFloat(v)
	case string:
		return pyQuote(v)
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = repr(x)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case *Dict:
		parts := make([]string, len(v.keys))
		for i, k := range v.keys {
			parts[i] = pyQuote(k) + ": " + repr(v.m[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case *namespace:
		return "<Namespace " + repr(v.attrs) + ">"
	}
	return "<" + typeName(v) + ">"
}

// pyQuote quotes s as Python's repr does: single quotes unless s has a
// single quote and no double quote.
func pyQuote(s string) string {
	q := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
	return b.String()
}

// pyFloat formats f as Python's repr(float): the shortest round-trip
// digits, in positional notation for exponents -4..15, else scientific with
// a two-digit (at least) exponent.
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX
	mant, exps, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(exps)
	if exp >= -4 && exp < 16 {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.ContainsAny(s, ".") {
			s += ".0"
		}
		return s
	}
	sign := "+"
	if exp < 0 {
		sign, exp = "-", -exp
	}
	return fmt.Sprintf("%se%s%02d", mant, sign, exp)
}

// toFloat returns v as a number.
func toNumber(v any) (float64, bool) {
	switch v := v.(type) {
	case int64:
		return float64(v), true
	case float64:
		return v, true
	case bool:
		if v {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// asInt returns v as an integer (bools count, as in Python).
func asInt(v any) (int64, bool) {
	switch v := v.(type) {
	case int64:
		return v, true
	case bool:
		if v {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// equal is Python's ==.
func equal(a, b any) bool {
	if fa, ok := toNumber(a); ok {
		if fb, ok := toNumber(b); ok {
			return fa == fb
		}
		return false
	}
	switch a := a.(type) {
	case nil:
		return b == nil
	case Undefined:
		_, ok := b.(Undefined)
		return ok
	case string:
		bs, ok := b.(string)
		return ok && a == bs
	case []any:
		bl, ok := b.([]any)
		return ok && slices.EqualFunc(a, bl, equal)
	case *Dict:
		bd, ok := b.(*Dict)
		if !ok || a.Len() != bd.Len() {
			return false
		}
		for _, k := range a.keys {
			bv, ok := bd.m[k]
			if !ok || !equal(a.m[k], bv) {
				return false
			}
		}
		return true
	}
	return a == b
}

// compare orders numbers, strings and lists as Python does.
func compare(a, b any) (int, error) {
	if fa, ok := toNumber(a); ok {
		if fb, ok := toNumber(b); ok {
			switch {
			case fa < fb:
				return -1, nil
			case fa > fb:
				return 1, nil
			}
			return 0, nil
		}
	}
	switch a := a.(type) {
	case string:
		if bs, ok := b.(string); ok {
			return strings.Compare(a, bs), nil
		}
	case []any:
		if bl, ok := b.([]any); ok {
			for i := 0; i < len(a) && i < len(bl); i++ {
				if !equal(a[i], bl[i]) {
					return compare(a[i], bl[i])
				}
			}
			return len(a) - len(bl), nil
		}
	}
	return 0, fmt.Errorf("cannot compare %s and %s", typeName(a), typeName(b))
}

// contains is Python's `x in c`.
func contains(c, x any) (bool, error) {
	switch c := c.(type) {
	case string:
		xs, ok := x.(string)
		if !ok {
			return false, fmt.Errorf("'in <string>' requires a string, not %s", typeName(x))
		}
		return strings.Contains(c, xs), nil
	case []any:
		return slices.ContainsFunc(c, func(e any) bool { return equal(e, x) }), nil
	case *Dict:
		xs, ok := x.(string)
		if !ok {
			return false, nil
		}
		_, has := c.m[xs]
		return has, nil
	case Undefined:
		return false, nil
	}
	return false, fmt.Errorf("argument of type %s is not iterable", typeName(c))
}

// iterate returns the items a for loop visits: list items, dict keys,
// string characters; Undefined and None... Undefined iterates as empty.
func iterate(v any) ([]any, error) {
	switch v := v.(type) {
	case []any:
		return v, nil
	case *Dict:
		out := make([]any, len(v.keys))
		for i, k := range v.keys {
			out[i] = k
		}
		return out, nil
	case string:
		var out []any
		for _, r := range v {
			out = append(out, string(r))
		}
		return out, nil
	case Undefined:
		return nil, nil
	}
	return nil, fmt.Errorf("%s object is not iterable", typeName(v))
}

// length is Python's len().
func length(v any) (int64, error) {
	switch v := v.(type) {
	case string:
		return int64(len([]rune(v))), nil
	case []any:
		return int64(len(v)), nil
	case *Dict:
		return int64(v.Len()), nil
	case Undefined:
		return 0, nil
	}
	return 0, fmt.Errorf("object of type %s has no len()", typeName(v))
}

// FromGo converts JSON-like Go values (nil, bool, numbers, string,
// []any, map[string]any, []map[string]any, *Dict) into template values.
// Maps are ordered by key (use *Dict to keep another order).
func FromGo(v any) any {
	switch v := v.(type) {
	case nil, bool, string, int64, float64, *Dict, Undefined:
		return v
	case int:
		return int64(v)
	case int32:
		return int64(v)
	case uint32:
		return int64(v)
	case float32:
		return float64(v)
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = FromGo(x)
		}
		return out
	case []string:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = x
		}
		return out
	case []map[string]any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = FromGo(x)
		}
		return out
	case map[string]any:
		d := NewDict()
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			d.Set(k, FromGo(v[k]))
		}
		return d
	case func(string) (string, error):
		return callable(func(_ *state, args []any, _ *Dict) (any, error) {
			s := ""
			if len(args) > 0 {
				s = str(args[0])
			}
			return v(s)
		})
	}
	return fmt.Sprint(v)
}
