package hardware

import (
	"errors"
	"reflect"
	"testing"
)

// FuzzParseMeta feeds ParseMeta values as a router reads them from Consul:
// it must return a report or ErrMeta, never panic, and an accepted report
// must survive Meta/ParseMeta unchanged.
func FuzzParseMeta(f *testing.F) {
	f.Add("neon", "generic,neon", "", "64", "137438953472", "true", "Apple M2 Pro")
	f.Add("avx2", "generic,avx2", "avx2", "112", "0", "false", "")
	f.Fuzz(func(t *testing.T, kernel, kernels, cap, cores, memory, flag, brand string) {
		m := map[string]string{KeyKernel: kernel, KeyKernels: kernels, KeyCores: cores, KeyMemory: memory,
			"dotprod": flag, KeyBrand: brand}
		if cap != "" {
			m[KeyKernelCap] = cap
		}
		r, err := ParseMeta(m)
		if err != nil {
			if !errors.Is(err, ErrMeta) {
				t.Fatalf("got error %v, want ErrMeta", err)
			}
			return
		}
		r.Brand = clip(r.Brand)
		again, err := ParseMeta(r.Meta())
		if err != nil {
			t.Fatalf("ParseMeta(Meta()) of an accepted report: %v", err)
		}
		if !reflect.DeepEqual(again, r) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", again, r)
		}
	})
}
