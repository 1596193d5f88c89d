package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRemoteRequested(t *testing.T) {
	tests := []struct {
		args []string
		want bool
	}{
		{[]string{"--model", "m", "--prompt", "p"}, false},
		{[]string{"--remote", "h:1", "--model", "m"}, true},
		{[]string{"-remote=h:1"}, true},
		{[]string{"--model", "m", "--remote=h:1"}, true},
		{[]string{"--prompt", "--remote"}, true}, // flag-looking values are flags to the flag package too
		{[]string{"--", "--remote"}, false},
		{[]string{"--remoteness"}, false},
	}
	for _, tt := range tests {
		if got := remoteRequested(tt.args); got != tt.want {
			t.Errorf("remoteRequested(%q) = %v, want %v", tt.args, got, tt.want)
		}
	}
}

func TestRemoteGenerate(t *testing.T) {
	addr, _ := startMesh(t)
	tests := []struct {
		name, want, wantErr string
		args                []string
	}{
		{"plain", "hello mesh \n", "", []string{"--model", "tiny", "--prompt", "hello mesh"}},
		{"temperature", "hi t=0 \n", "", []string{"--model", "tiny", "--prompt", "hi", "--temperature", "0"}},
		{"chat", "chat:hi \n", "", []string{"--model", "tiny", "--prompt", "hi", "--chat", "--system", "be brief"}},
		{"local flags ignored", "x \n", "", []string{"--model", "tiny", "--prompt", "x", "--threads", "2", "--special"}},
		{"unknown model", "", "NotFound", []string{"--model", "missing", "--prompt", "x"}},
		{"unmet constraint", "", "FailedPrecondition", []string{"--model", "tiny", "--prompt", "x", "--require", "sve"}},
		{"bad ref", "", "invalid model reference", []string{"--model", "Tiny@0", "--prompt", "x"}},
		{"no prompt", "", "--prompt is required", []string{"--model", "tiny"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"--remote", addr}, tt.args...)
			err := runRemoteGenerate(context.Background(), args, &out, &errOut)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want {
				t.Errorf("got %q, want %q", out.String(), tt.want)
			}
			if !strings.Contains(errOut.String(), "on node-a (avx2)") {
				t.Errorf("got stderr %q, want the serving node and kernel", errOut.String())
			}
		})
	}
}
