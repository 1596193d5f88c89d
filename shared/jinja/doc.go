// Package jinja renders the Jinja2 chat templates that Hugging Face models
// ship in tokenizer_config.json (chat_template) and GGUF files
// (tokenizer.chat_template), with the semantics of transformers'
// apply_chat_template: an ImmutableSandboxedEnvironment with trim_blocks and
// lstrip_blocks, the loopcontrols extension, Python's str methods and
// json.dumps-compatible tojson.
//
// It is a small interpreter of the subset of Jinja the real templates use,
// written here rather than taken from a library: the maintained Go port
// (github.com/nikolalohinski/gonja/v2, v2.9.1, evaluated against the
// templates in testdata) fails to parse Gemma 3's `(a if b else c)`, and
// neither it nor pongo2 keeps dict key order, which tojson must reproduce
// for tool schemas, or follows Python's string methods and repr. The
// golden tests render the real templates of BitNet b1.58 2B4T, LLaMA 2 and
// 3, Falcon3, Qwen3 and Gemma 3.
//
// Supported: {{ }}, {% %} and {# #} with whitespace control (- and +);
// if/elif/else, for (tuple targets, `if` filter, else, loop.index,
// index0, revindex, revindex0, first, last, length, previtem, nextitem,
// cycle), break, continue, set (names, namespace attributes, blocks),
// macro, generation blocks (rendered as their body); literals (strings,
// numbers, lists, tuples, dicts, true/false/none in either case), the
// operators of Jinja (and, or, not, in, not in, is [not], comparisons,
// + - * / // % ** ~, a if b else c), attribute and item access, slices
// with steps; the filters and tests in filters.go; the globals range,
// namespace, dict, raise_exception and strftime_now; the str, dict and
// list methods the templates call (strip, split, startswith, items, get,
// ...). Anything else is a parse or render error naming it.
//
// Rendering is bounded: a template that loops or grows its output past the
// limits of Options fails instead of running on.
package jinja
