package mesh

import (
	"net"
	"path/filepath"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery"
)

func TestParseKind(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Kind
		wantErr bool
	}{
		{"registry", Registry, false},
		{"quantizer", Quantizer, false},
		{"inference", Inference, false},
		{"router", Router, false},
		{"trainer", Trainer, false},
		{"mailer", "", true},
		{"Registry", "", true},
		{"", "", true},
	} {
		got, err := ParseKind(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("ParseKind(%q): got %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
	if got := Inference.ServiceName(); got != "bitnet-inference" {
		t.Errorf("got service name %q, want bitnet-inference", got)
	}
}

func TestConfigValidate(t *testing.T) {
	mem := discovery.NewMemory()
	defer mem.Close()
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"ok", Config{Discovery: mem}, false},
		{"kernel cap", Config{Discovery: mem, Kernel: "avx2"}, false},
		{"no discovery", Config{}, true},
		{"bad kernel", Config{Discovery: mem, Kernel: "sse9"}, true},
		{"negative threads", Config{Discovery: mem, Threads: -1}, true},
		{"negative budget", Config{Discovery: mem, MemoryBudget: -1}, true},
		{"negative drain", Config{Discovery: mem, DrainTimeout: -1}, true},
	} {
		err := tc.cfg.withDefaults().validate()
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: got error %v, want error %v", tc.name, err, tc.wantErr)
		}
	}
}

func TestBuildBadInput(t *testing.T) {
	mem := discovery.NewMemory()
	defer mem.Close()
	if _, err := Build("mailer", Config{Discovery: mem}); err == nil {
		t.Error("Build(mailer): got nil error, want unknown service")
	}
	if _, err := Build(Router, Config{Discovery: mem, GRPCAddr: "256.0.0.1:1"}); err == nil {
		t.Error("Build with a bad address: got nil error")
	}
	// A failed Build leaves the address free.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if _, err := Build(Inference, Config{Discovery: mem, GRPCListener: l, HTTPAddr: "-", Kernel: "nope"}); err == nil {
		t.Fatal("Build with a bad kernel: got nil error")
	}
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("address still taken after a failed Build: %v", err)
	}
	l2.Close()
}

func TestAdvertised(t *testing.T) {
	for _, tc := range []struct {
		addr      string
		advertise string
		wantHost  string
	}{
		{"127.0.0.1:5000", "", "127.0.0.1"},
		{"0.0.0.0:5000", "", "127.0.0.1"},
		{"[::]:5000", "", "127.0.0.1"},
		{"0.0.0.0:5000", "10.1.2.3", "10.1.2.3"},
	} {
		a, err := net.ResolveTCPAddr("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		host, port, err := advertised(a, tc.advertise)
		if err != nil || host != tc.wantHost || port != 5000 {
			t.Errorf("advertised(%s, %q): got %s %d %v, want %s 5000", tc.addr, tc.advertise, host, port, err, tc.wantHost)
		}
	}
}

func TestDefaultDataDir(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/data")
	if got, want := DefaultDataDir(), filepath.Join("/data", "bitnet"); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("HOME", "/home/u")
	if got, want := DefaultDataDir(), filepath.Join("/home/u", ".local", "share", "bitnet"); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
