package constrained

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

func mustCompile(t testing.TB, schema string) *Grammar {
	t.Helper()
	g, err := CompileSchema([]byte(schema))
	if err != nil {
		t.Fatalf("compile %s: %v", schema, err)
	}
	return g
}

func TestPrefix(t *testing.T) {
	person := `{"type": "object", "properties": {"name": {"type": "string", "maxLength": 5}, "age": {"type": "integer"}, "tags": {"type": "array", "items": {"enum": ["a", "b", 1.5, null]}, "maxItems": 2}}, "required": ["name"]}`
	tests := []struct {
		schema string
		text   string
		prefix bool
		done   bool
	}{
		{person, `{"name": "Ann"}`, true, true},
		{person, `{"name":"Ann","age":-12,"tags":["a",1.5]}`, true, true},
		{person, "{\n  \"name\": \"Bo\",\n  \"tags\": [null]\n}", true, true},
		{person, `{"name": "Annabel"}`, false, false},                  // maxLength
		{person, `{"age": 3, "name": "x"}`, false, false},              // order
		{person, `{"name": "x", "age": 1.5}`, false, false},            // integer
		{person, `{"name": "x", "tags": ["a","b","a"]}`, false, false}, // maxItems
		{person, `{"name": "x", "extra": 1}`, false, false},
		{person, `{}`, false, false}, // required
		{person, `{"name": "x"`, true, false},
		{person, `{"na`, true, false},
		{person, ` {"name": "x"}`, false, false}, // no leading space
		{person, `{"name": "x"} `, false, false}, // nor trailing
		{`{"type": "number"}`, `-0.5e+10`, true, true},
		{`{"type": "number"}`, `01`, false, false},
		{`{"type": "integer"}`, `12`, true, true},
		{`{"type": "integer"}`, `1e3`, false, false},
		{`{"type": "string"}`, `"a\u00e9\n\"\\ é 日本 🙂"`, true, true},
		{`{"type": "string"}`, `"\ud83d"`, false, false},         // surrogate escape
		{`{"type": "string"}`, "\"\x01\"", false, false},         // control character
		{`{"type": "string"}`, "\"\xc3\x28\"", false, false},     // bad UTF-8
		{`{"type": "string"}`, "\"\xed\xa0\x80\"", false, false}, // UTF-8 surrogate
		{`{"type": "string", "minLength": 2}`, `"é"`, false, false},
		{`{"type": ["string", "null"]}`, `null`, true, true},
		{`{"anyOf": [{"type": "integer"}, {"type": "object", "properties": {"a": {"const": true}}, "required": ["a"]}]}`, `{"a":true}`, true, true},
		{`{"anyOf": [{"type": "integer"}, {"type": "number"}]}`, `1.25`, true, true},
		{`{"enum": ["red", "green", 10, 100]}`, `100`, true, true},
		{`{"enum": ["red", "green", 10, 100]}`, `"gre`, true, false},
		{`{"$defs": {"n": {"type": "object", "properties": {"next": {"$ref": "#/$defs/n"}}}}, "$ref": "#/$defs/n"}`, `{"next":{"next":{}}}`, true, true},
		{`{}`, `[1, {"a": [true, null]}, "x"]`, true, true},
		{`{"type": "object", "additionalProperties": {"type": "integer"}}`, `{"a": 1, "b": 2}`, true, true},
		{`{"type": "object", "additionalProperties": {"type": "integer"}}`, `{"a": "x"}`, false, false},
	}
	for _, tt := range tests {
		g := mustCompile(t, tt.schema)
		prefix, done := g.Prefix([]byte(tt.text))
		if prefix != tt.prefix || done != tt.done {
			t.Errorf("%s on %q: got prefix %v complete %v, want %v %v", tt.schema, tt.text, prefix, done, tt.prefix, tt.done)
		}
	}
	obj := JSONObject()
	for text, want := range map[string]bool{`{"a": {"b": [1, "x", null]}}`: true, `[1]`: false, `"s"`: false, `{}`: true} {
		if _, done := obj.Prefix([]byte(text)); done != want {
			t.Errorf("json_object on %s: got complete %v, want %v", text, done, want)
		}
	}
	deep := strings.Repeat(`{"a":`, MaxDepth) + "1" + strings.Repeat("}", MaxDepth)
	if ok, _ := obj.Prefix([]byte(deep)); ok {
		t.Errorf("json_object nested %d deep: accepted, want at most %d", MaxDepth+1, MaxDepth)
	}
}

