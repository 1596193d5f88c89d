// Package config is the one configuration layer of the bitnet command, in
// the style of Ollama's envconfig: every setting is declared once (flag
// name, BITNET_* environment variable, aliases, default, usage, type and
// validation), the command line flags are generated from the declarations,
// and every value is resolved one way: the flag when given, else the first
// non-empty environment variable (BITNET_* first, then its aliases), else the
// default. An environment value that does not parse or validate is an error
// naming the variable. `bitnet env` lists every setting with its current
// value and where the value came from.
//
// The package lives under cmd/bitnet because the environment is the
// command's interface, not the services': services/* and shared/* take
// typed Config structs and options (mesh.Config, sdk options) and never
// read the environment themselves, so tests and embedders configure them
// without process-wide state. Declarations are immutable values; resolved
// values live in a Values per command invocation (no mutable globals).
//
// # What is a setting
//
// A setting is something an operator or user configures once for a
// deployment or a shell: listen addresses, where the mesh is, kernel path,
// threads, memory, logging, credentials, limits. The inputs of one
// invocation (--model, --prompt, --steps, --json, a path) are ordinary flags
// of their command and have no variable.
//
// # How to add a setting (a three-line change)
//
//  1. Declare it in settings.go, one statement:
//
//     MaxBodyBytes = Bytes("max-body-bytes", "BITNET_MAX_BODY_BYTES", 4<<20,
//     "largest REST request body").Check(AtLeast[int64](1))
//
//  2. Add it to the group of commands that take it (Server, Client,
//     LocalModel in settings.go), or bind it on one command with
//     config.Bind(cmd, config.MaxBodyBytes).
//
//  3. Read it where the command builds its configuration:
//
//     cfg.MaxBodyBytes = config.MaxBodyBytes.Get(v)
//
// The flag, its help text (with the variable's name), shell completion of
// its allowed values, validation with errors that name the flag or the
// variable, and its row in `bitnet env` all follow from the declaration;
// TestCatalogue checks that names are unique, variables start with BITNET_
// and defaults validate.
//
// Constructors: String, Int, Bool, Duration, Float, Bytes (an int64 that
// also reads 512MiB or 2GB). Refinements return a copy: Alias (older or
// foreign variable names, e.g. CONSUL_HTTP_ADDR), OneOf (allowed values,
// also completed by the shell), Check (validation), DefaultFunc (a default
// computed when resolved), and, for one command, WithDefault and
// WithoutAliases.
package config

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Lookup reads an environment variable (os.LookupEnv in the binary; tests
// may pass a map's lookup).
type Lookup func(key string) (string, bool)

// MapLookup returns a Lookup over m.
func MapLookup(m map[string]string) Lookup {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// Origin says which layer a value came from.
type Origin int

// The layers, in the order Resolve tries them.
const (
	FromDefault Origin = iota
	FromEnv
	FromFlag
)

// Source is where a resolved value came from: its layer and, for FromEnv,
// the variable (BITNET_* or an alias).
type Source struct {
	Origin Origin
	Var    string
}

func (s Source) String() string {
	switch s.Origin {
	case FromFlag:
		return "flag"
	case FromEnv:
		return "env " + s.Var
	}
	return "default"
}

// Info describes a declared setting (for help, listings and tests).
type Info struct {
	Flag    string   // flag name without dashes
	Env     string   // its BITNET_* variable
	Aliases []string // other variables read when Env is unset or empty
	Type    string   // string, int, bool, duration, float, bytes
	Default string   // the default as text (a description for DefaultFunc)
	Usage   string
	Values  []string // allowed values, when restricted
}

// Help is the usage with the allowed values, as flags and listings show it.
func (i Info) Help() string {
	u := i.Usage
	if len(i.Values) == 0 {
		return u
	}
	vals := ": " + orList(i.Values)
	if j := strings.Index(u, " ("); j >= 0 {
		return u[:j] + vals + u[j:]
	}
	return u + vals
}

// Vars returns Env followed by the aliases.
func (i Info) Vars() []string { return append([]string{i.Env}, i.Aliases...) }

// Any is a *Setting of any type: what Bind, Resolve and All take.
type Any interface {
	Info() Info
	bind(cmd *cobra.Command)
	resolve(fs *pflag.FlagSet, env Lookup) (resolved, error)
}

// resolved is one setting's value and where it came from.
type resolved struct {
	value  any
	text   string
	source Source
}

// Setting is the declaration of one setting of type T. Declare settings with
// String, Int, Bool, Duration, Float or Bytes; the zero Setting is not
// usable. A Setting is immutable: refinements return copies.
type Setting[T any] struct {
	flag, env, usage, typ string
	aliases               []string
	values                []string
	def                   T
	defFn                 func() T
	defDoc                string
	parse                 func(string) (T, error)
	format                func(T) string
	checks                []func(T) error
}

func newSetting[T any](typ, flag, env string, def T, usage string, parse func(string) (T, error), format func(T) string) *Setting[T] {
	return &Setting[T]{flag: flag, env: env, usage: usage, typ: typ, def: def, parse: parse, format: format}
}

// String declares a string setting.
func String(flag, env, def, usage string) *Setting[string] {
	return newSetting("string", flag, env, def, usage, func(s string) (string, error) { return s, nil }, func(s string) string { return s })
}

// Int declares an integer setting.
func Int(flag, env string, def int, usage string) *Setting[int] {
	return newSetting("int", flag, env, def, usage, func(s string) (int, error) {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return 0, fmt.Errorf("want an integer")
		}
		return n, nil
	}, strconv.Itoa)
}

// Bool declares a boolean setting; the flag alone means true.
func Bool(flag, env string, def bool, usage string) *Setting[bool] {
	return newSetting("bool", flag, env, def, usage, func(s string) (bool, error) {
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return false, fmt.Errorf("want true or false")
		}
		return b, nil
	}, strconv.FormatBool)
}

