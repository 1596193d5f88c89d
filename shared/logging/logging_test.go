package logging

import (
	"context"
	"testing"

	"go.uber.org/zap"
)

func TestNewLevels(t *testing.T) {
	tests := []struct {
		level   string
		json    bool
		wantErr bool
	}{
		{"debug", false, false},
		{"info", true, false},
		{"warn", true, false},
		{"error", false, false},
		{"loud", false, true},
	}
	for _, tt := range tests {
		l, err := New(tt.level, tt.json)
		if (err != nil) != tt.wantErr {
			t.Errorf("New(%q): got err %v, want error %v", tt.level, err, tt.wantErr)
		}
		if err == nil && l == nil {
			t.Errorf("New(%q): got nil logger", tt.level)
		}
	}
}

func TestContext(t *testing.T) {
	ctx := context.Background()
	if got := RequestID(ctx); got != "" {
		t.Errorf("got request ID %q, want empty", got)
	}
	fb := zap.NewExample()
	if got := FromContext(ctx, fb); got != fb {
		t.Errorf("got %p, want fallback %p", got, fb)
	}
	if FromContext(ctx, nil) == nil {
		t.Error("got nil logger without fallback, want no-op")
	}
	l := zap.NewNop()
	ctx = WithRequestID(WithLogger(ctx, l), "abc")
	if got := FromContext(ctx, fb); got != l {
		t.Errorf("got %p, want ctx logger %p", got, l)
	}
	if got := RequestID(ctx); got != "abc" {
		t.Errorf("got request ID %q, want abc", got)
	}
}
