package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/bitnet-mesh/bitnet-mesh/cmd/bitnet/internal/config"
)

// commandPaths lists every command of the tree but cobra's own (help,
// completion), as argument lists: ["bench", "model"].
func commandPaths(t *testing.T) [][]string {
	t.Helper()
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		for _, sub := range c.Commands() {
			if sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			p := append(append([]string(nil), path...), sub.Name())
			paths = append(paths, p)
			walk(sub, p)
		}
	}
	walk(newRootCmd(config.MapLookup(nil)), nil)
	return paths
}

// TestEveryCommandDocumented: a usage line, a summary, examples and working
// help (both "bitnet help CMD" and "bitnet CMD --help") on every command.
func TestEveryCommandDocumented(t *testing.T) {
	paths := commandPaths(t)
	if len(paths) < 15 {
		t.Fatalf("got %d commands, want every one: %v", len(paths), paths)
	}
	root := newRootCmd(config.MapLookup(nil))
	for _, p := range paths {
		name := strings.Join(p, " ")
		c, _, err := root.Find(p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(c.Use, p[len(p)-1]) || c.Short == "" || c.Example == "" {
			t.Errorf("%s: Use %q, Short %q, Example %q: want all, Use starting with the name", name, c.Use, c.Short, c.Example)
		}
		for _, ex := range strings.Split(c.Example, "\n") {
			if !strings.Contains(ex, "bitnet "+p[0]) && !strings.HasPrefix(strings.TrimSpace(ex), "--") && !strings.Contains(ex, "bitnet help") {
				t.Errorf("%s: example line %q does not run the command", name, ex)
			}
		}
		for _, args := range [][]string{append([]string{"help"}, p...), append(append([]string(nil), p...), "--help")} {
			out, errOut, err := runCLI(t, args...)
			if err != nil || !strings.Contains(out, "Usage:") || !strings.Contains(out, "Examples:") || errOut != "" {
				t.Errorf("bitnet %s: got %v, stderr %q, stdout:\n%s", strings.Join(args, " "), err, errOut, out)
			}
		}
	}
}

func TestVersionAndCompletion(t *testing.T) {
	v1, _, err := runCLI(t, "--version")
	if err != nil {
		t.Fatal(err)
	}
	v2, _, err := runCLI(t, "version")
	if err != nil || v1 != v2 || !strings.HasPrefix(v1, "bitnet ") {
		t.Errorf("--version %q and version %q (%v): want the same bitnet line", v1, v2, err)
	}
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		out, _, err := runCLI(t, "completion", sh)
		if err != nil || !strings.Contains(out, "bitnet") {
			t.Errorf("completion %s: got %v and %d bytes", sh, err, len(out))
		}
	}
	// Completion of a setting's values and of serve's services.
	out, _, err := runCLI(t, "__complete", "generate", "--kernel", "")
	if err != nil || !strings.Contains(out, "avx512\n") {
		t.Errorf("complete --kernel: got %q, %v", out, err)
	}
	out, _, err = runCLI(t, "__complete", "serve", "")
	if err != nil || !strings.Contains(out, "inference\n") {
		t.Errorf("complete serve: got %q, %v", out, err)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"nope"}, `unknown command "nope"`},
		{[]string{"bench"}, "want a target: kernels or model"},
		{[]string{"bench", "gpu"}, `unknown target "gpu"`},
		{[]string{"nodes", "-remote", "x"}, "long flags take two dashes: --remote"},
		{[]string{"models", "--colour"}, "models: unknown flag: --colour (see 'bitnet models --help')"},
		{[]string{"version", "x"}, `version: unexpected argument "x"`},
		{[]string{"pull"}, "want one model reference"},
		{[]string{"serve", "router", "--threads", "4294967295"}, `invalid argument "4294967295" for "--threads" flag: want 0 to 4096`},
		{[]string{"serve", "router", "--memory-budget", "lots"}, `invalid argument "lots" for "--memory-budget"`},
	} {
		_, _, err := runCLI(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("bitnet %s: got %v, want an error containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

func TestEnvCommand(t *testing.T) {
	env := config.MapLookup(map[string]string{"BITNET_THREADS": "4", "POD_IP": "10.0.0.9"})
	var out bytes.Buffer
	if err := runEnv(context.Background(), []string{"env", "--json"}, env, &out, &out); err != nil {
		t.Fatal(err)
	}
	var rows []envRow
	if err := json.Unmarshal(out.Bytes(), &rows); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	byEnv := map[string]envRow{}
	for _, r := range rows {
		byEnv[r.Env] = r
	}
	if len(rows) != len(config.All()) {
		t.Errorf("got %d rows, want %d", len(rows), len(config.All()))
	}
	for _, want := range []envRow{
		{Env: "BITNET_THREADS", Value: "4", Source: "env", Var: "BITNET_THREADS"},
		{Env: "BITNET_ADVERTISE", Value: "10.0.0.9", Source: "env", Var: "POD_IP"},
		{Env: "BITNET_GRPC_ADDR", Value: "127.0.0.1:50051", Source: "default"},
		{Env: "BITNET_DRAIN", Value: "0", Source: "default"},
	} {
		got := byEnv[want.Env]
		if got.Value != want.Value || got.Source != want.Source || got.Var != want.Var {
			t.Errorf("%s: got %+v, want value %q from %s %s", want.Env, got, want.Value, want.Source, want.Var)
		}
	}
	if cmds := strings.Join(byEnv["BITNET_REMOTE"].Commands, ","); cmds != "generate,keys create,keys list,keys revoke,models,nodes,pull,push,quantize" {
		t.Errorf("BITNET_REMOTE commands: got %s", cmds)
	}
	if cmds := strings.Join(byEnv["BITNET_THREADS"].Commands, ","); !strings.Contains(cmds, "serve") || !strings.Contains(cmds, "generate") {
		t.Errorf("BITNET_THREADS commands: got %s", cmds)
	}

	out.Reset()
	err := runEnv(context.Background(), []string{"env"}, config.MapLookup(map[string]string{"BITNET_LOG_JSON": "maybe"}), &out, &out)
	if err == nil || !strings.Contains(err.Error(), `BITNET_LOG_JSON="maybe": want true or false`) {
		t.Errorf("invalid value: got %v, want an error naming BITNET_LOG_JSON", err)
	}
	if !strings.Contains(out.String(), "BITNET_GRPC_ADDR") || !strings.Contains(out.String(), "invalid") {
		t.Errorf("table:\n%s\nwant every row, the invalid one marked", out.String())
	}
}
