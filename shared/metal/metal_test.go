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
		amd64 bool
		want  Info
	}{
		{"apple silicon", 1, nil, "Apple M2 Pro", false, Info{Reason: ReasonNotStarted, Device: "Apple M2 Pro GPU"}},
		{"no brand", 1, nil, "", false, Info{Reason: ReasonNotStarted, Device: "Apple Silicon GPU"}},
		{"rosetta", 1, nil, "Apple M1", true, Info{Reason: ReasonNotArm64, Device: "Apple M1 GPU"}},
		{"intel mac", 0, nil, "Intel(R) Core(TM) i9", false, Info{Reason: ReasonNoAppleSi}},
		{"sysctl missing", 0, errors.New("no such sysctl"), "", false, Info{Reason: ReasonNoAppleSi}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fromSysctl(tt.arm64, tt.err, tt.brand, !tt.amd64); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestProbe(t *testing.T) {
	got := Probe()
	if got.Available {
		t.Fatalf("got Available = true, want false: Probe never opens the GPU")
	}
	if runtime.GOOS != "darwin" && got != (Info{Reason: ReasonNotMacOS}) {
		t.Errorf("got %+v, want %+v", got, Info{Reason: ReasonNotMacOS})
	}
	if got.Reason == "" {
		t.Errorf("got empty Reason, want one")
	}
}

func TestStart(t *testing.T) {
	g, info, err := Start(ModeOff)
	if g != nil || err != nil || info.Available || info.Reason != ReasonOff {
		t.Errorf("off: got %v, %+v, %v", g, info, err)
	}
	if _, _, err := Start("sometimes"); err == nil {
		t.Error("unknown mode: got no error")
	}
	if runtime.GOOS == "darwin" && runtime.GOARCH == "arm64" {
		t.Skip("a Mac may have a GPU: the rest checks machines without one")
	}
	g, info, err = Start(ModeAuto)
	if g != nil || err != nil || info.Available || info.Reason == "" {
		t.Errorf("auto without a GPU: got %v, %+v, %v; want no GPU, a reason, no error", g, info, err)
	}
	if _, _, err := Start(ModeOn); !errors.Is(err, ErrUnavailable) {
		t.Errorf("on without a GPU: got %v, want ErrUnavailable", err)
	}
}
