package model

import (
	"slices"
	"testing"
)

func TestLinearShapes(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		want [][2]int
	}{
		{"2B4T", Config{HiddenSize: 2560, IntermediateSize: 6912, NumHeads: 20, NumKVHeads: 5},
			[][2]int{{2560, 2560}, {640, 2560}, {6912, 2560}, {2560, 6912}}},
		{"MHA, head_dim set", Config{HiddenSize: 64, IntermediateSize: 128, NumHeads: 2, HeadDim: 48},
			[][2]int{{96, 64}, {64, 96}, {128, 64}, {64, 128}}},
	} {
		if got := c.cfg.LinearShapes(); !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}