func TestUnsupported(t *testing.T) {
	tests := []struct{ schema, keyword, path string }{
		{`{"type": "string", "pattern": "^a"}`, "pattern", ""},
		{`{"type": "object", "properties": {"d": {"type": "string", "format": "date-time"}}}`, "format", "/properties/d"},
		{`{"type": "integer", "minimum": 0}`, "minimum", ""},
		{`{"oneOf": [{"type": "string"}]}`, "oneOf", ""},
		{`{"type": "array", "items": [{"type": "string"}]}`, "items as an array (tuple)", ""},
		{`{"$ref": "other.json"}`, `$ref "other.json" (only #, #/$defs/NAME and #/definitions/NAME)`, ""},
		{`{"type": "string", "maxLength": 100000}`, "maxLength above 4096", ""},
		{`{"allOf": [{"type": "string"}, {"maxLength": 3}]}`, "allOf with more than one schema", ""},
	}
	for _, tt := range tests {
		_, err := CompileSchema([]byte(tt.schema))
		var ue *UnsupportedError
		if !errors.As(err, &ue) || ue.Keyword != tt.keyword || ue.Path != tt.path {
			t.Errorf("%s: got %v, want unsupported %q at %q", tt.schema, err, tt.keyword, tt.path)
		}
	}
	for _, bad := range []string{`{`, `false`, `{"type": "strin"}`, `{"type": "object", "properties": {"a": {"$ref": "#/properties/a"}}}`,
		`{"$defs": {"x": {"type": "object", "properties": {"x": {"$ref": "#/$defs/x"}}, "required": ["x"]}}, "$ref": "#/$defs/x"}`,
		`{"type": "string", "minLength": 5, "maxLength": 2}`, `{"enum": []}`, `{"type": "integer", "enum": ["a"]}`} {
		_, err := CompileSchema([]byte(bad))
		var se *SchemaError
		var ue *UnsupportedError
		if !errors.As(err, &se) && !errors.As(err, &ue) {
			t.Errorf("%s: got %v, want a schema error", bad, err)
		}
	}
}

// testVocab is a byte-level vocabulary: every byte, plus multi-byte
// tokens typical of JSON output, and some special (nil) slots.
func testVocab() *Vocab {
	var toks [][]byte
	for b := 0; b < 256; b++ {
		toks = append(toks, []byte{byte(b)})
	}
	for _, s := range []string{`{"`, `":`, `": "`, `", "`, `"}`, `},`, `"]`, `["`, `null`, `true`, `false`, ` the`, `name`, `"name"`, `age`,
		`12`, `345`, `0.`, `e+`, `\n`, `\u00`, "\n  ", "é", "日本", "🙂", "\xe6\x97", `Light`, ` is`, `, `, `}}`, `]}`, `\"`, "a\"b", `""`} {
		toks = append(toks, []byte(s))
	}
	toks = append(toks, nil, nil)
	return NewVocab(toks)
}