// Duration declares a time.Duration setting (Go syntax: 30s, 1m30s).
func Duration(flag, env string, def time.Duration, usage string) *Setting[time.Duration] {
	return newSetting("duration", flag, env, def, usage, func(s string) (time.Duration, error) {
		s = strings.TrimSpace(s)
		if s == "0" {
			return 0, nil
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("want a duration such as 30s or 1m30s")
		}
		return d, nil
	}, func(d time.Duration) string {
		if d == 0 {
			return "0"
		}
		return d.String()
	})
}

// Float declares a float64 setting.
func Float(flag, env string, def float64, usage string) *Setting[float64] {
	return newSetting("float", flag, env, def, usage, func(s string) (float64, error) {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return 0, fmt.Errorf("want a number")
		}
		return f, nil
	}, func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) })
}

// Bytes declares a size in bytes: a plain integer, or a number with a unit
// (B, kB, MB, GB, TB in powers of 1000; KiB, MiB, GiB, TiB in powers of
// 1024), e.g. 536870912, 512MiB, 2GB.
func Bytes(flag, env string, def int64, usage string) *Setting[int64] {
	return newSetting("bytes", flag, env, def, usage, ParseBytes, func(n int64) string { return strconv.FormatInt(n, 10) })
}

// byteUnits are the units ParseBytes accepts (lower case).
var byteUnits = map[string]int64{
	"b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// ParseBytes reads a size: an integer, or a number and a unit (see Bytes).
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' && r != '-' && r != '+' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = strings.TrimSpace(t[:i]), strings.ToLower(strings.TrimSpace(t[i:]))
	}
	mult, ok := byteUnits[unit]
	if unit == "" {
		mult, ok = 1, true
	}
	bad := fmt.Errorf("want bytes: an integer or a size such as 512MiB or 2GB")
	if !ok || num == "" {
		return 0, bad
	}
	if n, err := strconv.ParseInt(num, 10, 64); err == nil {
		if n != 0 && (n > maxInt64/mult || n < -maxInt64/mult) {
			return 0, fmt.Errorf("size out of range")
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || unit == "" || unit == "b" {
		return 0, bad
	}
	v := f * float64(mult)
	if v >= float64(maxInt64) || v <= -float64(maxInt64) {
		return 0, fmt.Errorf("size out of range")
	}
	return int64(v), nil
}

const maxInt64 = 1<<63 - 1

func (s *Setting[T]) clone() *Setting[T] {
	c := *s
	c.aliases = slices.Clone(s.aliases)
	c.values = slices.Clone(s.values)
	c.checks = slices.Clone(s.checks)
	return &c
}

// Alias returns a copy that also reads these variables, in order, when the
// BITNET_* one is unset or empty (e.g. CONSUL_HTTP_ADDR, POD_IP).
func (s *Setting[T]) Alias(vars ...string) *Setting[T] {
	c := s.clone()
	c.aliases = append(c.aliases, vars...)
	return c
}

// OneOf returns a copy that accepts only these values (as formatted text);
// the empty string is accepted too when it is the default. The shell
// completes them.
func (s *Setting[T]) OneOf(values ...string) *Setting[T] {
	c := s.clone()
	c.values = append(c.values, values...)
	return c
}

// Check returns a copy that also validates values with f. f's error says
// what is wanted ("want at least 1"); the resolver names the flag or the
// variable and quotes the value as given.
func (s *Setting[T]) Check(f func(T) error) *Setting[T] {
	c := s.clone()
	c.checks = append(c.checks, f)
	return c
}

// DefaultFunc returns a copy whose default is computed by f when the
// setting is resolved (e.g. from $HOME); doc describes it in help.
func (s *Setting[T]) DefaultFunc(f func() T, doc string) *Setting[T] {
	c := s.clone()
	c.defFn, c.defDoc = f, doc
	return c
}

// WithDefault returns a copy with another default, for a command whose
// purpose needs one (perplexity's exact f32 KV cache). The variable and
// the validation stay the same.
func (s *Setting[T]) WithDefault(def T) *Setting[T] {
	c := s.clone()
	c.def, c.defFn, c.defDoc = def, nil, ""
	return c
}

// WithoutAliases returns a copy that reads only its BITNET_* variable (for
// `up`, which must not join a Consul agent merely because the shell has
// CONSUL_HTTP_ADDR set for other tools).
func (s *Setting[T]) WithoutAliases() *Setting[T] {
	c := s.clone()
	c.aliases = nil
	return c
}

// Name returns the flag name (without dashes).
func (s *Setting[T]) Name() string { return s.flag }

// Env returns the setting's BITNET_* variable.
func (s *Setting[T]) Env() string { return s.env }

// Default returns the default value (computing a DefaultFunc).
func (s *Setting[T]) Default() T {
	if s.defFn != nil {
		return s.defFn()
	}
	return s.def
}

// Info describes the declaration.
func (s *Setting[T]) Info() Info {
	def := s.format(s.def)
	if s.defFn != nil {
		def = s.defDoc
	}
	return Info{Flag: s.flag, Env: s.env, Aliases: slices.Clone(s.aliases), Type: s.typ, Default: def,
		Usage: s.usage, Values: slices.Clone(s.values)}
}

// Get returns the value of s in v. It panics when the command did not bind
// s: a programming error that the command's tests catch.
func (s *Setting[T]) Get(v *Values) T {
	r, ok := v.byFlag[s.flag]
	if !ok {
		panic(fmt.Sprintf("config: --%s read by a command that does not bind it", s.flag))
	}
	return r.value.(T)
}

// validate parses text and runs the checks; errors say what is wanted.
func (s *Setting[T]) validate(text string) (T, error) {
	v, err := s.parse(text)
	if err != nil {
		return v, err
	}
	return v, s.check(v)
}

func (s *Setting[T]) check(v T) error {
	if len(s.values) > 0 {
		t := s.format(v)
		if !slices.Contains(s.values, t) && !(t == "" && s.format(s.def) == "") {
			return fmt.Errorf("want %s", orList(s.values))
		}
	}
	for _, c := range s.checks {
		if err := c(v); err != nil {
			return err
		}
	}
	return nil
}

// orList is "a, b or c".
func orList(vs []string) string {
	if len(vs) == 1 {
		return vs[0]
	}
	return strings.Join(vs[:len(vs)-1], ", ") + " or " + vs[len(vs)-1]
}

// flagValue is the pflag.Value generated for a Setting.
type flagValue[T any] struct {
	s   *Setting[T]
	v   T
	set bool
}

func (f *flagValue[T]) String() string {
	if f.set {
		return f.s.format(f.v)
	}
	return f.s.Info().Default
}

func (f *flagValue[T]) Set(text string) error {
	v, err := f.s.validate(text)
	if err != nil {
		return err
	}
	f.v, f.set = v, true
	return nil
}

func (f *flagValue[T]) Type() string {
	if f.s.typ == "bool" {
		return "bool"
	}
	return f.s.typ
}

// annotation marks the flags generated from settings (value: the variables).
const annotation = "bitnet_env"

func (s *Setting[T]) bind(cmd *cobra.Command) {
	info := s.Info()
	usage := info.Help() + " (env " + strings.Join(info.Vars(), ", then ") + ")"
	fl := cmd.Flags().VarPF(&flagValue[T]{s: s}, s.flag, "", usage)
	if s.typ == "bool" {
		fl.NoOptDefVal = "true"
	}
	fl.Annotations = map[string][]string{annotation: info.Vars()}
	if len(s.values) > 0 {
		vals := s.values
		_ = cmd.RegisterFlagCompletionFunc(s.flag, func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return vals, cobra.ShellCompDirectiveNoFileComp
		})
	}
}

