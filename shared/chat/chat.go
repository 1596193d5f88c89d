// Package chat turns conversations into prompts with a model's own chat
// template: the Jinja template of tokenizer_config.json (chat_template, or
// the chat_template.jinja file newer transformers write) or of a GGUF file
// (tokenizer.chat_template), rendered by package jinja as transformers'
// apply_chat_template renders it, with the model's bos_token and
// eos_token.
//
// A model without a template gets Default, BitNet b1.58 2B4T's template
// (its tokenizer_config.json chat_template):
//
//	{% set loop_messages = messages %}{% for message in loop_messages %}
//	{% set content = message['role'] | capitalize + ': '+ message['content'] | trim + '<|eot_id|>' %}
//	{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}
//	{{ content }}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}
//
// which differs from stock LLaMA 3 (no <|start_header_id|> headers): turns are
// "System: ...<|eot_id|>User: ...<|eot_id|>Assistant: ". Rendered text
// starts with the BOS token when the template writes it, so encode it with
// special tokens recognised and do not add another BOS.
package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
	"github.com/bitnet-mesh/bitnet-mesh/shared/jinja"
)

// Special tokens of the default template.
const (
	BOS        = "<|begin_of_text|>"
	EndOfTurn  = "<|eot_id|>"
	Generation = "Assistant: "
)

// Roles the default template accepts (Render checks them).
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// DefaultSource is the default template's text (BitNet b1.58 2B4T's).
const DefaultSource = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = message['role'] | capitalize + ': '+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}"

// ErrTemplate marks a template that cannot be parsed or rendered (a
// raise_exception call included): the caller's conversation or the model's
// template is at fault, not the server.
var ErrTemplate = errors.New("chat template")

// Message is one turn of a conversation.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Template is a parsed chat template with the special tokens it is
// rendered with. It is safe for concurrent use.
type Template struct {
	src      string
	t        *jinja.Template
	bos, eos string
	builtin  bool
}

// Parse parses a Jinja chat template; bos and eos are the bos_token and
// eos_token variables it sees.
func Parse(src, bos, eos string) (*Template, error) {
	t, err := jinja.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTemplate, err)
	}
	return &Template{src: src, t: t, bos: bos, eos: eos}, nil
}

var defaultTemplate = func() *Template {
	t, err := Parse(DefaultSource, BOS, EndOfTurn)
	if err != nil {
		panic(err)
	}
	t.builtin = true
	return t
}()

// Default returns BitNet b1.58 2B4T's template with its special tokens.
func Default() *Template { return defaultTemplate }

// Source returns the template text.
func (t *Template) Source() string { return t.src }

// Builtin reports whether t is Default (the model has no template).
func (t *Template) Builtin() bool { return t.builtin }

// BOS and EOS are the bos_token and eos_token the template sees.
func (t *Template) BOS() string { return t.bos }

// EOS returns the eos_token the template sees.
func (t *Template) EOS() string { return t.eos }

// Options are the variables of one render besides the messages.
type Options struct {
	// AddGenerationPrompt ends the text with the prompt for the
	// assistant's reply.
	AddGenerationPrompt bool
	// Vars are extra template variables (e.g. enable_thinking, tools), as
	// apply_chat_template's keyword arguments; values are JSON-like Go
	// values or jinja values (*jinja.Dict keeps key order).
	Vars map[string]any
}

// Apply renders msgs. Errors wrap ErrTemplate; a template's own
// raise_exception message is kept (a *jinja.RaiseError in the chain).
func (t *Template) Apply(msgs []Message, o Options) (string, error) {
	list := make([]any, len(msgs))
	for i, m := range msgs {
		d := jinja.NewDict()
		d.Set("role", m.Role)
		d.Set("content", m.Content)
		list[i] = d
	}
	vars := map[string]any{}
	for k, v := range o.Vars {
		vars[k] = v
	}
	vars["messages"] = list
	vars["add_generation_prompt"] = o.AddGenerationPrompt
	vars["bos_token"] = t.bos
	vars["eos_token"] = t.eos
	out, err := t.t.Render(vars)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrTemplate, err)
	}
	return out, nil
}

