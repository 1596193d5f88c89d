package chat

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
	"github.com/bitnet-mesh/bitnet-mesh/shared/jinja"
)

const llama3 = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"

type vocab map[int]string

func (v vocab) Token(id int) (string, bool) { s, ok := v[id]; return s, ok }

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoad(t *testing.T) {
	msgs := []Message{{RoleUser, " Hi "}}
	gw := gguf.NewWriter()
	for k, v := range map[string]any{"tokenizer.chat_template": llama3, "tokenizer.ggml.bos_token_id": uint32(1), "tokenizer.ggml.eos_token_id": uint32(2)} {
		if err := gw.AddKV(k, v); err != nil {
			t.Fatal(err)
		}
	}
	ggufPath := filepath.Join(t.TempDir(), "m.gguf")
	if err := gw.WriteFile(ggufPath); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		want string
	}{
		{"string template", writeFiles(t, map[string]string{"tokenizer_config.json": `{"bos_token": "<B>", "eos_token": {"content": "<E>"}, "chat_template": ` + quote(llama3) + `}`}),
			"<B><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
		{"named templates", writeFiles(t, map[string]string{"tokenizer_config.json": `{"bos_token": "<B>", "chat_template": [{"name": "tool_use", "template": "x"}, {"name": "default", "template": "{{ bos_token }}{{ messages[0].content }}|{{ eos_token }}"}]}`}),
			"<B> Hi |"},
		{"chat_template.jinja wins", writeFiles(t, map[string]string{"tokenizer_config.json": `{"eos_token": "<E>", "chat_template": "ignored"}`, "chat_template.jinja": "{{ eos_token }}{{ messages | length }}"}),
			"<E>1"},
		{"no template", writeFiles(t, map[string]string{"tokenizer_config.json": `{"bos_token": "<B>"}`}),
			"<|begin_of_text|>User: Hi<|eot_id|>Assistant: "},
		{"no config", writeFiles(t, nil), "<|begin_of_text|>User: Hi<|eot_id|>Assistant: "},
		{"gguf", ggufPath, "<s><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
	}
	for _, tt := range tests {
		tmpl, err := Load(tt.path, vocab{1: "<s>", 2: "</s>"})
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		got, err := tmpl.Apply(msgs, Options{AddGenerationPrompt: true})
		if err != nil || got != tt.want {
			t.Errorf("%s: got %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	bad := writeFiles(t, map[string]string{"tokenizer_config.json": `{"chat_template": "{% if %}"}`})
	if _, err := Load(bad, nil); !errors.Is(err, ErrTemplate) {
		t.Errorf("unparsable template: got %v, want ErrTemplate", err)
	}
	notJSON := writeFiles(t, map[string]string{"tokenizer_config.json": `{`})
	if _, err := Load(notJSON, nil); err == nil {
		t.Error("bad tokenizer_config.json: no error")
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing"), nil); err == nil {
		t.Error("missing path: no error")
	}
	raising, err := Parse(`{{ raise_exception("roles must alternate") }}`, "", "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = raising.Apply(nil, Options{})
	var re *jinja.RaiseError
	if !errors.Is(err, ErrTemplate) || !errors.As(err, &re) || re.Message != "roles must alternate" {
		t.Errorf("raise_exception: got %v, want ErrTemplate with the message", err)
	}
}

func TestApplyVars(t *testing.T) {
	tmpl, err := Parse("{% if enable_thinking is defined and enable_thinking is false %}off{% else %}on{% endif %}", "", "")
	if err != nil {
		t.Fatal(err)
	}
	for want, vars := range map[string]map[string]any{"on": nil, "off": {"enable_thinking": false}} {
		if got, err := tmpl.Apply(nil, Options{Vars: vars}); err != nil || got != want {
			t.Errorf("vars %v: got %q, %v; want %q", vars, got, err, want)
		}
	}
}

func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
