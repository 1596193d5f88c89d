// Package chat renders conversations with the chat template of BitNet b1.58
// 2B4T (its tokenizer_config.json chat_template):
//
//	{% for message in messages %}{% set content = message['role'] | capitalize
//	+ ': ' + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}
//	{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}
//	{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}
//
// which differs from stock LLaMA 3 (no <|start_header_id|> headers): turns are
// "System: ...<|eot_id|>User: ...<|eot_id|>Assistant: ". The rendered text
// starts with <|begin_of_text|>, so encode it with special tokens recognised
// and do not add another BOS.
package chat

import (
	"fmt"
	"strings"
	"unicode"
)

// Special tokens the template uses.
const (
	BOS        = "<|begin_of_text|>"
	EndOfTurn  = "<|eot_id|>"
	Generation = "Assistant: "
)

// Roles the template accepts.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Message is one turn of a conversation.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Render renders msgs; with addGenerationPrompt the text ends with the
// "Assistant: " prompt for the model's reply. Roles must be system, user or
// assistant.
func Render(msgs []Message, addGenerationPrompt bool) (string, error) {
	var sb strings.Builder
	for i, m := range msgs {
		switch m.Role {
		case RoleSystem, RoleUser, RoleAssistant:
		default:
			return "", fmt.Errorf("chat: message %d: role %q is not one of system, user, assistant", i, m.Role)
		}
		if i == 0 {
			sb.WriteString(BOS)
		}
		sb.WriteString(capitalize(m.Role))
		sb.WriteString(": ")
		sb.WriteString(strings.TrimFunc(m.Content, isPySpace))
		sb.WriteString(EndOfTurn)
	}
	if addGenerationPrompt {
		sb.WriteString(Generation)
	}
	return sb.String(), nil
}

// capitalize is Jinja's capitalize: first character upper case, the rest
// lower case.
func capitalize(s string) string {
	if s == "" {
		return s
	}
	r := []rune(strings.ToLower(s))
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}

// isPySpace is Python's str.isspace, which Jinja's trim strips: Unicode
// White_Space plus the ASCII separators U+001C..U+001F.
func isPySpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}