// generate samples a document token by token from the allowed ones (the
// end when CanEnd, with probability pEnd), with a budget of max tokens.
func generate(rng *rand.Rand, g *Grammar, v *Vocab, max int, pEnd float64) (out []byte, finished, restricted bool, err error) {
	m := g.NewMatcher(v)
	allowed := make([]uint64, v.MaskWords())
	for n := 0; n < max; n++ {
		if m.Done() {
			return out, true, restricted, nil
		}
		if m.CanEnd() && rng.Float64() < pEnd {
			return out, true, restricted, nil
		}
		restricted = m.Mask(allowed, max-n) || restricted
		var ids []int
		for id := 0; id < v.Size(); id++ {
			if allowed[id>>6]&(1<<(uint(id)&63)) != 0 {
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			if m.CanEnd() {
				return out, true, restricted, nil
			}
			return out, false, restricted, fmt.Errorf("no token allowed after %q", out)
		}
		id := ids[rng.IntN(len(ids))]
		if err := m.Accept(id); err != nil {
			return out, false, restricted, fmt.Errorf("after %q: %w", out, err)
		}
		out = append(out, v.bytes[id]...)
	}
	return out, m.CanEnd(), restricted, nil
}

// randomSchema returns a random schema of the supported subset.
func randomSchema(rng *rand.Rand, depth int) string {
	kinds := []string{"string", "integer", "number", "boolean", "null", "enum", "object", "array", "anyOf", "any", "map"}
	if depth >= 3 {
		kinds = kinds[:6]
	}
	switch kinds[rng.IntN(len(kinds))] {
	case "string":
		s := `{"type": "string"`
		if rng.IntN(2) == 0 {
			lo := rng.IntN(4)
			s += fmt.Sprintf(`, "minLength": %d, "maxLength": %d`, lo, lo+rng.IntN(6))
		}
		return s + "}"
	case "integer":
		return `{"type": "integer"}`
	case "number":
		return `{"type": "number", "description": "x"}`
	case "boolean":
		return `{"type": "boolean"}`
	case "null":
		return `{"type": ["null", "string"]}`
	case "enum":
		return `{"enum": ["a", "ab", 1, 12, {"k": [1, "é"]}, null, "q\"uote"]}`
	case "any":
		return `{}`
	case "map":
		return fmt.Sprintf(`{"type": "object", "additionalProperties": %s}`, randomSchema(rng, depth+1))
	case "array":
		lo := rng.IntN(3)
		return fmt.Sprintf(`{"type": "array", "items": %s, "minItems": %d, "maxItems": %d}`, randomSchema(rng, depth+1), lo, lo+rng.IntN(4))
	case "anyOf":
		return fmt.Sprintf(`{"anyOf": [%s, %s]}`, randomSchema(rng, depth+1), randomSchema(rng, depth+1))
	}
	var props, req []string
	for i := range 1 + rng.IntN(4) {
		name := []string{"name", "age", "n", "names", "é", "a\"b"}[i]
		k, _ := json.Marshal(name)
		props = append(props, fmt.Sprintf(`%s: %s`, k, randomSchema(rng, depth+1)))
		if rng.IntN(2) == 0 {
			req = append(req, string(k))
		}
	}
	return fmt.Sprintf(`{"type": "object", "properties": {%s}, "required": [%s], "additionalProperties": false}`, strings.Join(props, ", "), strings.Join(req, ", "))
}

func validator(t *testing.T, schema string) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("schema.json")
	if err != nil {
		t.Fatalf("validator rejects %s: %v", schema, err)
	}
	return s
}

// TestRandomSchemas is the property test: for random schemas of the subset,
// every document generated under the mask (random tokens among those
// allowed, random budgets, the end when allowed) parses and validates
// against the schema with an independent validator.
func TestRandomSchemas(t *testing.T) {
	seed := uint64(7)
	if s := os.Getenv("BITNET_CONSTRAINED_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	rng := rand.New(rand.NewPCG(seed, 13))
	v := testVocab()
	n := 300
	if testing.Short() {
		n = 60
	}
	for i := range n {
		schema := randomSchema(rng, 0)
		g := mustCompile(t, schema)
		val := validator(t, schema)
		budget := g.root.min + rng.IntN(60)
		out, finished, _, err := generate(rng, g, v, budget, 0.3)
		if err != nil {
			t.Fatalf("schema %d %s: %v", i, schema, err)
		}
		if !finished {
			t.Fatalf("schema %d %s: budget %d ended with an incomplete document %q", i, schema, budget, out)
		}
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(string(out)))
		if err != nil {
			t.Fatalf("schema %d %s: output %q does not parse: %v", i, schema, out, err)
		}
		if err := val.Validate(inst); err != nil {
			t.Fatalf("schema %d %s: output %q does not validate: %v", i, schema, out, err)
		}
	}
}

// TestJSONObjectOutputs: json_object outputs are JSON objects, also when the
// budget is tight.
func TestJSONObjectOutputs(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	v := testVocab()
	for i := range 200 {
		budget := 2 + rng.IntN(80)
		out, finished, _, err := generate(rng, JSONObject(), v, budget, 0.2)
		if err != nil || !finished {
			t.Fatalf("%d: %q finished %v: %v", i, out, finished, err)
		}
		var obj map[string]any
		if err := json.Unmarshal(out, &obj); err != nil {
			t.Fatalf("%d: %q: %v", i, out, err)
		}
	}
}

func TestBudgetRestricts(t *testing.T) {
	g := mustCompile(t, `{"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}`)
	v := testVocab()
	m := g.NewMatcher(v)
	allowed := make([]uint64, v.MaskWords())
	if err := m.AcceptBytes([]byte(`{"text": "abc`)); err != nil {
		t.Fatal(err)
	}
	if m.Remaining() != 2 {
		t.Fatalf("remaining: got %d, want 2 (`\"}`)", m.Remaining())
	}
	// Two tokens left: only tokens after which one token can finish.
	if !m.Mask(allowed, 2) {
		t.Error("budget 2: not restricted, want restricted")
	}
	for id := range v.Size() {
		if allowed[id>>6]&(1<<(uint(id)&63)) == 0 {
			continue
		}
		m2 := g.NewMatcher(v)
		_ = m2.AcceptBytes([]byte(`{"text": "abc`))
		if err := m2.Accept(id); err != nil || m2.Remaining() > 1 {
			t.Errorf("token %q allowed with 2 left: remaining after it %d, %v", v.bytes[id], m2.Remaining(), err)
		}
	}
	if m.Mask(allowed, 100) {
		t.Error("budget 100: restricted, want not")
	}
}

