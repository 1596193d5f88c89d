//go:build race

package kernels

// raceBuild shrinks the tests under the race detector, which slows the generic
// reference kernel by an order of magnitude.
const raceBuild = true
