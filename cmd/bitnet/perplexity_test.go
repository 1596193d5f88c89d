package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const pplModel = "../../testdata/models/tiny-gqa-tied-f32"

func TestPerplexityCommand(t *testing.T) {
	if _, err := os.Stat(pplModel); err != nil {
		t.Skip("golden model missing:", err)
	}
	var g struct {
		Windows []struct {
			Tokens  []int   `json:"tokens"`
			NLLMean float64 `json:"nll_mean"`
		} `json:"windows"`
	}
	b, err := os.ReadFile(filepath.Join(pplModel, "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	var ids []string
	var sum float64
	n := 0
	for _, w := range g.Windows {
		for _, id := range w.Tokens {
			ids = append(ids, itoa(id))
		}
		sum += w.NLLMean * float64(len(w.Tokens)-1)
		n += len(w.Tokens) - 1
	}
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "tokens.txt")
	if err := os.WriteFile(tokFile, []byte(strings.Join(ids, " \n")), 0o644); err != nil {
		t.Fatal(err)
	}
	textFile := filepath.Join(dir, "text.txt")
	if err := os.WriteFile(textFile, []byte("Of the Refractions of Light, and of the Colours which it exhibits."), 0o644); err != nil {
		t.Fatal(err)
	}

	var out, errb bytes.Buffer
	args := []string{"perplexity", "--model", pplModel, "--tokens", tokFile, "--ctx", itoa(len(g.Windows[0].Tokens)), "--json", "--head-f32"}
	if err := run(context.Background(), args, &out, &errb); err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	var res struct {
		Tokens  int     `json:"tokens"`
		NLLMean float64 `json:"nll_mean"`
		PPL     float64 `json:"ppl"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	want := math.Exp(sum / float64(n))
	if res.Tokens != n || math.Abs(res.PPL-want)/want > 1e-3 || math.Abs(math.Log(res.PPL)-res.NLLMean) > 1e-9 {
		t.Errorf("got %+v, want %d tokens, ppl %.6g", res, n, want)
	}

	out.Reset()
	if err := run(context.Background(), []string{"perplexity", "--model", pplModel, "--text", textFile, "--bos"}, &out, &errb); err != nil {
		t.Fatalf("--text: %v", err)
	}
	if !strings.Contains(out.String(), "ppl: ") {
		t.Errorf("--text: got output %q, want a ppl line", out.String())
	}

	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, []byte("1 2 x"), 0o644)
	big := filepath.Join(dir, "big.txt")
	os.WriteFile(big, []byte("1 2 100000"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no model", []string{"--tokens", tokFile}, "--model"},
		{"both inputs", []string{"--model", pplModel, "--tokens", tokFile, "--text", textFile}, "exactly one"},
		{"bad id", []string{"--model", pplModel, "--tokens", bad}, `"x"`},
		{"id out of range", []string{"--model", pplModel, "--tokens", big}, "out of range"},
		{"window too large", []string{"--model", pplModel, "--tokens", tokFile, "--ctx", "100000"}, "max_position_embeddings"},
		{"missing model", []string{"--model", filepath.Join(dir, "nope"), "--tokens", tokFile}, "no such file"},
		{"bad kernel", []string{"--model", pplModel, "--tokens", tokFile, "--kernel", "sse9"}, "sse9"},
	} {
		err := run(context.Background(), append([]string{"perplexity"}, tc.args...), &out, &errb)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func itoa(v int) string {
	b, _ := json.Marshal(v)
	return string(b)
}