func TestDone(t *testing.T) {
	v := testVocab()
	g := mustCompile(t, `{"type": "object", "properties": {"a": {"type": "integer"}}}`)
	m := g.NewMatcher(v)
	for _, s := range []string{"{", `"a":`, "1"} {
		if err := m.AcceptBytes([]byte(s)); err != nil {
			t.Fatal(err)
		}
		if m.Done() || m.CanEnd() {
			t.Errorf("after %q: done or can end", s)
		}
	}
	_ = m.AcceptBytes([]byte("}"))
	if !m.Done() {
		t.Error("after }: not done")
	}
	n := mustCompile(t, `{"type": "integer"}`).NewMatcher(v)
	_ = n.AcceptBytes([]byte("12"))
	if !n.CanEnd() || n.Done() {
		t.Error("integer 12: want can end, not done (more digits may follow)")
	}
	if err := n.AcceptBytes([]byte("x")); !errors.Is(err, ErrRejected) {
		t.Errorf("integer 12x: got %v, want ErrRejected", err)
	}
}

// TestMaskMatchesPrefix checks Mask against Prefix for every token of the
// vocabulary at several points of a document (the bulk paths included).
func TestMaskMatchesPrefix(t *testing.T) {
	v := testVocab()
	g := mustCompile(t, `{"type": "object", "properties": {"name": {"type": "string", "maxLength": 6}, "xs": {"type": "array", "items": {"type": "number"}}}, "required": ["name", "xs"]}`)
	allowed := make([]uint64, v.MaskWords())
	for _, prefix := range []string{"", "{", `{"name"`, `{"name": "ab`, `{"name": "abcdef`, `{"name": "a\`, `{"name": "a", "xs": [1`, `{"name": "a", "xs": [1.5e`, "{\"name\": \"\xe6"} {
		m := g.NewMatcher(v)
		if err := m.AcceptBytes([]byte(prefix)); err != nil {
			t.Fatalf("%q: %v", prefix, err)
		}
		m.Mask(allowed, 1000)
		for id := range v.Size() {
			got := allowed[id>>6]&(1<<(uint(id)&63)) != 0
			want := false
			if len(v.bytes[id]) > 0 {
				want, _ = g.Prefix(append([]byte(prefix), v.bytes[id]...))
			}
			if got != want {
				t.Errorf("after %q token %q: allowed %v, want %v", prefix, v.bytes[id], got, want)
			}
		}
	}
}

// FuzzCompileSchema: arbitrary schemas compile or fail cleanly, and a
// compiled grammar accepts its own walk without panicking.
func FuzzCompileSchema(f *testing.F) {
	for _, s := range []string{`{"type": "object", "properties": {"a": {"type": "string", "maxLength": 3}}, "required": ["a"]}`,
		`{"anyOf": [{"type": "integer"}, {"enum": [1, "x", null]}]}`, `{"$defs": {"n": {"type": "array", "items": {"$ref": "#/$defs/n"}}}, "$ref": "#/$defs/n"}`,
		`{"type": ["string", "null"], "minLength": 1}`, `true`, `{}`} {
		f.Add(s, "{\"a\": \"xy\"}")
	}
	f.Fuzz(func(t *testing.T, schema, text string) {
		g, err := CompileSchema([]byte(schema))
		if err != nil {
			return
		}
		g.Prefix([]byte(text))
	})
}

// TestBudgetTooSmall: below the shortest document the grammar alone decides
// (the output is cut), never an empty mask.
func TestBudgetTooSmall(t *testing.T) {
	v := testVocab()
	g := mustCompile(t, `{"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}`)
	m := g.NewMatcher(v)
	allowed := make([]uint64, v.MaskWords())
	if !m.Mask(allowed, 2) || allZero(allowed) {
		t.Fatal("budget 2 for an 11-byte minimum: want restricted and some token allowed")
	}
	if allowed['{'>>6]&(1<<('{'&63)) == 0 {
		t.Error("'{' not allowed")
	}
}
