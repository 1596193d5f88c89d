package config

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/logging"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// bound binds settings on a fresh command and parses args.
func bound(t *testing.T, args []string, settings ...Any) (*Set, error) {
	t.Helper()
	c := &cobra.Command{Use: "test"}
	set := Bind(c, settings...)
	return set, c.ParseFlags(args)
}

func TestResolveOrder(t *testing.T) {
	addr := String("addr", "BITNET_T_ADDR", "def", "address").Alias("OLD_ADDR", "OLDER_ADDR")
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    string
		wantSrc string
	}{
		{"default", nil, nil, "def", "default"},
		{"env", nil, map[string]string{"BITNET_T_ADDR": "e"}, "e", "env BITNET_T_ADDR"},
		{"empty env is unset", nil, map[string]string{"BITNET_T_ADDR": ""}, "def", "default"},
		{"alias", nil, map[string]string{"OLDER_ADDR": "o2", "OLD_ADDR": ""}, "o2", "env OLDER_ADDR"},
		{"first alias", nil, map[string]string{"OLDER_ADDR": "o2", "OLD_ADDR": "o1"}, "o1", "env OLD_ADDR"},
		{"env before alias", nil, map[string]string{"OLD_ADDR": "o1", "BITNET_T_ADDR": "e"}, "e", "env BITNET_T_ADDR"},
		{"flag wins", []string{"--addr", "f"}, map[string]string{"BITNET_T_ADDR": "e"}, "f", "flag"},
		{"empty flag wins", []string{"--addr="}, map[string]string{"BITNET_T_ADDR": "e"}, "", "flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := bound(t, tt.args, addr)
			if err != nil {
				t.Fatal(err)
			}
			v, err := set.Resolve(MapLookup(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if got, src := addr.Get(v), v.Source(addr).String(); got != tt.want || src != tt.wantSrc {
				t.Errorf("got %q from %s, want %q from %s", got, src, tt.want, tt.wantSrc)
			}
		})
	}
}

func TestTypes(t *testing.T) {
	n := Int("n", "BITNET_T_N", 2, "count").Check(AtLeast(1))
	b := Bool("b", "BITNET_T_B", true, "switch")
	d := Duration("d", "BITNET_T_D", time.Second, "wait")
	f := Float("f", "BITNET_T_F", 0.5, "ratio").Check(Between(0.0, 1.0))
	sz := Bytes("size", "BITNET_T_SIZE", 0, "size").Check(AtLeast[int64](0))
	k := String("k", "BITNET_T_K", "", "kind").OneOf("x", "y")
	all := []Any{n, b, d, f, sz, k}

	set, err := bound(t, []string{"--n", "7", "--b=false", "--d", "1m", "--f", "0.25", "--size", "2KiB", "--k", "y"}, all...)
	if err != nil {
		t.Fatal(err)
	}
	v, err := set.Resolve(MapLookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	if n.Get(v) != 7 || b.Get(v) || d.Get(v) != time.Minute || f.Get(v) != 0.25 || sz.Get(v) != 2048 || k.Get(v) != "y" {
		t.Errorf("flags: got %d %v %v %v %d %q", n.Get(v), b.Get(v), d.Get(v), f.Get(v), sz.Get(v), k.Get(v))
	}

	env := MapLookup(map[string]string{"BITNET_T_N": "9", "BITNET_T_B": "0", "BITNET_T_D": "0", "BITNET_T_F": "1",
		"BITNET_T_SIZE": "1.5GB", "BITNET_T_K": "x"})
	v, err = Resolve(env, all...)
	if err != nil {
		t.Fatal(err)
	}
	if n.Get(v) != 9 || b.Get(v) || d.Get(v) != 0 || f.Get(v) != 1 || sz.Get(v) != 1_500_000_000 || k.Get(v) != "x" {
		t.Errorf("env: got %d %v %v %v %d %q", n.Get(v), b.Get(v), d.Get(v), f.Get(v), sz.Get(v), k.Get(v))
	}

	// A bare bool flag means true.
	set, err = bound(t, []string{"--b"}, Bool("b", "BITNET_T_B", false, "switch"))
	if err != nil {
		t.Fatal(err)
	}
	if v, err = set.Resolve(nil); err != nil || !v.byFlag["b"].value.(bool) {
		t.Errorf("--b: got %v, %v; want true", v.byFlag["b"].value, err)
	}
}

// TestInvalid: a bad value is an error naming the flag or the variable and
// quoting the value as given (not clamped, not rewritten).
func TestInvalid(t *testing.T) {
	n := Int("n", "BITNET_T_N", 2, "count").Check(Between(0, 4096))
	b := Bool("b", "BITNET_T_B", false, "switch")
	d := Duration("d", "BITNET_T_D", 0, "wait").Check(AtLeast[time.Duration](0))
	sz := Bytes("size", "BITNET_T_SIZE", 0, "size")
	k := String("k", "BITNET_T_K", "", "kind").OneOf("x", "y").Alias("OLD_K")
	tests := []struct {
		s         Any
		val, want string
	}{
		{n, "x", "want an integer"},
		{n, "4294967295", "want 0 to 4096"},
		{n, "-1", "want 0 to 4096"},
		{b, "maybe", "want true or false"},
		{d, "5", "want a duration"},
		{d, "-1s", "want at least 0s"},
		{sz, "lots", "want bytes"},
		{sz, "99999999999TiB", "size out of range"},
		{k, "z", "want x or y"},
	}
	for _, tt := range tests {
		info := tt.s.Info()
		_, err := Resolve(MapLookup(map[string]string{info.Env: tt.val}), tt.s)
		want := info.Env + `="` + tt.val + `": ` + tt.want
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s=%s: got %v, want an error containing %q", info.Env, tt.val, err, want)
		}
		_, err = bound(t, []string{"--" + info.Flag + "=" + tt.val}, tt.s)
		want = `invalid argument "` + tt.val + `" for "--` + info.Flag + `" flag: ` + tt.want
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--%s=%s: got %v, want an error containing %q", info.Flag, tt.val, err, want)
		}
	}
	if _, err := Resolve(MapLookup(map[string]string{"OLD_K": "z"}), k); err == nil || !strings.Contains(err.Error(), `OLD_K="z"`) {
		t.Errorf("bad alias value: got %v, want an error naming OLD_K", err)
	}
}

