package artifact

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits on names and metadata.
const (
	MaxNameLen       = 64  // model and alias names
	MaxLabelLen      = 64  // label keys and values
	MaxLabels        = 64  // labels per model or version
	MaxPathLen       = 255 // version file paths
	MaxFiles         = 256 // files per version
	MaxTextLen       = 4096
	MaxConfigJSONLen = 1 << 20
)

// ValidateName checks a model name: 1-64 characters from [a-z0-9._-],
// starting with a letter or digit. Such a name can never be a path
// component like "." or "..", nor contain a separator.
func ValidateName(name string) error {
	if err := checkName(name); err != nil {
		return invalidf("model name %q: %v", name, err)
	}
	return nil
}

// ValidateAlias checks an alias: the rules of ValidateName, and not all
// digits (so `name:3` never looks like a version).
func ValidateAlias(alias string) error {
	if err := checkName(alias); err != nil {
		return invalidf("alias %q: %v", alias, err)
	}
	if _, err := strconv.ParseUint(alias, 10, 64); err == nil {
		return invalidf("alias %q: must not be a number", alias)
	}
	return nil
}

func checkName(s string) error {
	if s == "" {
		return fmt.Errorf("empty")
	}
	if len(s) > MaxNameLen {
		return fmt.Errorf("%d characters, at most %d", len(s), MaxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return fmt.Errorf("character %q at %d: want [a-z0-9] first, then [a-z0-9._-]", c, i)
		}
	}
	return nil
}

// Digest is a blob address in canonical form: "sha256:" and 64 lower-case
// hex characters.
type Digest string

const digestPrefix = "sha256:"

// ParseDigest accepts "sha256:<64 hex>" or the bare 64 hex characters (the
// API's form), in either case, and returns the canonical Digest.
func ParseDigest(s string) (Digest, error) {
	h := strings.TrimPrefix(s, digestPrefix)
	if len(h) != 64 {
		return "", invalidf("digest %q: want sha256:<64 hex characters>", s)
	}
	h = strings.ToLower(h)
	if _, err := hex.DecodeString(h); err != nil {
		return "", invalidf("digest %q: want sha256:<64 hex characters>", s)
	}
	return Digest(digestPrefix + h), nil
}

// Hex returns the 64 hex characters of d.
func (d Digest) Hex() string { return strings.TrimPrefix(string(d), digestPrefix) }

// String returns d in canonical form.
func (d Digest) String() string { return string(d) }

// ValidatePath checks a file path inside a version: slash-separated, relative,
// at most 255 bytes of printable UTF-8, no empty, "." or ".." segments and no
// backslashes (so it can be joined under a directory safely on any OS).
func ValidatePath(p string) error {
	bad := func(why string) error { return invalidf("file path %q: %s", p, why) }
	switch {
	case p == "":
		return bad("empty")
	case len(p) > MaxPathLen:
		return bad(fmt.Sprintf("%d bytes, at most %d", len(p), MaxPathLen))
	case !utf8.ValidString(p):
		return bad("not UTF-8")
	case strings.ContainsAny(p, "\\:"):
		return bad(`contains "\" or ":"`)
	case strings.HasPrefix(p, "/"):
		return bad("absolute")
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return bad("control character")
		}
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return bad(fmt.Sprintf("segment %q", seg))
		}
	}
	return nil
}

// Ref is a parsed model reference: `name` (the latest version), `name@N` or
// `name:alias`. At most one of Version and Alias is set.
type Ref struct {
	Name    string
	Version uint32 // 0: not given
	Alias   string // "": not given
}

// ParseRef parses `name`, `name@N` (N >= 1, decimal, no sign or leading
// zeros) or `name:alias`, validating each part.
func ParseRef(s string) (Ref, error) {
	if i := strings.IndexAny(s, "@:"); i >= 0 {
		name, rest := s[:i], s[i+1:]
		if err := ValidateName(name); err != nil {
			return Ref{}, fmt.Errorf("reference %q: %w", s, err)
		}
		if s[i] == ':' {
			if err := ValidateAlias(rest); err != nil {
				return Ref{}, fmt.Errorf("reference %q: %w", s, err)
			}
			return Ref{Name: name, Alias: rest}, nil
		}
		n, err := strconv.ParseUint(rest, 10, 32)
		if err != nil || n == 0 || rest[0] == '0' || rest[0] == '+' {
			return Ref{}, invalidf("reference %q: version %q: want a number from 1 to %d", s, rest, uint32(1<<32-1))
		}
		return Ref{Name: name, Version: uint32(n)}, nil
	}
	if err := ValidateName(s); err != nil {
		return Ref{}, fmt.Errorf("reference %q: %w", s, err)
	}
	return Ref{Name: s}, nil
}

// String formats r as ParseRef reads it; a resolved reference with both a
// version and an alias prints the version.
func (r Ref) String() string {
	switch {
	case r.Version != 0:
		return r.Name + "@" + strconv.FormatUint(uint64(r.Version), 10)
	case r.Alias != "":
		return r.Name + ":" + r.Alias
	}
	return r.Name
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, ErrInvalid)...)
}
