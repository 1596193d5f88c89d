package router

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery"
)

// PublishMeta is the node side of NodeMeta: every interval it reads the
// node's state and, when the Meta differs from what was last published,
// writes it to instance id with reg.UpdateMeta, so the router sees loaded
// models and load within about one interval. It blocks until ctx is done
// (the caller runs it in a goroutine it owns) and returns nil then; it
// fails at once on a bad interval. A failed update is retried at the next
// tick (the instance may be re-registering).
func PublishMeta(ctx context.Context, reg discovery.Registry, id string, interval time.Duration, read func() NodeMeta) error {
	if interval <= 0 {
		return fmt.Errorf("router: publish meta of %q: interval %v, want positive", id, interval)
	}
	if reg == nil || read == nil {
		return errors.New("router: publish meta: nil registry or read func")
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var last map[string]string
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		meta := read().Meta()
		if last != nil && maps.Equal(meta, last) {
			continue
		}
		if err := reg.UpdateMeta(ctx, id, meta); err == nil {
			last = meta
		}
	}
}
