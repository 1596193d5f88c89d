// Package memlimit finds the memory a process may use: the cgroup limit of
// its container (v2 memory.max, v1 memory.limit_in_bytes) when one is set,
// else the host's RAM. Services size their memory budgets from it and set
// the Go runtime's soft limit (GOMEMLIMIT) from it, so that the garbage
// collector works harder before the kernel's OOM killer steps in.
//
// Hand-written rather than a library (automemlimit, go.uber.org/automaxprocs
// style): the parsing is two small files, and reading them through a root
// directory lets tests use real files.
package memlimit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/bitnet-mesh/bitnet-mesh/shared/hardware"
)

// Source says where a Limit comes from.
type Source string

const (
	CgroupV2 Source = "cgroup v2 memory.max"
	CgroupV1 Source = "cgroup v1 memory.limit_in_bytes"
	Host     Source = "host memory"
	Unknown  Source = "unknown"
)

// Fractions of the limit the defaults take. A container's limit is all
// its own (the rest is Go runtime, scratch and stacks); a host's RAM is
// shared with everything else on it.
const (
	BudgetFractionCgroup = 0.80
	BudgetFractionHost   = 0.50
	// GoLimitFraction of the limit becomes GOMEMLIMIT: the collector runs
	// harder past it, leaving the rest for memory the runtime does not
	// manage (mmap'd files, cgo, the kernel's page cache charged to the
	// cgroup).
	GoLimitFraction = 0.90
)

// unlimited: cgroup v1 reports "no limit" as a huge page-rounded number
// (9223372036854771712); anything this large is no limit.
const unlimited = 1 << 62

// Limit is the memory available to the process.
type Limit struct {
	Bytes  int64  // 0: unknown
	Source Source // where Bytes comes from
}

// String formats l for logs and messages ("5.0 GiB (cgroup v2 memory.max)").
func (l Limit) String() string {
	return fmt.Sprintf("%s (%s)", formatBytes(l.Bytes), l.Source)
}

// Budget is the default memory budget: BudgetFractionCgroup of a cgroup
// limit, BudgetFractionHost of host memory, 0 when unknown.
func (l Limit) Budget() int64 {
	switch l.Source {
	case CgroupV1, CgroupV2:
		return int64(float64(l.Bytes) * BudgetFractionCgroup)
	case Host:
		return int64(float64(l.Bytes) * BudgetFractionHost)
	}
	return 0
}

// GoLimit is the soft limit for the Go runtime: GoLimitFraction of l, or 0
// when l is unknown.
func (l Limit) GoLimit() int64 {
	if l.Bytes <= 0 {
		return 0
	}
	return int64(float64(l.Bytes) * GoLimitFraction)
}

type config struct {
	root string
	host func() uint64
}

// Option configures Detect.
type Option func(*config)

// WithRoot reads /proc and /sys/fs/cgroup under dir instead of / (tests).
func WithRoot(dir string) Option { return func(c *config) { c.root = dir } }

// WithHostMemory sets the host's memory instead of asking the OS.
func WithHostMemory(n uint64) Option { return func(c *config) { c.host = func() uint64 { return n } } }

// Detect returns the memory limit of the process: the smallest cgroup
// limit on its path (v2, else v1), capped by the host's memory, else the
// host's memory. Malformed cgroup files are errors; missing ones mean no
// cgroup limit.
func Detect(opts ...Option) (Limit, error) {
	c := config{root: "/", host: hardware.TotalMemory}
	for _, o := range opts {
		o(&c)
	}
	host := int64(min(c.host(), uint64(unlimited)))
	l, err := cgroupLimit(c.root)
	switch {
	case err != nil:
		return Limit{}, fmt.Errorf("memlimit: %w", err)
	case l.Bytes > 0 && (host <= 0 || l.Bytes < host):
		return l, nil
	case host > 0:
		return Limit{Bytes: host, Source: Host}, nil
	}
	return Limit{Source: Unknown}, nil
}

// cgroupLimit reads /proc/self/cgroup and the memory limits of the
// process's cgroup and its ancestors (a pod's limit may sit on a parent).
func cgroupLimit(root string) (Limit, error) {
	b, err := os.ReadFile(filepath.Join(root, "proc", "self", "cgroup"))
	if errors.Is(err, fs.ErrNotExist) {
		return Limit{}, nil
	}
	if err != nil {
		return Limit{}, err
	}
	var v2, v1 string
	v2ok, v1ok := false, false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2, v2ok = parts[2], true
		case containsController(parts[1], "memory"):
			v1, v1ok = parts[2], true
		}
	}
	cg := filepath.Join(root, "sys", "fs", "cgroup")
	if v1ok {
		// v1 (or hybrid with memory on v1): the memory controller's mount.
		n, err := smallest(filepath.Join(cg, "memory"), v1, "memory.limit_in_bytes")
		if err != nil || n > 0 {
			return Limit{Bytes: n, Source: CgroupV1}, err
		}
	}
	if v2ok {
		n, err := smallest(cg, v2, "memory.max")
		return Limit{Bytes: n, Source: CgroupV2}, err
	}
	return Limit{}, nil
}

func containsController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// smallest returns the smallest limit in file along mount/cgpath and its
// ancestors up to mount, or 0 for none. Inside a container with its own
// cgroup namespace (or a v1 mount of its own cgroup) the path /proc shows
// may not exist under the mount: then the mount's own file is the
// container's.
func smallest(mount, cgpath, file string) (int64, error) {
	cgpath = path.Clean("/" + cgpath)
	var best int64
	for p := cgpath; ; p = path.Dir(p) {
		n, ok, err := readLimit(filepath.Join(mount, filepath.FromSlash(p), file))
		if err != nil {
			return 0, err
		}
		if ok && n > 0 && (best == 0 || n < best) {
			best = n
		}
		if p == "/" {
			break
		}
	}
	return best, nil
}

// readLimit reads one limit file: ok is false when it does not exist, n
// is 0 for "max" or an unlimited value.
func readLimit(name string) (n int64, ok bool, err error) {
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, true, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%s: %q is not a byte count or max", filepath.Base(name), s)
	}
	if v >= unlimited {
		return 0, true, nil
	}
	return int64(v), true, nil
}

// SetGoLimit sets the Go runtime's soft memory limit to l.GoLimit() unless
// the GOMEMLIMIT environment variable (looked up with getenv) sets one
// already or l is unknown. It returns the limit set, 0 when none.
func SetGoLimit(l Limit, getenv func(string) string) int64 {
	if getenv("GOMEMLIMIT") != "" {
		return 0
	}
	n := l.GoLimit()
	if n <= 0 {
		return 0
	}
	debug.SetMemoryLimit(n)
	return n
}

func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n), -1
	for f >= unit && i < 5 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGTPE"[i])
}
