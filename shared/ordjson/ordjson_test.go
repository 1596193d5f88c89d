package ordjson

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestDecode(t *testing.T) {
	v, err := Decode([]byte(`{"b": 1, "a": [true, null, "x", {"z": 2.5, "y": {}}], "b": 3}`), 10)
	if err != nil {
		t.Fatal(err)
	}
	o := v.(*Object)
	if !reflect.DeepEqual(o.Keys, []string{"b", "a"}) || o.Values["b"] != json.Number("3") {
		t.Errorf("got keys %v, b %v; want [b a], 3", o.Keys, o.Values["b"])
	}
	inner := o.Values["a"].([]any)[3].(*Object)
	if !reflect.DeepEqual(inner.Keys, []string{"z", "y"}) || inner.Values["z"] != json.Number("2.5") {
		t.Errorf("inner %+v", inner)
	}
	for _, bad := range []string{`{`, `[1] 2`, `{"a": [[[1]]]}`, ``} {
		if _, err := Decode([]byte(bad), 2); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
