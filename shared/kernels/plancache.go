package kernels

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"
)

// EnvPlan is the environment variable that sets the plan mode (PlanMode).
const EnvPlan = "BITNET_KERNEL_PLAN"

// PlanMode says how LoadPlan gets a plan.
type PlanMode string

// The plan modes.
const (
	// PlanAuto reads the cached plan of this CPU, binary and shapes, and
	// measures (and caches) one when there is none. The default.
	PlanAuto PlanMode = "auto"
	// PlanRefresh measures now and replaces the cached plan.
	PlanRefresh PlanMode = "refresh"
	// PlanStatic measures nothing: every class on the widest path.
	PlanStatic PlanMode = "static"
)

// ParsePlanMode parses "auto", "refresh" or "static" ("" is auto).
func ParsePlanMode(s string) (PlanMode, error) {
	switch m := PlanMode(strings.ToLower(strings.TrimSpace(s))); m {
	case "":
		return PlanAuto, nil
	case PlanAuto, PlanRefresh, PlanStatic:
		return m, nil
	}
	return "", fmt.Errorf("kernels: unknown plan mode %q (want auto, refresh or static)", s)
}

// PlanConfig configures LoadPlan.
type PlanConfig struct {
	Mode PlanMode
	// Dir holds cached plans (default: the user cache directory's
	// bitnet-mesh/kernel-plans; a plan that cannot be cached is still used).
	Dir string
	// Measure sizes the measurement (threads, shapes, ...).
	Measure MeasureConfig
}

// LoadPlan returns the plan for this CPU and binary at cfg.Measure.Threads
// threads on cfg.Measure.Shapes: cached when it was measured before (the
// key covers the CPU's identity without its microcode, the variants this
// binary offers, the binary's version, threads and shapes), else measured
// (a few seconds) and cached. A forced path (--kernel) needs no plan: use
// WithPath.
func LoadPlan(ctx context.Context, cfg PlanConfig) (Plan, error) {
	mode := cfg.Mode
	if mode == "" {
		mode = PlanAuto
	}
	if mode == PlanStatic {
		return StaticPlan(), nil
	}
	if mode != PlanAuto && mode != PlanRefresh {
		return Plan{}, fmt.Errorf("kernels: unknown plan mode %q", mode)
	}
	mc := cfg.Measure
	mc.defaults()
	key := planKey(mc)
	path := ""
	if dir := cfg.Dir; dir != "" {
		path = filepath.Join(dir, key+".json")
	} else if d, err := os.UserCacheDir(); err == nil {
		path = filepath.Join(d, "bitnet-mesh", "kernel-plans", key+".json")
	}
	if mode == PlanAuto && path != "" {
		if p, err := readPlan(path, key, mc.Accelerator != nil); err == nil {
			return p, nil
		}
	}
	ts, err := Measure(ctx, mc)
	if err != nil {
		return Plan{}, err
	}
	choice := Choose(ts, StaticPlan().Choice)
	p := Plan{
		Choice: choice, PerShape: ChooseShapes(ts, choice), Source: "measured", Threads: mc.Threads,
		Timings: ts, Key: key, Measured: time.Now().UTC().Truncate(time.Second),
	}
	if path != "" {
		_ = writePlan(path, p) // a cache that cannot be written only costs a measurement next time
	}
	return p, nil
}

// planKey identifies a measurement: CPU, variants, binary, threads, shapes.
func planKey(mc MeasureConfig) string {
	h := sha256.New()
	fmt.Fprintf(h, "cpu=%s\nvariants=%v\nbinary=%s\nthreads=%d\nshapes=%v\nhead=%d %s\nclasses=%v\ntiming=%v %d\n",
		CPUID(), Variants(), binaryVersion(), mc.Threads, mc.Shapes, mc.HeadCols, mc.HeadFormat, mc.Classes, mc.MinTime, mc.Reps)
	if mc.Accelerator != nil {
		fmt.Fprintf(h, "accelerator=%s %s\n", mc.Accelerator.Path(), mc.Accelerator.Name())
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// binaryVersion identifies the running binary: its module version and VCS
// revision when built from a checkout, else its size and modification time.
func binaryVersion() string {
	var parts []string
	if bi, ok := debug.ReadBuildInfo(); ok {
		parts = append(parts, bi.GoVersion, bi.Main.Path, bi.Main.Version)
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" || s.Key == "vcs.modified" || s.Key == "vcs.time" {
				parts = append(parts, s.Key+"="+s.Value)
			}
		}
	}
	if exe, err := os.Executable(); err == nil {
		if fi, err := os.Stat(exe); err == nil {
			parts = append(parts, fmt.Sprintf("%d@%d", fi.Size(), fi.ModTime().UnixNano()))
		}
	}
	return strings.Join(parts, " ")
}

// readPlan loads a cached plan and checks it.
func readPlan(path, key string, acc bool) (Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Plan{}, err
	}
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return Plan{}, fmt.Errorf("kernels: cached plan %s: %w", path, err)
	}
	if p.Key != key {
		return Plan{}, errors.New("kernels: cached plan has another key")
	}
	if err := p.validate(acc); err != nil {
		return Plan{}, err
	}
	p.Source = "cache"
	return p, nil
}

// writePlan stores p atomically (a temporary file renamed into place).
func writePlan(path string, p Plan) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".plan-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), path)
}
