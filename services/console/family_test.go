package console

import (
	"os"
	"regexp"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// TestFamilyTable keeps the console's FAMILIES (assets/js/format.js) in
// step with model.FamilyOf: every entry names the family FamilyOf gives,
// and every Hugging Face architecture the engine runs has its entry.
func TestFamilyTable(t *testing.T) {
	js, err := os.ReadFile("assets/js/format.js")
	if err != nil {
		t.Fatal(err)
	}
	table := regexp.MustCompile(`(?s)const FAMILIES = \{(.*?)\n\};`).FindSubmatch(js)
	if table == nil {
		t.Fatal("format.js: no FAMILIES table")
	}
	got := map[string]string{}
	for _, m := range regexp.MustCompile(`'([^']+)': '([^']*)'`).FindAllSubmatch(table[1], -1) {
		got[string(m[1])] = string(m[2])
	}
	for arch, fam := range got {
		if want := string(model.FamilyOf(arch)); fam != want {
			t.Errorf("FAMILIES[%q] = %q, model.FamilyOf says %q", arch, fam, want)
		}
	}
	for _, arch := range []string{model.ArchBitNet, model.ArchBitNetB158, model.ArchLlama, model.ArchQwen3, model.ArchGemma3,
		model.GGUFArch, model.GGUFArchBitNet25, model.GGUFArchBitNetB158} {
		if _, ok := got[arch]; !ok {
			t.Errorf("FAMILIES has no entry for %q (family %q)", arch, model.FamilyOf(arch))
		}
	}
}
