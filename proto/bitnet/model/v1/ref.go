// Package modelv1 holds the messages shared by the bitnet APIs (model.proto:
// model references, hardware, provenance, usage and job accounting) and,
// hand-written in this file, the text form of ModelRef, shared by the
// registry, the router, the SDK and the CLI so that they accept the same
// references.
package modelv1

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalidRef is wrapped by the errors of ParseRef, CheckName and
// CheckAlias: servers answer it with INVALID_ARGUMENT.
var ErrInvalidRef = errors.New("invalid model reference")

// MaxNameLen is the longest model or alias name.
const MaxNameLen = 64

// CheckName reports whether s may name a model: 1 to MaxNameLen characters
// from [a-z0-9._-], the first a letter or digit. Such a name is safe as a
// file name (no separators, not "." or "..").
func CheckName(s string) error {
	if s == "" || len(s) > MaxNameLen {
		return fmt.Errorf("name %q: length %d, want 1 to %d: %w", clip(s), len(s), MaxNameLen, ErrInvalidRef)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return fmt.Errorf("name %q: character %q at %d, want [a-z0-9._-] starting with a letter or digit: %w",
				clip(s), c, i, ErrInvalidRef)
		}
	}
	return nil
}

// CheckAlias reports whether s may name an alias: a valid name (CheckName)
// that is not all digits, so that it cannot be taken for a version number.
func CheckAlias(s string) error {
	if err := CheckName(s); err != nil {
		return fmt.Errorf("alias: %w", err)
	}
	if strings.Trim(s, "0123456789") == "" {
		return fmt.Errorf("alias %q: all digits (a version number?): %w", s, ErrInvalidRef)
	}
	return nil
}

// ParseRef parses a reference's text form: NAME (the latest version), NAME@N
// (version N >= 1, decimal without sign or leading zeros) or NAME:ALIAS.
func ParseRef(s string) (*ModelRef, error) {
	if i := strings.IndexByte(s, '@'); i >= 0 {
		name, v := s[:i], s[i+1:]
		if err := CheckName(name); err != nil {
			return nil, fmt.Errorf("model ref %q: %w", clip(s), err)
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 || v[0] == '0' {
			return nil, fmt.Errorf("model ref %q: version %q, want a number from 1 to %d: %w",
				clip(s), clip(v), uint32(1<<32-1), ErrInvalidRef)
		}
		return &ModelRef{Name: name, Version: uint32(n)}, nil
	}
	if i := strings.IndexByte(s, ':'); i >= 0 {
		name, alias := s[:i], s[i+1:]
		if err := CheckName(name); err != nil {
			return nil, fmt.Errorf("model ref %q: %w", clip(s), err)
		}
		if err := CheckAlias(alias); err != nil {
			return nil, fmt.Errorf("model ref %q: %w", clip(s), err)
		}
		return &ModelRef{Name: name, Alias: alias}, nil
	}
	if err := CheckName(s); err != nil {
		return nil, fmt.Errorf("model ref: %w", err)
	}
	return &ModelRef{Name: s}, nil
}

// Text returns the reference's text form, the inverse of ParseRef: NAME@N
// when the version is set (also in a resolved reference that carries its
// alias), else NAME:ALIAS when the alias is, else NAME. A nil reference
// gives "".
func (x *ModelRef) Text() string {
	switch {
	case x == nil:
		return ""
	case x.GetVersion() != 0:
		return x.GetName() + "@" + strconv.FormatUint(uint64(x.GetVersion()), 10)
	case x.GetAlias() != "":
		return x.GetName() + ":" + x.GetAlias()
	}
	return x.GetName()
}

// clip shortens user input quoted in errors.
func clip(s string) string {
	if len(s) > 2*MaxNameLen {
		return s[:2*MaxNameLen] + "..."
	}
	return s
}