func (s *Setting[T]) resolve(fs *pflag.FlagSet, env Lookup) (resolved, error) {
	if fs != nil {
		if fl := fs.Lookup(s.flag); fl != nil && fl.Changed {
			fv, ok := fl.Value.(*flagValue[T])
			if !ok {
				return resolved{}, fmt.Errorf("config: --%s is not a generated flag", s.flag)
			}
			return resolved{value: fv.v, text: s.format(fv.v), source: Source{Origin: FromFlag}}, nil
		}
	}
	for _, name := range s.Info().Vars() {
		text, ok := "", false
		if env != nil {
			text, ok = env(name)
		}
		if !ok || text == "" {
			continue
		}
		v, err := s.validate(text)
		if err != nil {
			return resolved{}, fmt.Errorf("%s=%q: %w", name, text, err)
		}
		return resolved{value: v, text: s.format(v), source: Source{Origin: FromEnv, Var: name}}, nil
	}
	v := s.Default()
	return resolved{value: v, text: s.format(v), source: Source{Origin: FromDefault}}, nil
}

// Values are the resolved settings of one command invocation.
type Values struct {
	byFlag map[string]resolved
}

// Source returns where the value of setting s came from.
func (v *Values) Source(s Any) Source { return v.byFlag[s.Info().Flag].source }

