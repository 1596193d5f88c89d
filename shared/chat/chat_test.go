package chat

import (
	"strings"
	"testing"
)

func TestRender(t *testing.T) {
	tests := []struct {
		name string
		msgs []Message
		gen  bool
		want string
	}{
		{"empty", nil, false, ""},
		{"empty with prompt", nil, true, "Assistant: "},
		{"one user", []Message{{RoleUser, "Hey, are you conscious? Can you talk to me?"}}, true,
			"<|begin_of_text|>User: Hey, are you conscious? Can you talk to me?<|eot_id|>Assistant: "},
		{"system user", []Message{{RoleSystem, "You are a helpful AI assistant."}, {RoleUser, "Hi"}}, true,
			"<|begin_of_text|>System: You are a helpful AI assistant.<|eot_id|>User: Hi<|eot_id|>Assistant: "},
		{"multi turn, trimmed", []Message{{RoleUser, "  Hi\n"}, {RoleAssistant, "\tHello! \x1f"}, {RoleUser, "Bye"}}, false,
			"<|begin_of_text|>User: Hi<|eot_id|>Assistant: Hello!<|eot_id|>User: Bye<|eot_id|>"},
		{"inner whitespace kept", []Message{{RoleUser, "a\n\nb"}}, false, "<|begin_of_text|>User: a\n\nb<|eot_id|>"},
	}
	for _, tt := range tests {
		got, err := Render(tt.msgs, tt.gen)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestRenderRoles(t *testing.T) {
	for _, role := range []string{"", "User", "tool", "ipython", "bot"} {
		_, err := Render([]Message{{RoleUser, "x"}, {role, "y"}}, true)
		if err == nil || !strings.Contains(err.Error(), "message 1") {
			t.Errorf("role %q: got %v, want an error naming message 1", role, err)
		}
	}
}
