package memlimit

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

const gib = 1 << 30

// writeTree writes files (path relative to root -> content) under a new
// temporary root.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, body := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestDetect(t *testing.T) {
	const kube = "/kubepods.slice/kubepods-burstable.slice/pod1.slice/cri-abc.scope"
	tests := []struct {
		name  string
		files map[string]string
		host  uint64
		want  Limit
	}{
		{"v2 namespaced: the mount's own file", map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "5368709120\n",
		}, 64 * gib, Limit{5 * gib, CgroupV2}},
		{"v2 max: host memory", map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "max\n",
		}, 64 * gib, Limit{64 * gib, Host}},
		{"v2 host path: the smallest on the way up", map[string]string{
			"proc/self/cgroup":                     "0::" + kube + "\n",
			"sys/fs/cgroup" + kube + "/memory.max": "max\n",
			"sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/pod1.slice/memory.max": "2147483648\n",
			"sys/fs/cgroup/kubepods.slice/memory.max":                                     "34359738368\n",
		}, 64 * gib, Limit{2 * gib, CgroupV2}},
		{"v2 limit above host: host", map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "137438953472\n",
		}, 16 * gib, Limit{16 * gib, Host}},
		{"v1", map[string]string{
			"proc/self/cgroup":                           "12:pids:/kubepods/pod1/abc\n11:cpu,cpuacct:/kubepods/pod1/abc\n4:memory:/kubepods/pod1/abc\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "1073741824\n",
		}, 64 * gib, Limit{1 * gib, CgroupV1}},
		{"v1 unlimited", map[string]string{
			"proc/self/cgroup":                           "4:memory:/\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
		}, 8 * gib, Limit{8 * gib, Host}},
		{"hybrid: memory on v1", map[string]string{
			"proc/self/cgroup": "4:memory:/user.slice\n0::/user.slice/session-1.scope\n",
			"sys/fs/cgroup/memory/user.slice/memory.limit_in_bytes": "3221225472\n",
			"sys/fs/cgroup/unified/memory.max":                      "max\n",
		}, 64 * gib, Limit{3 * gib, CgroupV1}},
		{"no cgroup files: host", map[string]string{}, 32 * gib, Limit{32 * gib, Host}},
		{"nothing known", map[string]string{}, 0, Limit{0, Unknown}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeTree(t, tt.files)
			got, err := Detect(WithRoot(root), WithHostMemory(tt.host))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDetectMalformed(t *testing.T) {
	root := writeTree(t, map[string]string{
		"proc/self/cgroup":         "0::/\n",
		"sys/fs/cgroup/memory.max": "lots\n",
	})
	_, err := Detect(WithRoot(root), WithHostMemory(gib))
	if err == nil || !strings.Contains(err.Error(), `"lots"`) {
		t.Errorf("got error %v, want one quoting the bad value", err)
	}
}

func TestBudgetAndGoLimit(t *testing.T) {
	tests := []struct {
		l             Limit
		budget, golim int64
	}{
		{Limit{10 * gib, CgroupV2}, 8 * gib, 9 * gib},
		{Limit{10 * gib, CgroupV1}, 8 * gib, 9 * gib},
		{Limit{10 * gib, Host}, 5 * gib, 9 * gib},
		{Limit{0, Unknown}, 0, 0},
	}
	for _, tt := range tests {
		if got := tt.l.Budget(); got != tt.budget {
			t.Errorf("%v: got budget %d, want %d", tt.l, got, tt.budget)
		}
		if got := tt.l.GoLimit(); got != tt.golim {
			t.Errorf("%v: got Go limit %d, want %d", tt.l, got, tt.golim)
		}
	}
}

func TestSetGoLimit(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	l := Limit{10 * gib, CgroupV2}
	if got := SetGoLimit(l, func(string) string { return "1GiB" }); got != 0 {
		t.Errorf("with GOMEMLIMIT set: got %d, want 0 (left alone)", got)
	}
	if got := debug.SetMemoryLimit(-1); got != old {
		t.Errorf("with GOMEMLIMIT set: runtime limit changed to %d", got)
	}
	if got := SetGoLimit(l, func(string) string { return "" }); got != 9*gib {
		t.Errorf("got %d, want %d", got, 9*gib)
	}
	if got := debug.SetMemoryLimit(-1); got != 9*gib {
		t.Errorf("runtime limit: got %d, want %d", got, 9*gib)
	}
}
