// Package docs holds the project's documentation (Markdown) and the test
// that keeps architecture.md current: every Go package directory under
// cmd/, services/, shared/, tools/ and sdk/ has a row in its package table.
// The package has no code outside its tests.
package docs
