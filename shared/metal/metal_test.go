package metal

import (
	"errors"
	"runtime"
	"testing"
)

func TestFromSysctl(t *testing.T) {
	tests := []struct {
		name  string
		arm64 uint32
		err   error
		brand string
		want  Info
	}{
		{"apple silicon", 1, nil, "Apple M2 Pro", Info{Reason: ReasonNotBuilt, Device: "Apple M2 Pro GPU"}},
		{"no brand", 1, nil, "", Info{Reason: ReasonNotBuilt, Device: "Apple Silicon GPU"}},
		{"intel mac", 0, nil, "Intel(R) Core(TM) i9", Info{Reason: ReasonNoAppleSi}},
		{"sysctl missing", 0, errors.New("no such sysctl"), "", Info{Reason: ReasonNoAppleSi}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fromSysctl(tt.arm64, tt.err, tt.brand); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestProbe(t *testing.T) {
	got := Probe()
	if got.Available {
		t.Fatalf("got Available = true, want false: no Metal kernels exist")
	}
	if runtime.GOOS != "darwin" && got != (Info{Reason: ReasonNotMacOS}) {
		t.Errorf("got %+v, want %+v", got, Info{Reason: ReasonNotMacOS})
	}
	if got.Reason == "" {
		t.Errorf("got empty Reason, want one")
	}
}
