package jinja

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/ordjson"
)

// tojsonFilter is transformers' tojson: json.dumps(x, ensure_ascii=False,
// indent=indent, separators=separators, sort_keys=sort_keys), with Python's
// default separators (", " and ": ", or "," and ": " when indenting).
func tojsonFilter(_ *state, v any, args []any, kw *Dict) (any, error) {
	indent := ""
	if a, ok := kwArg(args, kw, 0, "indent"); ok && a != nil {
		if n, ok := asInt(a); ok {
			indent = strings.Repeat(" ", int(min(max(n, 0), 64)))
		} else {
			indent = str(a)
		}
		if indent == "" {
			indent = "\x00" // indent=0: newlines, no spaces
		}
	}
	itemSep, keySep := ", ", ": "
	if indent != "" {
		itemSep = ","
	}
	if a, ok := kwArg(args, kw, 1, "separators"); ok && a != nil {
		l, ok := a.([]any)
		if !ok || len(l) != 2 {
			return nil, fmt.Errorf("tojson separators must be a pair, got %s", repr(a))
		}
		itemSep, keySep = str(l[0]), str(l[1])
	}
	sortKeys := false
	if a, ok := kwArg(args, kw, 2, "sort_keys"); ok {
		sortKeys = truthy(a)
	}
	var b strings.Builder
	j := jsonWriter{b: &b, indent: indent, itemSep: itemSep, keySep: keySep, sortKeys: sortKeys}
	if err := j.write(v, 0); err != nil {
		return nil, err
	}
	return b.String(), nil
}

type jsonWriter struct {
	b                       *strings.Builder
	indent, itemSep, keySep string
	sortKeys                bool
}

func (j *jsonWriter) newline(depth int) {
	if j.indent == "" {
		return
	}
	j.b.WriteByte('\n')
	if j.indent != "\x00" {
		j.b.WriteString(strings.Repeat(j.indent, depth))
	}
}

func (j *jsonWriter) write(v any, depth int) error {
	if depth > 100 {
		return fmt.Errorf("tojson: nested deeper than 100")
	}
	switch v := v.(type) {
	case nil:
		j.b.WriteString("null")
	case bool:
		if v {
			j.b.WriteString("true")
		} else {
			j.b.WriteString("false")
		}
	case int64:
		j.b.WriteString(strconv.FormatInt(v, 10))
	case float64:
		switch {
		case math.IsNaN(v):
			j.b.WriteString("NaN")
		case math.IsInf(v, 1):
			j.b.WriteString("Infinity")
		case math.IsInf(v, -1):
			j.b.WriteString("-Infinity")
		default:
			j.b.WriteString(pyFloat(v))
		}
	case string:
		writeJSONString(j.b, v)
	case []any:
		if len(v) == 0 {
			j.b.WriteString("[]")
			return nil
		}
		j.b.WriteByte('[')
		for i, x := range v {
			if i > 0 {
				j.b.WriteString(j.itemSep)
			}
			j.newline(depth + 1)
			if err := j.write(x, depth+1); err != nil {
				return err
			}
		}
		j.newline(depth)
		j.b.WriteByte(']')
	case *Dict:
		if v.Len() == 0 {
			j.b.WriteString("{}")
			return nil
		}
		keys := v.keys
		if j.sortKeys {
			keys = slices.Sorted(slices.Values(keys))
		}
		j.b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				j.b.WriteString(j.itemSep)
			}
			j.newline(depth + 1)
			writeJSONString(j.b, k)
			j.b.WriteString(j.keySep)
			if err := j.write(v.m[k], depth+1); err != nil {
				return err
			}
		}
		j.newline(depth)
		j.b.WriteByte('}')
	case *namespace:
		return j.write(v.attrs, depth)
	default:
		return fmt.Errorf("tojson: object of type %s is not JSON serializable", typeName(v))
	}
	return nil
}

// writeJSONString writes s as json.dumps(ensure_ascii=False) does.
func writeJSONString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 {
				fmt.Fprintf(b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

// strftime formats t with the C/Python directives templates use.
func strftime(format string, t time.Time) string {
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i+1 == len(format) {
			b.WriteByte(c)
			continue
		}
		i++
		switch format[i] {
		case 'd':
			fmt.Fprintf(&b, "%02d", t.Day())
		case 'm':
			fmt.Fprintf(&b, "%02d", int(t.Month()))
		case 'Y':
			fmt.Fprintf(&b, "%04d", t.Year())
		case 'y':
			fmt.Fprintf(&b, "%02d", t.Year()%100)
		case 'b':
			b.WriteString(t.Month().String()[:3])
		case 'B':
			b.WriteString(t.Month().String())
		case 'a':
			b.WriteString(t.Weekday().String()[:3])
		case 'A':
			b.WriteString(t.Weekday().String())
		case 'H':
			fmt.Fprintf(&b, "%02d", t.Hour())
		case 'M':
			fmt.Fprintf(&b, "%02d", t.Minute())
		case 'S':
			fmt.Fprintf(&b, "%02d", t.Second())
		case 'j':
			fmt.Fprintf(&b, "%03d", t.YearDay())
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(format[i])
		}
	}
	return b.String()
}

// DecodeJSON decodes JSON into template values, keeping object key order
// (numbers without a fraction or exponent become integers, as in Python).
func DecodeJSON(data []byte) (any, error) {
	v, err := ordjson.Decode(data, 200)
	if err != nil {
		return nil, fmt.Errorf("jinja: decode JSON: %w", err)
	}
	return fromOrdered(v)
}

func fromOrdered(v any) (any, error) {
	switch v := v.(type) {
	case *ordjson.Object:
		d := NewDict()
		for _, k := range v.Keys {
			x, err := fromOrdered(v.Values[k])
			if err != nil {
				return nil, err
			}
			d.Set(k, x)
		}
		return d, nil
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			y, err := fromOrdered(x)
			if err != nil {
				return nil, err
			}
			out[i] = y
		}
		return out, nil
	case json.Number:
		if i, err := v.Int64(); err == nil && !strings.ContainsAny(v.String(), ".eE") {
			return i, nil
		}
		f, err := v.Float64()
		if err != nil {
			return nil, fmt.Errorf("jinja: decode JSON: %w", err)
		}
		return f, nil
	}
	return v, nil
}
