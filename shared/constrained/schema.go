package constrained

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/bitnet-mesh/bitnet-mesh/shared/ordjson"
)

// Limits of the generated documents and accepted schemas.
const (
	MaxWhitespace = 20   // whitespace bytes in a row
	MaxDepth      = 32   // nesting of json_object documents
	MaxCount      = 4096 // maxLength, maxItems, minLength and minItems
	maxNodes      = 10000
	maxIntDigits  = 15
	maxFracDigits = 15
	maxExpDigits  = 2
	infBytes      = math.MaxInt32 / 4
)

// UnsupportedError is a schema feature outside the supported subset.
type UnsupportedError struct {
	Keyword string // e.g. "pattern"
	Path    string // JSON pointer of the schema that uses it, e.g. "/properties/name"
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("json_schema: %q (at %s) is not supported; the supported subset is documented in shared/constrained", e.Keyword, pathText(e.Path))
}

// SchemaError is a schema that is not valid JSON Schema or has no
// instance.
type SchemaError struct {
	Path, Msg string
}

func (e *SchemaError) Error() string {
	return fmt.Sprintf("json_schema: at %s: %s", pathText(e.Path), e.Msg)
}

func pathText(p string) string {
	if p == "" {
		return "the root"
	}
	return p
}

type kind uint8

const (
	kAny     kind = iota // any JSON value
	kObject              // the declared properties, in order
	kMap                 // any keys; values of items (nil: any)
	kArray               // items (nil: any)
	kString              // minLen..maxLen characters
	kNumber              // JSON number
	kInteger             // integer
	kLiteral             // one of the encoded values in lits
	kUnion               // any of alts
)

type prop struct {
	key      []byte // JSON-encoded, quotes included
	val      *node
	required bool
}

type node struct {
	kind               kind
	props              []prop
	items              *node
	minItems, maxItems int // maxItems -1: unbounded
	minLen, maxLen     int // maxLen -1: unbounded
	lits               *litTrie
	alts               []*node
	min                int // fewest bytes of an instance

	// kObject, derived by finish: tail[i] is the fewest bytes of the
	// required properties from i on, commas included, plus the closing
	// brace; first[i] the index of the first required property >= i
	// (len(props) when none).
	tail, first []int
}

var (
	anyNode    = &node{kind: kAny, min: 1}
	stringNode = &node{kind: kString, maxLen: -1, min: 2}
)

// Grammar is a compiled json_object or JSON Schema constraint, safe for
// concurrent use by many Matchers.
type Grammar struct {
	root *node
	any  bool // json_object: nesting is bounded by MaxDepth
}

// JSONObject is the grammar of OpenAI's json_object: any JSON object.
func JSONObject() *Grammar {
	return &Grammar{root: &node{kind: kMap, min: 2}, any: true}
}

// CompileSchema compiles a JSON Schema (its JSON text). Features outside
// the subset are an *UnsupportedError, malformed schemas a *SchemaError.
func CompileSchema(schema []byte) (*Grammar, error) {
	v, err := decodeOrdered(schema)
	if err != nil {
		return nil, &SchemaError{Msg: "not JSON: " + err.Error()}
	}
	c := &compiler{root: v, refs: map[string]*node{}}
	root, err := c.compile(v, "")
	if err != nil {
		return nil, err
	}
	if err := c.finish(); err != nil {
		return nil, err
	}
	if root.min >= infBytes {
		return nil, &SchemaError{Msg: "the schema has no finite instance (a required property or minimum item refers back to itself)"}
	}
	return &Grammar{root: root}, nil
}

type compiler struct {
	root  any
	refs  map[string]*node
	nodes []*node
}

func (c *compiler) newNode(n *node) (*node, error) {
	if len(c.nodes) >= maxNodes {
		return nil, &SchemaError{Msg: fmt.Sprintf("more than %d subschemas", maxNodes)}
	}
	c.nodes = append(c.nodes, n)
	return n, nil
}

var annotations = []string{"title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated", "readOnly", "writeOnly", "$defs", "definitions"}