// Text returns the value of setting s as text.
func (v *Values) Text(s Any) string { return v.byFlag[s.Info().Flag].text }

// Set is the settings one command binds.
type Set struct {
	cmd      *cobra.Command
	settings []Any
}

// Bind generates the flags of settings on cmd and returns the Set that
// resolves them once cmd's flags are parsed. A setting listed twice (two
// groups that share it) is bound once.
func Bind(cmd *cobra.Command, settings ...Any) *Set {
	set := &Set{cmd: cmd}
	for _, s := range settings {
		if cmd.Flags().Lookup(s.Info().Flag) != nil {
			continue
		}
		s.bind(cmd)
		set.settings = append(set.settings, s)
	}
	return set
}

// Resolve returns the value of every bound setting: flag, else environment,
// else default. The error names the variable whose value is not valid.
func (set *Set) Resolve(env Lookup) (*Values, error) {
	return resolveAll(set.cmd.Flags(), env, set.settings)
}

// Resolve resolves settings from the environment alone (no flags).
func Resolve(env Lookup, settings ...Any) (*Values, error) {
	return resolveAll(nil, env, settings)
}

func resolveAll(fs *pflag.FlagSet, env Lookup, settings []Any) (*Values, error) {
	v := &Values{byFlag: make(map[string]resolved, len(settings))}
	for _, s := range settings {
		r, err := s.resolve(fs, env)
		if err != nil {
			return nil, err
		}
		v.byFlag[s.Info().Flag] = r
	}
	return v, nil
}

// Row is one setting in a listing: its declaration, its current value and
// source, or the error of an invalid environment value.
type Row struct {
	Info
	Value  string
	Source Source
	Err    error
}

// List resolves each setting from the environment alone and reports it,
// invalid values included (Err set), in the order given.
func List(env Lookup, settings ...Any) []Row {
	rows := make([]Row, 0, len(settings))
	for _, s := range settings {
		r, err := s.resolve(nil, env)
		rows = append(rows, Row{Info: s.Info(), Value: r.text, Source: r.source, Err: err})
	}
	return rows
}

// FlagVars returns the variables of a flag generated from a setting (nil
// for other flags): how `bitnet env` finds which commands take a setting.
func FlagVars(fl *pflag.Flag) []string { return fl.Annotations[annotation] }

// AtLeast is a Check: values must be >= lo.
func AtLeast[T cmp.Ordered](lo T) func(T) error {
	return func(v T) error {
		if v < lo {
			return fmt.Errorf("want at least %v", lo)
		}
		return nil
	}
}

// Between is a Check: values must be in [lo, hi].
func Between[T cmp.Ordered](lo, hi T) func(T) error {
	return func(v T) error {
		if v < lo || v > hi {
			return fmt.Errorf("want %v to %v", lo, hi)
		}
		return nil
	}
}
