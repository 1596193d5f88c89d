package trainer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/jobs"
)

// TestRetention: a finished job older than the retention is forgotten with
// its record and directory, at the next job and after a restart.
func TestRetention(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	e := newEnv(t, WithRetention(time.Hour), WithClock(clock))
	req := e.domainRequest(t, 2)
	req.Dataset = Dataset{Text: strings.Repeat("some text to train on. ", 30)}
	old := e.runDomain(t, req)
	kept := e.runDomain(t, req)
	if old.State != jobs.StateSucceeded || kept.State != jobs.StateSucceeded {
		t.Fatalf("got %v (%v) and %v (%v), want both succeeded", old.State, old.Err, kept.State, kept.Err)
	}
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	fresh := e.runDomain(t, req) // its end expires the two others
	ctx := context.Background()
	for _, id := range []string{old.ID, kept.ID} {
		if _, err := e.tr.Get(ctx, id); !errors.Is(err, jobs.ErrNotFound) {
			t.Errorf("job %s ended 2 h ago with a 1 h retention: got %v, want NotFound", id, err)
		}
		if _, err := os.Stat(filepath.Join(e.workDir, jobsDir, id)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("directory of expired job %s: got %v, want it removed", id, err)
		}
	}
	e.stopSrv()
	e.start(t, WithRetention(time.Hour), WithClock(clock))
	list, _, err := e.tr.List(ctx, ListOptions{})
	if err != nil || len(list) != 1 || list[0].ID != fresh.ID {
		t.Errorf("after a restart: got %d jobs, %v; want the fresh one only", len(list), err)
	}
}