func (c *compiler) compile(v any, path string) (*node, error) {
	switch v := v.(type) {
	case bool:
		if v {
			return anyNode, nil
		}
		return nil, &SchemaError{Path: path, Msg: "the false schema has no instance"}
	case *object:
		return c.compileObject(v, path)
	}
	return nil, &SchemaError{Path: path, Msg: "a schema must be an object or a boolean"}
}

func (c *compiler) compileObject(s *object, path string) (*node, error) {
	known := map[string]bool{}
	for _, a := range annotations {
		known[a] = true
	}
	use := func(k string) (any, bool) {
		known[k] = true
		v, ok := s.Get(k)
		return v, ok
	}
	if ref, ok := use("$ref"); ok {
		for _, k := range s.Keys {
			if !known[k] {
				return nil, &UnsupportedError{Keyword: k + " beside $ref", Path: path}
			}
		}
		r, ok := ref.(string)
		if !ok {
			return nil, &SchemaError{Path: path, Msg: "$ref must be a string"}
		}
		return c.ref(r, path)
	}
	if e, ok := use("enum"); ok {
		list, ok := e.([]any)
		if !ok || len(list) == 0 {
			return nil, &SchemaError{Path: path + "/enum", Msg: "enum must be a non-empty array"}
		}
		return c.literals(s, list, path, known)
	}
	if e, ok := use("const"); ok {
		return c.literals(s, []any{e}, path, known)
	}
	if all, ok := use("allOf"); ok {
		list, ok := all.([]any)
		if !ok || len(list) != 1 {
			return nil, &UnsupportedError{Keyword: "allOf with more than one schema", Path: path}
		}
		if err := checkKnown(s, known, path); err != nil {
			return nil, err
		}
		return c.compile(list[0], path+"/allOf/0")
	}
	if anyOf, ok := use("anyOf"); ok {
		list, ok := anyOf.([]any)
		if !ok || len(list) == 0 {
			return nil, &SchemaError{Path: path + "/anyOf", Msg: "anyOf must be a non-empty array"}
		}
		if err := checkKnown(s, known, path); err != nil {
			return nil, err
		}
		u, err := c.newNode(&node{kind: kUnion})
		if err != nil {
			return nil, err
		}
		for i, alt := range list {
			n, err := c.compile(alt, fmt.Sprintf("%s/anyOf/%d", path, i))
			if err != nil {
				return nil, err
			}
			u.alts = append(u.alts, n)
		}
		return u, nil
	}
	var types []string
	if t, ok := use("type"); ok {
		switch t := t.(type) {
		case string:
			types = []string{t}
		case []any:
			for _, x := range t {
				xs, ok := x.(string)
				if !ok {
					return nil, &SchemaError{Path: path + "/type", Msg: "type must be a string or a list of strings"}
				}
				types = append(types, xs)
			}
			if len(types) == 0 {
				return nil, &SchemaError{Path: path + "/type", Msg: "empty type list"}
			}
		default:
			return nil, &SchemaError{Path: path + "/type", Msg: "type must be a string or a list of strings"}
		}
	}
	has := func(keys ...string) bool {
		for _, k := range keys {
			if _, ok := s.Get(k); ok {
				return true
			}
		}
		return false
	}
	if types == nil { // infer from the keywords
		if has("properties", "required", "additionalProperties") {
			types = append(types, "object")
		}
		if has("items", "minItems", "maxItems") {
			types = append(types, "array")
		}
		if has("minLength", "maxLength") {
			types = append(types, "string")
		}
		if len(types) > 1 {
			return nil, &SchemaError{Path: path, Msg: "keywords of several types without a type"}
		}
	}
	if types == nil {
		if err := checkKnown(s, known, path); err != nil {
			return nil, err
		}
		return anyNode, nil
	}
	var alts []*node
	seen := map[string]bool{}
	for _, t := range types {
		if seen[t] {
			continue
		}
		seen[t] = true
		var n *node
		var err error
		switch t {
		case "object":
			n, err = c.objectNode(s, path, use)
		case "array":
			n, err = c.arrayNode(s, path, use)
		case "string":
			n, err = c.stringNode(s, path, use)
		case "number":
			n, err = c.newNode(&node{kind: kNumber})
		case "integer":
			n, err = c.newNode(&node{kind: kInteger})
		case "boolean":
			n, err = c.newNode(&node{kind: kLiteral, lits: newLitTrie([][]byte{[]byte("true"), []byte("false")})})
		case "null":
			n, err = c.newNode(&node{kind: kLiteral, lits: newLitTrie([][]byte{[]byte("null")})})
		default:
			return nil, &SchemaError{Path: path + "/type", Msg: fmt.Sprintf("unknown type %q", t)}
		}
		if err != nil {
			return nil, err
		}
		alts = append(alts, n)
	}
	if err := checkKnown(s, known, path); err != nil {
		return nil, err
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return c.newNode(&node{kind: kUnion, alts: alts})
}

func checkKnown(s *object, known map[string]bool, path string) error {
	for _, k := range s.Keys {
		if !known[k] {
			return &UnsupportedError{Keyword: k, Path: path}
		}
	}
	return nil
}

func (c *compiler) objectNode(s *object, path string, use func(string) (any, bool)) (*node, error) {
	n, err := c.newNode(&node{kind: kObject})
	if err != nil {
		return nil, err
	}
	var required []string
	if r, ok := use("required"); ok {
		list, ok := r.([]any)
		if !ok {
			return nil, &SchemaError{Path: path + "/required", Msg: "required must be an array of strings"}
		}
		for _, x := range list {
			xs, ok := x.(string)
			if !ok {
				return nil, &SchemaError{Path: path + "/required", Msg: "required must be an array of strings"}
			}
			required = append(required, xs)
		}
	}
	addl, hasAddl := use("additionalProperties")
	props, hasProps := use("properties")
	if !hasProps || len(props.(*object).Keys) == 0 {
		if _, isObj := props.(*object); hasProps && !isObj {
			return nil, &SchemaError{Path: path + "/properties", Msg: "properties must be an object"}
		}
		if len(required) > 0 {
			return nil, &UnsupportedError{Keyword: "required without properties", Path: path}
		}
		n.kind = kMap
		if hasAddl {
			switch a := addl.(type) {
			case bool:
				if !a {
					n.kind = kLiteral // only {}
					n.lits = newLitTrie([][]byte{[]byte("{}")})
				}
			default:
				v, err := c.compile(a, path+"/additionalProperties")
				if err != nil {
					return nil, err
				}
				n.items = v
			}
		}
		return n, nil
	}
	po, ok := props.(*object)
	if !ok {
		return nil, &SchemaError{Path: path + "/properties", Msg: "properties must be an object"}
	}
	if hasAddl {
		if _, ok := addl.(bool); !ok {
			if _, ok := addl.(*object); !ok {
				return nil, &SchemaError{Path: path + "/additionalProperties", Msg: "must be a boolean or a schema"}
			}
		}
	}
	for _, r := range required {
		if _, ok := po.Get(r); !ok {
			return nil, &UnsupportedError{Keyword: fmt.Sprintf("required property %q not in properties", r), Path: path}
		}
	}
	for _, k := range po.Keys {
		v, _ := po.Get(k)
		val, err := c.compile(v, path+"/properties/"+escapePointer(k))
		if err != nil {
			return nil, err
		}
		key, _ := json.Marshal(k)
		n.props = append(n.props, prop{key: htmlUnescape(key), val: val, required: slices.Contains(required, k)})
	}
	return n, nil
}

// htmlUnescape undoes json.Marshal's HTML escapes (<, >, & as \u003c ...),
// which are valid but needlessly long.
func htmlUnescape(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte(`\u003c`), []byte("<"))
	b = bytes.ReplaceAll(b, []byte(`\u003e`), []byte(">"))
	b = bytes.ReplaceAll(b, []byte(`\u0026`), []byte("&"))
	b = bytes.ReplaceAll(b, []byte(`\u2028`), []byte("\u2028"))
	return bytes.ReplaceAll(b, []byte(`\u2029`), []byte("\u2029"))
}