func TestParseBytes(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"1024", 1024, true}, {"512MiB", 512 << 20, true}, {"8GiB", 8 << 30, true},
		{"2GB", 2e9, true}, {"2 gb", 2e9, true}, {"1.5KiB", 1536, true}, {"100B", 100, true}, {"3kB", 3000, true},
		{"-5", -5, true}, {"", 0, false}, {"GiB", 0, false}, {"1.5", 0, false}, {"5 parsecs", 0, false},
		{"9223372036854775807", 1<<63 - 1, true}, {"9223372036854775807KiB", 0, false},
	} {
		got, err := ParseBytes(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestRefinements(t *testing.T) {
	kv := String("kv", "BITNET_T_KV", "f16", "cache").OneOf("f16", "f32").Alias("OLD_KV")
	exact := kv.WithDefault("f32").WithoutAliases()
	v, err := Resolve(MapLookup(map[string]string{"OLD_KV": "f16"}), exact)
	if err != nil || kv.Get(v) != "f32" || v.Source(kv).Origin != FromDefault {
		t.Errorf("WithDefault+WithoutAliases: got %q from %v (%v), want f32 from the default", kv.Get(v), v.Source(kv), err)
	}
	if kv.Info().Default != "f16" || len(kv.Info().Aliases) != 1 {
		t.Errorf("refinements changed the declaration: %+v", kv.Info())
	}
	calls := 0
	dyn := String("dir", "BITNET_T_DIR", "", "dir").DefaultFunc(func() string { calls++; return "/computed" }, "a computed place")
	if dyn.Info().Default != "a computed place" || calls != 0 {
		t.Errorf("DefaultFunc: info %+v after %d calls, want the description and no call", dyn.Info(), calls)
	}
	if v, err := Resolve(nil, dyn); err != nil || dyn.Get(v) != "/computed" {
		t.Errorf("DefaultFunc: got %v, want /computed", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("Get of an unbound setting: got no panic")
		}
	}()
	dyn.Get(v)
}

func TestBindHelpAndList(t *testing.T) {
	c := &cobra.Command{Use: "x"}
	Bind(c, Kernel, Consul, Kernel) // a setting in two groups is bound once
	fl := c.Flags().Lookup("kernel")
	if fl == nil || !strings.Contains(fl.Usage, "generic, avx2, avx512, neon or metal") || !strings.Contains(fl.Usage, "env BITNET_KERNEL") {
		t.Errorf("--kernel usage %q: want the values and the variable", fl.Usage)
	}
	if got := FlagVars(c.Flags().Lookup("consul")); strings.Join(got, ",") != "BITNET_CONSUL_ADDR,CONSUL_HTTP_ADDR" {
		t.Errorf("consul vars: got %v", got)
	}
	rows := List(MapLookup(map[string]string{"BITNET_THREADS": "many", "CONSUL_HTTP_ADDR": "c:8500"}), Threads, Consul)
	if rows[0].Err == nil || rows[1].Value != "c:8500" || rows[1].Source.Var != "CONSUL_HTTP_ADDR" {
		t.Errorf("List: got %+v", rows)
	}
}

// TestCatalogue keeps the declarations consistent: unique flags and
// variables, BITNET_* names, usable help, valid defaults, and allowed values
// that the code using them accepts.
func TestCatalogue(t *testing.T) {
	flags, vars := map[string]bool{}, map[string]bool{}
	for _, s := range All() {
		i := s.Info()
		if flags[i.Flag] {
			t.Errorf("flag --%s declared twice", i.Flag)
		}
		flags[i.Flag] = true
		if !strings.HasPrefix(i.Env, "BITNET_") {
			t.Errorf("--%s: variable %q does not start with BITNET_", i.Flag, i.Env)
		}
		for _, v := range i.Vars() {
			if vars[v] {
				t.Errorf("variable %s used twice", v)
			}
			vars[v] = true
		}
		if i.Usage == "" || strings.HasSuffix(i.Usage, ".") {
			t.Errorf("--%s: usage %q: want a phrase without a final period", i.Flag, i.Usage)
		}
		if _, err := Resolve(nil, s); err != nil {
			t.Errorf("--%s: default does not validate: %v", i.Flag, err)
		}
	}
	for _, p := range Kernel.Info().Values {
		if _, err := kernels.ParsePath(p); err != nil {
			t.Errorf("--kernel value %q: %v", p, err)
		}
	}
	for _, kv := range KVCache.Info().Values {
		if _, err := model.ParseKVType(kv); err != nil {
			t.Errorf("--kv-cache value %q: %v", kv, err)
		}
	}
	for _, l := range LogLevel.Info().Values {
		if _, err := logging.New(l, false); err != nil {
			t.Errorf("--log-level value %q: %v", l, err)
		}
	}
}
