package main

import (
	"strings"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/services/registry"
)

func TestQuantizeCommand(t *testing.T) {
	addr, store := startMesh(t)
	if _, _, err := runCLI(t, "push", "--remote", addr, tinyHF, "--name", "src", "--quiet"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		want    string
		wantErr string
	}{
		{"default name", []string{"src@1", "--quiet"}, "src@2\n", ""},
		{"named", []string{"src", "--name", "srcq", "--type", "tq1_0", "--quiet"}, "srcq@1\n", ""},
		{"i2_s", []string{"src@1", "--name", "srci2s", "--type", "i2_s", "--quiet"}, "srci2s@1\n", ""},
		{"detach", []string{"src@1", "--detach"}, "job-4\n", ""},
		{"bad ref", []string{"src@x"}, "", "invalid model reference"},
		{"bad name", []string{"src", "--name", "-x"}, "", "--name"},
		{"unknown", []string{"nope"}, "", "NotFound"},
		{"bad type", []string{"src", "--type", "f16"}, "", "tq2_0, tq1_0 or i2_s"},
		{"no ref", []string{}, "", "want one model reference"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := runCLI(t, append([]string{"quantize", "--remote", addr}, tt.args...)...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out != tt.want {
				t.Errorf("got %q, want %q", out, tt.want)
			}
		})
	}
	for ref, want := range map[string]registry.QuantType{"srcq@1": registry.QuantTQ10, "srci2s@1": registry.QuantI2S} {
		if v, err := store.Resolve(t.Context(), ref); err != nil || v.Metadata.QuantType != want {
			t.Errorf("%s: quant type %v, %v; want %s", ref, v.Metadata.QuantType, err, want)
		}
	}
	v, err := store.Resolve(t.Context(), "src@2")
	if err != nil || v.Metadata.Lineage.Parent == nil || v.Metadata.Lineage.Parent.String() != "src@1" {
		t.Errorf("src@2 lineage: got %+v, %v, want parent src@1", v.Metadata.Lineage, err)
	}
}