func escapePointer(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}

func count(s *object, key, path string, use func(string) (any, bool), def int) (int, error) {
	v, ok := use(key)
	if !ok {
		return def, nil
	}
	f, ok := v.(float64)
	if !ok || f < 0 || f != math.Trunc(f) {
		return 0, &SchemaError{Path: path + "/" + key, Msg: "must be a non-negative integer"}
	}
	if f > MaxCount {
		return 0, &UnsupportedError{Keyword: fmt.Sprintf("%s above %d", key, MaxCount), Path: path}
	}
	return int(f), nil
}

func (c *compiler) arrayNode(s *object, path string, use func(string) (any, bool)) (*node, error) {
	n, err := c.newNode(&node{kind: kArray, maxItems: -1})
	if err != nil {
		return nil, err
	}
	if n.minItems, err = count(s, "minItems", path, use, 0); err != nil {
		return nil, err
	}
	if n.maxItems, err = count(s, "maxItems", path, use, -1); err != nil {
		return nil, err
	}
	if n.maxItems >= 0 && n.maxItems < n.minItems {
		return nil, &SchemaError{Path: path, Msg: "maxItems is below minItems"}
	}
	if it, ok := use("items"); ok {
		if _, isList := it.([]any); isList {
			return nil, &UnsupportedError{Keyword: "items as an array (tuple)", Path: path}
		}
		if n.items, err = c.compile(it, path+"/items"); err != nil {
			return nil, err
		}
	}
	return n, nil
}

