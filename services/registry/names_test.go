package registry

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"tiny", true},
		{"bitnet-b1.58-2b_4t", true},
		{"0", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"", false},
		{".", false},
		{"..", false},
		{"../etc", false},
		{"a/b", false},
		{`a\b`, false},
		{"-x", false},
		{"_x", false},
		{".hidden", false},
		{"Tiny", false},
		{"a b", false},
		{"a\x00", false},
		{"a@1", false},
		{"a:b", false},
		{"é", false},
	}
	for _, tt := range tests {
		err := ValidateName(tt.name)
		if got := err == nil; got != tt.ok {
			t.Errorf("ValidateName(%q): got ok=%v (%v), want %v", tt.name, got, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateName(%q): got %v, want ErrInvalid", tt.name, err)
		}
	}
}

func TestValidateAlias(t *testing.T) {
	for alias, ok := range map[string]bool{"prod": true, "v1": true, "1.5": true, "3": false, "007": false, "": false, "../x": false} {
		if got := ValidateAlias(alias) == nil; got != ok {
			t.Errorf("ValidateAlias(%q): got ok=%v, want %v", alias, got, ok)
		}
	}
}

func TestParseRef(t *testing.T) {
	tests := []struct {
		in   string
		want Ref
		ok   bool
	}{
		{"tiny", Ref{Name: "tiny"}, true},
		{"tiny@3", Ref{Name: "tiny", Version: 3}, true},
		{"tiny@4294967295", Ref{Name: "tiny", Version: 4294967295}, true},
		{"tiny:prod", Ref{Name: "tiny", Alias: "prod"}, true},
		{"tiny@0", Ref{}, false},
		{"tiny@03", Ref{}, false},
		{"tiny@+3", Ref{}, false},
		{"tiny@-1", Ref{}, false},
		{"tiny@4294967296", Ref{}, false},
		{"tiny@", Ref{}, false},
		{"tiny:", Ref{}, false},
		{"tiny:3", Ref{}, false},
		{"tiny@3:prod", Ref{}, false},
		{"tiny:prod@3", Ref{}, false},
		{"@3", Ref{}, false},
		{":prod", Ref{}, false},
		{"", Ref{}, false},
		{"../tiny", Ref{}, false},
		{"tiny:../prod", Ref{}, false},
	}
	for _, tt := range tests {
		got, err := ParseRef(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseRef(%q): got err %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("ParseRef(%q): got %v, want ErrInvalid", tt.in, err)
			}
			continue
		}
		if got != tt.want {
			t.Errorf("ParseRef(%q): got %+v, want %+v", tt.in, got, tt.want)
		}
		if s := got.String(); s != tt.in {
			t.Errorf("ParseRef(%q).String(): got %q, want %q", tt.in, s, tt.in)
		}
	}
}

func TestParseDigest(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	tests := []struct {
		in   string
		want Digest
		ok   bool
	}{
		{"sha256:" + hex, Digest("sha256:" + hex), true},
		{hex, Digest("sha256:" + hex), true},
		{strings.ToUpper(hex), Digest("sha256:" + hex), true},
		{"sha512:" + hex, "", false},
		{hex[:63], "", false},
		{hex + "0", "", false},
		{strings.Repeat("g", 64), "", false},
		{"sha256:../../" + hex[:58], "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, err := ParseDigest(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseDigest(%q): got %q, %v, want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestValidatePath(t *testing.T) {
	for p, ok := range map[string]bool{
		"model.gguf": true, "config.json": true, "tokenizer/vocab.txt": true, "a b.json": true,
		"": false, "/etc/passwd": false, "../x": false, "a/../b": false, "a/./b": false, "a//b": false,
		"a/": false, `a\b`: false, "C:x": false, "a\nb": false, strings.Repeat("a", 256): false,
	} {
		err := ValidatePath(p)
		if (err == nil) != ok {
			t.Errorf("ValidatePath(%q): got %v, want ok=%v", p, err, ok)
		}
	}
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"tiny", "tiny@3", "tiny:prod", "a@0", "x:1", "../a", "a@b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 1<<16 { // per-input cost bound
			return
		}
		r, err := ParseRef(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseRef(%q): got %v, want ErrInvalid", s, err)
			}
			return
		}
		if r.String() != s {
			t.Fatalf("ParseRef(%q).String(): got %q", s, r.String())
		}
		if strings.ContainsAny(r.Name+r.Alias, "/\\") || r.Name == ".." {
			t.Fatalf("ParseRef(%q): unsafe parts %+v", s, r)
		}
	})
}

func FuzzParseDigest(f *testing.F) {
	f.Add("sha256:" + strings.Repeat("0", 64))
	f.Add(strings.Repeat("F", 64))
	f.Add("sha256:")
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 1<<16 { // per-input cost bound
			return
		}
		d, err := ParseDigest(s)
		if err != nil {
			return
		}
		if again, err := ParseDigest(string(d)); err != nil || again != d {
			t.Fatalf("ParseDigest(%q) = %q, not canonical: %q, %v", s, d, again, err)
		}
		if len(d.Hex()) != 64 || strings.ContainsAny(d.Hex(), "/\\.") {
			t.Fatalf("ParseDigest(%q) = %q", s, d)
		}
	})
}
