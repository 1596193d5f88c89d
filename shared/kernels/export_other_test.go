//go:build !amd64

package kernels

// maxTileColsForTest is a long row for TestHugeK off amd64.
const maxTileColsForTest = 1 << 22
