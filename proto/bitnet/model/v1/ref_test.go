package modelv1

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

func TestParseRef(t *testing.T) {
	tests := []struct {
		in      string
		want    *ModelRef // nil: an error
		wantErr string    // in the error message
	}{
		{in: "tiny", want: &ModelRef{Name: "tiny"}},
		{in: "tiny@3", want: &ModelRef{Name: "tiny", Version: 3}},
		{in: "tiny:prod", want: &ModelRef{Name: "tiny", Alias: "prod"}},
		{in: "bitnet-b1.58_2b@4294967295", want: &ModelRef{Name: "bitnet-b1.58_2b", Version: 1<<32 - 1}},
		{in: "0x:v2", want: &ModelRef{Name: "0x", Alias: "v2"}},
		{in: "", wantErr: "length 0"},
		{in: "Tiny", wantErr: "character 'T'"},
		{in: "../etc", wantErr: "character '.' at 0"},
		{in: ".", wantErr: "character '.' at 0"},
		{in: "a/b", wantErr: "character '/'"},
		{in: strings.Repeat("a", 65), wantErr: "length 65"},
		{in: "tiny@0", wantErr: "version \"0\""},
		{in: "tiny@03", wantErr: "version \"03\""},
		{in: "tiny@-1", wantErr: "version"},
		{in: "tiny@+1", wantErr: "version"},
		{in: "tiny@4294967296", wantErr: "version"},
		{in: "tiny@", wantErr: "version"},
		{in: "tiny@1:prod", wantErr: "version"},
		{in: "tiny:", wantErr: "alias"},
		{in: "tiny:42", wantErr: "all digits"},
		{in: "tiny:prod:x", wantErr: "character ':'"},
		{in: "@3", wantErr: "length 0"},
		{in: ":prod", wantErr: "length 0"},
	}
	for _, tt := range tests {
		got, err := ParseRef(tt.in)
		if tt.want != nil {
			if err != nil || !proto.Equal(got, tt.want) {
				t.Errorf("ParseRef(%q): got %v, %v; want %v", tt.in, got, err, tt.want)
			}
			continue
		}
		if err == nil || !errors.Is(err, ErrInvalidRef) || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ParseRef(%q): got %v, %v; want an ErrInvalidRef containing %q", tt.in, got, err, tt.wantErr)
		}
	}
}

func TestRefText(t *testing.T) {
	tests := []struct {
		ref  *ModelRef
		want string
	}{
		{nil, ""},
		{&ModelRef{Name: "tiny"}, "tiny"},
		{&ModelRef{Name: "tiny", Version: 3}, "tiny@3"},
		{&ModelRef{Name: "tiny", Alias: "prod"}, "tiny:prod"},
		{&ModelRef{Name: "tiny", Version: 3, Alias: "prod"}, "tiny@3"}, // resolved through an alias
	}
	for _, tt := range tests {
		if got := tt.ref.Text(); got != tt.want {
			t.Errorf("%v.Text(): got %q, want %q", tt.ref, got, tt.want)
		}
	}
}

// FuzzParseRef checks that ParseRef never panics, fails only with
// ErrInvalidRef, and that Text gives back an accepted reference exactly.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"tiny", "tiny@3", "tiny:prod", "a@0", "a:1", "../x", "a@99999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 1<<16 { // per-input cost bound
			return
		}
		r, err := ParseRef(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidRef) {
				t.Fatalf("ParseRef(%q): got error %v, want ErrInvalidRef", s, err)
			}
			return
		}
		if got := r.Text(); got != s {
			t.Fatalf("ParseRef(%q).Text(): got %q, want the input", s, got)
		}
		if strings.ContainsAny(r.GetName(), "/\\") || r.GetName() == "." || r.GetName() == ".." {
			t.Fatalf("ParseRef(%q): name %q is not a safe file name", s, r.GetName())
		}
	})
}
