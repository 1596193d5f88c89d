package auth

import (
	"context"
	"testing"
	"time"
)

// BenchmarkLookup is the per-call cost of checking a key: parse, one
// SHA-256 of the 32-byte secret, a map lookup and a constant-time compare.
func BenchmarkLookup(b *testing.B) {
	src := newMemSource()
	for i := range 1000 {
		src.add(b, "k"+string(rune('a'+i%26))+string(rune('a'+i/26)), Scopes{ScopeRead}, Limits{}, time.Time{})
	}
	key := src.add(b, "bench", Scopes{ScopeRead}, Limits{}, time.Time{})
	tab := newSyncedTable(b, src)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tab.Lookup(ctx, key); err != nil {
			b.Fatal(err)
		}
	}
}
