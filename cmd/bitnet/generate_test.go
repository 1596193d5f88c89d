package main

import (
	"bytes"
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model/modeltest"
)

// genTinyGGUF writes the CLI tests' random two-layer model with the
// Opticks tokenizer.
func genTinyGGUF(t *testing.T, opts ...model.GGUFOption) string {
	return modeltest.TinyGGUF(t, 9, 48, opts...)
}

func genRun(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), err
}

func TestGenerate(t *testing.T) {
	path := genTinyGGUF(t)
	greedy := []string{"generate", "--model", path, "--prompt", "Light is refracted", "--temperature", "0", "--max-tokens", "12"}
	out1, stderr, err := genRun(t, greedy...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr, "prefill") || !strings.Contains(stderr, "tok/s") {
		t.Errorf("stderr %q lacks the timings", stderr)
	}
	out2, _, err := genRun(t, greedy...)
	if err != nil {
		t.Fatal(err)
	}
	if out1 != out2 || out1 == "" {
		t.Fatalf("greedy runs: got %q and %q, want equal non-empty text", out1, out2)
	}
	seeded := []string{"generate", "--model", path, "--prompt", "Of colours", "--temperature", "1.5", "--top-k", "0",
		"--top-p", "1", "--min-p", "0", "--repeat-penalty", "1.1", "--seed", "7", "--max-tokens", "10"}
	s1, _, err := genRun(t, seeded...)
	if err != nil {
		t.Fatal(err)
	}
	s2, _, err := genRun(t, seeded...)
	if err != nil {
		t.Fatal(err)
	}
	if s1 != s2 {
		t.Errorf("same seed: got %q and %q", s1, s2)
	}
	// A stop string from the middle of the greedy text cuts it there.
	runes := []rune(out1)
	if len(runes) >= 4 {
		stop := string(runes[len(runes)/2 : len(runes)/2+2])
		got, stderr, err := genRun(t, append(greedy, "--stop", stop)...)
		if err != nil {
			t.Fatal(err)
		}
		want, _, _ := strings.Cut(out1, stop)
		if got != want || !strings.Contains(stderr, "stop string") {
			t.Errorf("--stop %q: got %q (%s), want %q", stop, got, stderr, want)
		}
	}
	if got, _, err := genRun(t, "generate", "--model", path, "--prompt", "x", "--max-tokens", "0"); err != nil || got != "" {
		t.Errorf("--max-tokens 0: got %q, %v; want no text", got, err)
	}
	// Both KV cache types generate (this random model's logits reach ~190,
	// so fp16 rounding flips its greedy picks: no equality to expect).
	for _, kv := range []string{"f16", "f32"} {
		if got, _, err := genRun(t, "generate", "--model", path, "--prompt", "Light is", "--temperature", "0", "--max-tokens", "4", "--kv-cache", kv); err != nil || got == "" {
			t.Errorf("--kv-cache %s: got %q, %v; want text", kv, got, err)
		}
	}
	if _, _, err := genRun(t, "generate", "--model", path, "--prompt", "Light", "--chat", "--system", "Be brief.", "--max-tokens", "3"); err != nil {
		t.Errorf("--chat: %v", err)
	}
	// --echo and --require mean locally what they mean through the mesh.
	got, _, err := genRun(t, append(greedy, "--echo", "--require", "generic")...)
	if err != nil || got != "Light is refracted"+out1 {
		t.Errorf("--echo: got %q, %v; want the prompt, then %q", got, err, out1)
	}
}

func TestGenerateErrors(t *testing.T) {
	path := genTinyGGUF(t)
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no model", []string{"--prompt", "x"}, "--model is required"},
		{"no prompt", []string{"--model", path}, "--prompt is required"},
		{"system without chat", []string{"--model", path, "--prompt", "x", "--system", "s"}, "--system needs --chat"},
		{"bad seed", []string{"--model", path, "--prompt", "x", "--seed", "-5"}, "--seed"},
		{"bad top-p", []string{"--model", path, "--prompt", "x", "--top-p", "0"}, "top-p"},
		{"bad kv cache", []string{"--model", path, "--prompt", "x", "--kv-cache", "q8"}, `invalid argument "q8" for "--kv-cache" flag: want f16 or f32`},
		{"bad kernel", []string{"--model", path, "--prompt", "x", "--kernel", "sse9"}, "sse9"},
		{"missing model", []string{"--model", path + ".nope", "--prompt", "x"}, ".nope"},
		{"prompt too long", []string{"--model", path, "--prompt", strings.Repeat("light and colour ", 40)}, "max_position_embeddings"},
		{"unknown requirement", []string{"--model", path, "--prompt", "x", "--require", "warp-drive"}, `unknown requirement "warp-drive"`},
		{"max tokens", []string{"--model", path, "--prompt", "x", "--max-tokens", "4294967296"}, "--max-tokens 4294967296, want 0 to 4294967295"},
		{"bad utf-8", []string{"--model", path, "--prompt", "\xffx"}, "valid UTF-8"},
	}
	if runtime.GOARCH == "amd64" {
		tests = append(tests, struct {
			name    string
			args    []string
			wantErr string
		}{"missing hardware", []string{"--model", path, "--prompt", "x", "--require", "neon"}, "--require neon: this machine does not have it"})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := genRun(t, append([]string{"generate"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestBenchModel(t *testing.T) {
	path := genTinyGGUF(t)
	out, _, err := genRun(t, "bench", "model", "--model", path, "--json", "--threads", "1,2", "--prompt", "16", "--gen", "4", "--repeat", "2", "--probe-mib", "16", "--batch", "3")
	if err != nil {
		t.Fatal(err)
	}
	var rep benchModelReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if len(rep.Results) != 2 || rep.Results[0].Threads != 1 || rep.Results[1].Threads != 2 {
		t.Fatalf("results: got %+v, want threads 1 and 2", rep.Results)
	}
	for _, r := range rep.Results {
		if !(r.PrefillTokS > 0) || !(r.DecodeTokS > 0) || !(r.LoadSeconds > 0) {
			t.Errorf("threads %d: got %+v, want positive rates and load time", r.Threads, r)
		}
		if r.DecodeTokSBest < r.DecodeTokS || !(r.ProbeGBs > 0) || !(r.DecodeBWRatio > 0) || r.Repeat != 2 {
			t.Errorf("threads %d: got %+v, want best >= median, a probe and 2 repetitions", r.Threads, r)
		}
		if r.Batch != 3 || !(r.DecodeBatchTokS > 0) {
			t.Errorf("threads %d: got batch %d at %v tok/s, want 3 sequences at a positive rate", r.Threads, r.Batch, r.DecodeBatchTokS)
		}
	}
	if rep.Prompt != 16 || rep.Gen != 4 || rep.TernaryMiB <= 0 || rep.KVCache != "f16" {
		t.Errorf("report %+v: want prompt 16, gen 4, the ternary size and KV cache f16", rep)
	}
	for _, args := range [][]string{
		{"--model", path, "--threads", "0"},
		{"--model", path, "--prompt", "40", "--gen", "20"},
		{"--prompt", "4"},
		{"--model", path, "--repeat", "0"},
		{"--model", path, "--kv-cache", "bf16"},
		{"--model", path, "--probe-mib", "-1"},
		{"--model", path, "--batch", "0"},
	} {
		if _, _, err := genRun(t, append([]string{"bench", "model"}, args...)...); err == nil {
			t.Errorf("bench model %v: got no error", args)
		}
	}
}
