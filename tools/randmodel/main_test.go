package main

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

func TestConfig2B4T(t *testing.T) {
	c := config2B4T(30)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	got := []int{c.HiddenSize, c.NumLayers, c.NumHeads, c.NumKVHeads, c.IntermediateSize, c.VocabSize, c.MaxPositions, c.HeadDim}
	want := []int{2560, 30, 20, 5, 6912, 128256, 4096, 128}
	if !slices.Equal(got, want) || c.RopeTheta != 500000 || !c.TieWordEmbeddings || c.HiddenAct != "relu2" {
		t.Errorf("got %+v, want the 2B4T shape %v", c, want)
	}
}

func TestRandomWeights(t *testing.T) {
	c := config2B4T(2)
	c.VocabSize, c.HiddenSize, c.IntermediateSize, c.NumHeads, c.NumKVHeads, c.HeadDim = 50, 104, 300, 4, 2, 26
	c.BOSTokenID, c.EOSTokenIDs = -1, nil
	a, err := randomWeights(c, 3)
	if err != nil {
		t.Fatal(err)
	}
	b, err := randomWeights(c, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Layers[1].Down.Codes, b.Layers[1].Down.Codes) || !slices.Equal(a.Embed, b.Embed) {
		t.Error("same seed: got different weights")
	}
	var counts [3]int
	for _, m := range []*ternary.Matrix{a.Layers[0].Q, a.Layers[1].Down} {
		if err := m.Validate(); err != nil {
			t.Fatal(err) // codes in {0,1,2}
		}
		for r := 0; r < m.Rows; r++ {
			for c := m.Cols; c < ternary.PaddedCols(m.Cols); c++ {
				if code := m.Code(r, c); code != 1 {
					t.Fatalf("padding weight (%d,%d) has code %d, want 1", r, c, code)
				}
			}
			for c := 0; c < m.Cols; c++ {
				counts[m.Code(r, c)]++
			}
		}
	}
	total := counts[0] + counts[1] + counts[2]
	for v, n := range counts {
		if f := float64(n) / float64(total); f < 0.3 || f > 0.37 {
			t.Errorf("share of weight %d: got %.3f, want about 1/3", v-1, f)
		}
	}
	for _, x := range a.Embed {
		if x < -0.05 || x >= 0.05 {
			t.Fatalf("embedding value %v outside [-0.05, 0.05)", x)
		}
	}
}

func TestOptionsAndErrors(t *testing.T) {
	if _, err := ggufOptions("tq1_0", "q8_0"); err != nil {
		t.Error(err)
	}
	for _, tc := range [][2]string{{"tq3_0", "f16"}, {"tq2_0", "q4_0"}} {
		if _, err := ggufOptions(tc[0], tc[1]); err == nil {
			t.Errorf("ggufOptions(%q, %q): got no error", tc[0], tc[1])
		}
	}
	var log bytes.Buffer
	if err := run([]string{"-layers", "1"}, &log); err == nil || !strings.Contains(err.Error(), "-out") {
		t.Errorf("no -out: got %v", err)
	}
	err := run([]string{"-out", filepath.Join(t.TempDir(), "m.gguf"), "-tokenizer", "nope.json"}, &log)
	if err == nil || !strings.Contains(err.Error(), "no tokenizer") {
		t.Errorf("missing tokenizer: got %v", err)
	}
	tok, path, err := loadTokenizer([]string{"nope.json", filepath.Join("..", "..", "testdata", "tokenizer", "opticks-bpe600.json")})
	if err != nil || tok == nil || !strings.HasSuffix(path, "opticks-bpe600.json") {
		t.Errorf("loadTokenizer: got %v, %q, %v", tok, path, err)
	}
}
