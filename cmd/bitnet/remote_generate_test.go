package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRemoteGenerate(t *testing.T) {
	addr, _ := startMesh(t)
	tests := []struct {
		name, want, wantErr string
		args                []string
	}{
		{"plain", "hello mesh \n", "", []string{"--model", "tiny", "--prompt", "hello mesh"}},
		// The local defaults are sent: the same flags sample alike here and there.
		{"defaults sent", "temperature=0.8 top_k=40 top_p=0.95 min_p=0.05 penalty=1 seed=- max=256 require= prefer= echo=false \n", "",
			[]string{"--model", "tiny", "--prompt", "params"}},
		{"values sent", "temperature=0 top_k=0 top_p=1 min_p=0 penalty=1.1 seed=7 max=9 require=avx2 prefer= echo=true \n", "",
			[]string{"--model", "tiny", "--prompt", "params", "--temperature", "0", "--top-k", "0", "--top-p", "1", "--min-p", "0",
				"--repeat-penalty", "1.1", "--seed", "7", "--max-tokens", "9", "--require", "avx2", "--echo"}},
		// --kernel: run on that path, as locally: required and preferred.
		{"kernel", "temperature=0.8 top_k=40 top_p=0.95 min_p=0.05 penalty=1 seed=- max=256 require=avx512 prefer=avx512 echo=false \n", "",
			[]string{"--model", "tiny", "--prompt", "params", "--kernel", "avx512"}},
		{"kernel already required", "temperature=0.8 top_k=40 top_p=0.95 min_p=0.05 penalty=1 seed=- max=256 require=avx2 prefer=avx2 echo=false \n", "",
			[]string{"--model", "tiny", "--prompt", "params", "--require", "avx2", "--kernel", "avx2"}},
		{"bad top-k", "", "top-k -1", []string{"--model", "tiny", "--prompt", "x", "--top-k", "-1"}},
		{"bad top-p", "", "top-p 7", []string{"--model", "tiny", "--prompt", "x", "--top-p", "7"}},
		{"repeat-last-n", "", "--repeat-last-n", []string{"--model", "tiny", "--prompt", "x", "--repeat-last-n", "8"}},
		{"bad utf-8", "", "valid UTF-8", []string{"--model", "tiny", "--prompt", "\xff"}},
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
			args := append([]string{"generate", "--remote", addr}, tt.args...)
			err := run(context.Background(), args, &out, &errOut)
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
			if !strings.Contains(errOut.String(), "on node-a (avx2)") || (tt.name == "kernel") != strings.Contains(errOut.String(), "note: no node runs the avx512 kernel path; node-a ran on avx2") {
				t.Errorf("got stderr %q, want the serving node and kernel", errOut.String())
			}
		})
	}
}

// TestGenerateRemoteFromEnv: BITNET_REMOTE sends generate to the mesh unless
// --model is a local path; --remote "" forces a local run.
func TestGenerateRemoteFromEnv(t *testing.T) {
	addr, _ := startMesh(t)
	local := genTinyGGUF(t)
	t.Setenv("BITNET_REMOTE", addr)
	out, errOut, err := runCLI(t, "generate", "--model", "tiny", "--prompt", "via env", "--temperature", "0")
	if err != nil || out != "via env \n" || !strings.Contains(errOut, "on node-a") {
		t.Errorf("BITNET_REMOTE and a reference: got %q, %q, %v; want the mesh's echo", out, errOut, err)
	}
	for _, args := range [][]string{
		{"generate", "--model", local, "--prompt", "Light", "--max-tokens", "2"},
		{"generate", "--remote", "", "--model", local, "--prompt", "Light", "--max-tokens", "2"},
	} {
		_, errOut, err := runCLI(t, args...)
		if err != nil || !strings.Contains(errOut, "prefill") {
			t.Errorf("%q: got %q, %v; want a local run", args, errOut, err)
		}
	}
}