// Render renders msgs with the default template; with addGenerationPrompt
// the text ends with the "Assistant: " prompt for the model's reply. Roles
// must be system, user or assistant.
func Render(msgs []Message, addGenerationPrompt bool) (string, error) {
	for i, m := range msgs {
		switch m.Role {
		case RoleSystem, RoleUser, RoleAssistant:
		default:
			return "", fmt.Errorf("chat: message %d: role %q is not one of system, user, assistant", i, m.Role)
		}
	}
	return defaultTemplate.Apply(msgs, Options{AddGenerationPrompt: addGenerationPrompt})
}

// Tokens resolves token IDs to their text; a *tokenizer.Tokenizer does.
type Tokens interface {
	Token(id int) (string, bool)
}

// Load reads the chat template of a model: a Hugging Face directory
// (chat_template.jinja, else tokenizer_config.json's chat_template, a
// string or the list of named templates whose "default" it takes) or a
// .gguf file (tokenizer.chat_template, its BOS and EOS named through tok).
// A model without a template gets Default; a template that does not parse
// is an error (wrapping ErrTemplate).
func Load(path string, tok Tokens) (*Template, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	if !st.IsDir() {
		return loadGGUF(path, tok)
	}
	var cfg struct {
		ChatTemplate json.RawMessage `json:"chat_template"`
		BOS          json.RawMessage `json:"bos_token"`
		EOS          json.RawMessage `json:"eos_token"`
	}
	data, err := os.ReadFile(filepath.Join(path, "tokenizer_config.json"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("chat: %w", err)
	default:
		if err := json.Unmarshal(data, &cfg); err != nil {
			return nil, fmt.Errorf("chat: tokenizer_config.json: %w", err)
		}
	}
	src, err := templateText(cfg.ChatTemplate)
	if err != nil {
		return nil, fmt.Errorf("chat: tokenizer_config.json chat_template: %w", err)
	}
	if b, err := os.ReadFile(filepath.Join(path, "chat_template.jinja")); err == nil {
		src = string(b)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("chat: %w", err)
	}
	if src == "" {
		return Default(), nil
	}
	return Parse(src, tokenText(cfg.BOS), tokenText(cfg.EOS))
}

// templateText reads chat_template: a string, or [{"name", "template"}]
// from which it takes "default".
func templateText(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var named []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(raw, &named); err != nil {
		return "", fmt.Errorf("neither a string nor a list of named templates")
	}
	for _, n := range named {
		if n.Name == "default" {
			return n.Template, nil
		}
	}
	if len(named) > 0 {
		return named[0].Template, nil
	}
	return "", nil
}

// tokenText reads bos_token/eos_token: a string or {"content": ...}.
func tokenText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var obj struct {
		Content string `json:"content"`
	}
	if json.Unmarshal(raw, &obj) == nil {
		return obj.Content
	}
	return ""
}

func loadGGUF(path string, tok Tokens) (*Template, error) {
	if !strings.EqualFold(filepath.Ext(path), ".gguf") {
		return Default(), nil
	}
	f, err := gguf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	defer f.Close()
	src, err := f.String("tokenizer.chat_template")
	if err != nil || src == "" {
		return Default(), nil
	}
	name := func(key string) string {
		id, err := f.Uint32(key)
		if err != nil || tok == nil {
			return ""
		}
		s, _ := tok.Token(int(id))
		return s
	}
	return Parse(src, name("tokenizer.ggml.bos_token_id"), name("tokenizer.ggml.eos_token_id"))
}

// endOfTurn are the end-of-turn markers of known chat formats.
var endOfTurn = []string{EndOfTurn, "<|im_end|>", "<end_of_turn>", "<|end|>", "<|eom_id|>"}

// TokenIDs looks tokens up by text; a *tokenizer.Tokenizer does.
type TokenIDs interface {
	TokenID(s string) (int, bool)
}

// EndTokens returns the token IDs that end the assistant's turn in chats
// rendered with t: the template's eos_token and the known end-of-turn
// markers its text writes (<|eot_id|>, <|im_end|>, <end_of_turn>, ...),
// those the vocabulary has. Generation stops at them as at the model's EOS.
func (t *Template) EndTokens(tok TokenIDs) []int {
	var ids []int
	add := func(s string) {
		if id, ok := tok.TokenID(s); ok && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if t.eos != "" && !t.builtin {
		add(t.eos)
	}
	for _, m := range endOfTurn {
		if strings.Contains(t.src, m) {
			add(m)
		}
	}
	return ids
}
