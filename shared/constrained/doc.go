// Package constrained makes a language model's output a valid JSON
// document: any JSON object (OpenAI's response_format json_object) or a
// document valid against a JSON Schema (json_schema). It compiles the
// schema to a pushdown automaton over bytes and, before every sampling
// step, masks the tokens whose bytes would leave the output no longer a
// prefix of a valid document: a Matcher walks the vocabulary's byte trie
// with the automaton, cutting every subtree at its first invalid byte, and
// accepts runs of plain string characters in bulk (string bodies are where
// most of the vocabulary is valid). The automaton is hand-written rather
// than a general grammar engine: JSON's states are few, so stepping one
// byte is a switch on a small value with no allocation, which keeps the
// mask of a 128k-token vocabulary well under 10% of a decode step.
//
// # Supported JSON Schema subset
//
//   - type: object, array, string, number, integer, boolean, null, or a
//     list of them; enum and const (any JSON values); anyOf; $ref to
//     "#", "#/$defs/NAME" or "#/definitions/NAME" (recursion included);
//     allOf with one schema; the empty schema and true (any value).
//   - object: properties (generated in the order written), required,
//     additionalProperties. Only the declared properties are generated
//     (valid whatever additionalProperties says); an object schema
//     without properties generates any keys, with values of
//     additionalProperties when it is a schema.
//   - array: items, minItems, maxItems (at most 4096).
//   - string: minLength, maxLength (characters, at most 4096).
//   - annotations are ignored: title, description, default, examples,
//     $schema, $id, $comment, deprecated, readOnly, writeOnly.
//
// Anything else (pattern, format, minimum and the other numeric bounds,
// oneOf, not, if/then/else, prefixItems, uniqueItems, patternProperties,
// minProperties, dependent*, unevaluated*, contains, ...) is an
// *UnsupportedError naming the keyword and where it is, so that a
// document the decoder produces always validates.
//
// # What is generated
//
// No whitespace before the document or after it; at most MaxWhitespace
// bytes of whitespace at a time between tokens of the document; numbers
// of at most 15 integer digits, 15 fraction digits and 2 exponent digits
// (integers: no fraction or exponent); strings of valid UTF-8 without
// control characters, where escapes are \" \\ \/ \b \f \n \r \t and
// \uXXXX outside the surrogate range (write astral characters as UTF-8);
// json_object documents nest at most MaxDepth deep.
//
// # Budget
//
// Mask takes the tokens left (max_tokens and the context, whichever ends
// first) and only allows tokens after which the document can still be
// completed with the tokens left (counting one token per byte: byte-level
// vocabularies have a token for every byte). So the output always parses
// and validates, also when generation hits max_tokens: the decoder closes
// the document in time, and Mask reports that the budget restricted the
// choice (the caller reports finish_reason "length" then, as the output was
// shortened by the limit).
package constrained
