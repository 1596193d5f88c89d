//go:build !(darwin && arm64)

package metal

import (
	"fmt"
	"runtime"
)

// OpenDevice opens the Metal device: only darwin/arm64 builds have the
// backend (Apple Silicon; an amd64 build under Rosetta reports why).
func OpenDevice() (Backend, error) {
	if runtime.GOOS != "darwin" {
		return nil, fmt.Errorf("%w: %s", ErrUnavailable, ReasonNotMacOS)
	}
	return nil, fmt.Errorf("%w: %s", ErrUnavailable, ReasonNotArm64)
}