func (c *compiler) stringNode(s *object, path string, use func(string) (any, bool)) (*node, error) {
	n, err := c.newNode(&node{kind: kString, maxLen: -1})
	if err != nil {
		return nil, err
	}
	if n.minLen, err = count(s, "minLength", path, use, 0); err != nil {
		return nil, err
	}
	if n.maxLen, err = count(s, "maxLength", path, use, -1); err != nil {
		return nil, err
	}
	if n.maxLen >= 0 && n.maxLen < n.minLen {
		return nil, &SchemaError{Path: path, Msg: "maxLength is below minLength"}
	}
	return n, nil
}

// literals compiles enum/const: the values, keeping those that match the
// sibling type (if any).
func (c *compiler) literals(s *object, list []any, path string, known map[string]bool) (*node, error) {
	var types []string
	if t, ok := s.Get("type"); ok {
		known["type"] = true
		switch t := t.(type) {
		case string:
			types = []string{t}
		case []any:
			for _, x := range t {
				if xs, ok := x.(string); ok {
					types = append(types, xs)
				}
			}
		}
	}
	if err := checkKnown(s, known, path); err != nil {
		return nil, err
	}
	var enc [][]byte
	for _, v := range list {
		if types != nil && !slices.ContainsFunc(types, func(t string) bool { return hasType(v, t) }) {
			continue
		}
		var b bytes.Buffer
		encodeValue(&b, v)
		enc = append(enc, b.Bytes())
	}
	if len(enc) == 0 {
		return nil, &SchemaError{Path: path, Msg: "no enum value has the schema's type"}
	}
	return c.newNode(&node{kind: kLiteral, lits: newLitTrie(enc)})
}

func hasType(v any, t string) bool {
	switch v := v.(type) {
	case nil:
		return t == "null"
	case bool:
		return t == "boolean"
	case float64:
		return t == "number" || (t == "integer" && v == math.Trunc(v))
	case string:
		return t == "string"
	case []any:
		return t == "array"
	case *object:
		return t == "object"
	}
	return false
}

func (c *compiler) ref(r, path string) (*node, error) {
	if n, ok := c.refs[r]; ok {
		return n, nil
	}
	var target any
	switch {
	case r == "#" || r == "#/":
		target = c.root
	case strings.HasPrefix(r, "#/$defs/") || strings.HasPrefix(r, "#/definitions/"):
		section, name, _ := strings.Cut(strings.TrimPrefix(r, "#/"), "/")
		name = strings.ReplaceAll(strings.ReplaceAll(name, "~1", "/"), "~0", "~")
		root, ok := c.root.(*object)
		if !ok {
			break
		}
		defs, ok := root.Get(section)
		if !ok {
			break
		}
		if d, ok := defs.(*object); ok {
			target, _ = d.Get(name)
		}
	default:
		return nil, &UnsupportedError{Keyword: "$ref " + strconv.Quote(r) + " (only #, #/$defs/NAME and #/definitions/NAME)", Path: path}
	}
	if target == nil {
		return nil, &SchemaError{Path: path, Msg: fmt.Sprintf("$ref %q points nowhere", r)}
	}
	// A placeholder union of one, filled after compiling the target, so
	// that recursive references resolve to it.
	ph, err := c.newNode(&node{kind: kUnion})
	if err != nil {
		return nil, err
	}
	c.refs[r] = ph
	n, err := c.compile(target, strings.TrimPrefix(r, "#"))
	if err != nil {
		return nil, err
	}
	ph.alts = []*node{n}
	return ph, nil
}

