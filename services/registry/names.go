package registry

import (
	"fmt"
	"unicode/utf8"

	"github.com/bitnet-mesh/bitnet-mesh/shared/artifact"
)

// Limits on names and metadata (package artifact's).
const (
	MaxNameLen       = artifact.MaxNameLen
	MaxLabelLen      = artifact.MaxLabelLen
	MaxLabels        = artifact.MaxLabels
	MaxPathLen       = artifact.MaxPathLen
	MaxFiles         = artifact.MaxFiles
	MaxTextLen       = artifact.MaxTextLen
	MaxConfigJSONLen = artifact.MaxConfigJSONLen
)

// The registry's vocabulary lives in package artifact, which the services
// that produce and consume models share without importing the registry;
// these names keep the registry's API whole.
type (
	// Digest is artifact.Digest.
	Digest = artifact.Digest
	// Ref is artifact.Ref.
	Ref = artifact.Ref
)

const digestPrefix = "sha256:"

// ValidateName is artifact.ValidateName.
func ValidateName(name string) error { return artifact.ValidateName(name) }

// ValidateAlias is artifact.ValidateAlias.
func ValidateAlias(alias string) error { return artifact.ValidateAlias(alias) }

// ParseDigest is artifact.ParseDigest.
func ParseDigest(s string) (Digest, error) { return artifact.ParseDigest(s) }

// ValidatePath is artifact.ValidatePath.
func ValidatePath(p string) error { return artifact.ValidatePath(p) }

// ParseRef is artifact.ParseRef.
func ParseRef(s string) (Ref, error) { return artifact.ParseRef(s) }

func validateLabels(what string, labels map[string]string) error {
	if len(labels) > MaxLabels {
		return invalidf("%s: %d labels, at most %d", what, len(labels), MaxLabels)
	}
	for k, v := range labels {
		if err := checkLabelKey(k); err != nil {
			return invalidf("%s: label key %q: %v", what, k, err)
		}
		if utf8.RuneCountInString(v) > MaxLabelLen || !utf8.ValidString(v) {
			return invalidf("%s: label %q: value must be UTF-8, at most %d characters", what, k, MaxLabelLen)
		}
	}
	return nil
}

func checkLabelKey(k string) error {
	if k == "" || len(k) > MaxLabelLen {
		return fmt.Errorf("want 1-%d characters", MaxLabelLen)
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '/') {
			return fmt.Errorf("character %q at %d: want [A-Za-z0-9._/-]", c, i)
		}
	}
	return nil
}

func validateText(what, s string, max int) error {
	if len(s) > max || !utf8.ValidString(s) {
		return invalidf("%s: must be UTF-8, at most %d bytes", what, max)
	}
	return nil
}
