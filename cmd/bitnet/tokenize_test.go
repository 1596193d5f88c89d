package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTokenize(t *testing.T) {
	tokPath := filepath.Join("..", "..", "testdata", "tokenizer", "opticks-bpe600.json")
	textFile := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(textFile, []byte("the light"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		want    string
		wantErr string
	}{
		{"text", []string{"--tokenizer", tokPath, "--text", "the light"}, "372 345 313\n", ""},
		{"json", []string{"--tokenizer", tokPath, "--text", "the light", "--json"}, `{"ids":[372,345,313]}` + "\n", ""},
		{"bos", []string{"--tokenizer", tokPath, "--text", "the light", "--bos", "--json"}, `{"ids":[598,372,345,313]}` + "\n", ""},
		{"file", []string{"--tokenizer", tokPath, "--file", textFile}, "372 345 313\n", ""},
		{"empty text", []string{"--tokenizer", tokPath, "--text", "", "--json"}, `{"ids":[]}` + "\n", ""},
		{"special", []string{"--tokenizer", tokPath, "--text", "<|end_of_text|>"}, "599\n", ""},
		{"no tokenizer", []string{"--text", "x"}, "", "--tokenizer is required"},
		{"both inputs", []string{"--tokenizer", tokPath, "--text", "x", "--file", textFile}, "", "exactly one"},
		{"no input", []string{"--tokenizer", tokPath}, "", "exactly one"},
		{"missing file", []string{"--tokenizer", tokPath, "--file", "/nonexistent/x"}, "", "nonexistent"},
		{"bad tokenizer", []string{"--tokenizer", textFile, "--text", "x"}, "", "in.txt"},
		{"extra arg", []string{"--tokenizer", tokPath, "--text", "x", "y"}, "", "unexpected argument"},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"tokenize"}, tt.args...), &out, &errOut)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: got error %v, want one containing %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if out.String() != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, out.String(), tt.want)
		}
	}
}