// finish computes every node's fewest instance bytes (a fixpoint, for
// recursive schemas) and the object tails.
func (c *compiler) finish() error {
	for _, n := range c.nodes {
		n.min = infBytes
	}
	for changed := true; changed; {
		changed = false
		for _, n := range c.nodes {
			if m := n.computeMin(); m < n.min {
				n.min, changed = m, true
			}
		}
	}
	for _, n := range c.nodes {
		if n.kind == kObject {
			n.computeTails()
		}
	}
	return nil
}

func minOf(n *node) int {
	if n == nil {
		return 1
	}
	return n.min
}

func sat(a, b int) int { return min(a+b, infBytes) }

func (n *node) computeMin() int {
	switch n.kind {
	case kAny, kNumber, kInteger:
		return 1
	case kMap:
		return 2
	case kString:
		return 2 + n.minLen
	case kLiteral:
		return n.lits.nodes[0].toEnd
	case kArray:
		if n.minItems == 0 {
			return 2
		}
		return sat(2+n.minItems-1, n.minItems*min(minOf(n.items), infBytes/MaxCount))
	case kUnion:
		m := infBytes
		for _, a := range n.alts {
			m = min(m, a.min)
		}
		return m
	case kObject:
		total, req := 2, 0
		for _, p := range n.props {
			if p.required {
				total = sat(total, len(p.key)+1+p.val.min)
				req++
			}
		}
		if req > 1 {
			total = sat(total, req-1)
		}
		return total
	}
	return infBytes
}

func (n *node) computeTails() {
	k := len(n.props)
	n.tail, n.first = make([]int, k+1), make([]int, k+1)
	n.tail[k], n.first[k] = 1, k
	for i := k - 1; i >= 0; i-- {
		n.tail[i], n.first[i] = n.tail[i+1], n.first[i+1]
		if p := n.props[i]; p.required {
			n.tail[i] = sat(n.tail[i], 1+len(p.key)+1+p.val.min) // ,"key":value
			n.first[i] = i
		}
	}
}

// object is a JSON object with its key order.
type object = ordjson.Object

// decodeOrdered decodes JSON keeping object key order, numbers as float64.
func decodeOrdered(data []byte) (any, error) {
	v, err := ordjson.Decode(data, 64)
	if err != nil {
		return nil, err
	}
	return numbersToFloat(v)
}

func numbersToFloat(v any) (any, error) {
	switch v := v.(type) {
	case *object:
		for k, x := range v.Values {
			y, err := numbersToFloat(x)
			if err != nil {
				return nil, err
			}
			v.Values[k] = y
		}
	case []any:
		for i, x := range v {
			y, err := numbersToFloat(x)
			if err != nil {
				return nil, err
			}
			v[i] = y
		}
	case json.Number:
		return v.Float64()
	}
	return v, nil
}

// encodeValue writes v as compact JSON (keys in order).
func encodeValue(b *bytes.Buffer, v any) {
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case float64:
		b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	case string:
		s, _ := json.Marshal(v)
		b.Write(htmlUnescape(s))
	case []any:
		b.WriteByte('[')
		for i, x := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			encodeValue(b, x)
		}
		b.WriteByte(']')
	case *object:
		b.WriteByte('{')
		for i, k := range v.Keys {
			if i > 0 {
				b.WriteByte(',')
			}
			ks, _ := json.Marshal(k)
			b.Write(htmlUnescape(ks))
			b.WriteByte(':')
			encodeValue(b, v.Values[k])
		}
		b.WriteByte('}')
	}
}
