package sampling

import (
	"strings"
	"testing"
)

func TestStopMatcher(t *testing.T) {
	tests := []struct {
		name   string
		stops  []string
		pieces []string
		want   string // emitted text
		stop   bool
	}{
		{"no stops", nil, []string{"a", "b"}, "ab", false},
		{"split stop", []string{"<|eot|>"}, []string{"hello <|", "eo", "t|> tail"}, "hello ", true},
		{"false start", []string{"STOP"}, []string{"ST", "ART", " ok"}, "START ok", false},
		{"earliest of several", []string{"bb", "ab"}, []string{"xab", "b"}, "x", true},
		{"stop at start", []string{"\n\n"}, []string{"\n", "\nmore"}, "", true},
		{"overlapping prefix", []string{"aab"}, []string{"a", "a", "a", "b"}, "a", true},
		{"held until flush", []string{"User:"}, []string{"fine. Use"}, "fine. Use", false},
		{"unicode", []string{"終わり"}, []string{"日本", "終わ", "り!"}, "日本", true},
		{"empty stop ignored", []string{""}, []string{"x"}, "x", false},
	}
	for _, tt := range tests {
		m := NewStopMatcher(tt.stops...)
		var sb strings.Builder
		stopped := false
		for _, p := range tt.pieces {
			out, stop := m.Push(p)
			sb.WriteString(out)
			if stop {
				stopped = true
				break
			}
		}
		if !stopped {
			sb.WriteString(m.Flush())
		}
		if sb.String() != tt.want || stopped != tt.stop {
			t.Errorf("%s: got %q, stop=%v; want %q, stop=%v", tt.name, sb.String(), stopped, tt.want, tt.stop)
		}
	}
}

func TestStopMatcherHoldsBack(t *testing.T) {
	m := NewStopMatcher("<|eot_id|>")
	if out, _ := m.Push("abc<|eot"); out != "abc" {
		t.Errorf("Push = %q, want %q (partial stop held back)", out, "abc")
	}
	if out, stop := m.Push("_x"); out != "<|eot_x" || stop {
		t.Errorf("Push = %q, %v; want the held text released", out, stop)
	}
}
