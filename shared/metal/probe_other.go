//go:build !darwin

package metal

// probe: Metal exists only on Apple platforms.
func probe() Info { return Info{Reason: ReasonNotMacOS} }
