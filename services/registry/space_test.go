package registry

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"
)

// TestQuota: an upload that would take the store past its quota is
// refused before a byte is written (ErrNoSpace, RESOURCE_EXHAUSTED); an
// idle upload holding the space is reclaimed when space is short, and
// PutBlob stops at the quota too.
func TestQuota(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	s := openStore(t, t.TempDir(), WithQuota(1000), WithMinFreeBytes(-1), WithClock(clock.Now))
	a, b := randomBytes(600, 1), randomBytes(600, 2)
	ua, err := s.BeginUpload(ctx, digestOf(a), int64(len(a)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteChunk(ctx, ua.ID, 0, a[:100]); err != nil {
		t.Fatal(err)
	}
	// a reserves 600 of 1000: b does not fit while a is being written.
	_, err = s.BeginUpload(ctx, digestOf(b), int64(len(b)))
	wantErr(t, "BeginUpload past the quota", err, ErrNoSpace)
	// Resuming a does not need new room.
	if again, err := s.BeginUpload(ctx, digestOf(a), int64(len(a))); err != nil || again.ID != ua.ID {
		t.Fatalf("resume within the quota: got %+v, %v", again, err)
	}
	// Once a's push is abandoned (idle past pressureIdle), b takes its place.
	clock.Advance(pressureIdle + time.Second)
	ub, err := s.BeginUpload(ctx, digestOf(b), int64(len(b)))
	if err != nil {
		t.Fatalf("BeginUpload after an idle upload: %v", err)
	}
	if _, err := os.Stat(s.uploadPath(ua.ID)); !os.IsNotExist(err) {
		t.Errorf("the reclaimed upload's bytes are still on disk (%v)", err)
	}
	if _, err := s.WriteChunk(ctx, ub.ID, 0, b); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitUpload(ctx, ub.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.PutBlob(ctx, bytes.NewReader(randomBytes(500, 3)), "")
	wantErr(t, "PutBlob past the quota", err, ErrNoSpace)
	if _, err := s.PutBlob(ctx, bytes.NewReader(randomBytes(300, 4)), ""); err != nil {
		t.Errorf("PutBlob within the quota: %v", err)
	}
	u, err := s.Usage(ctx)
	if err != nil || u.BlobBytes != 900 || u.UploadBytes != 0 {
		t.Errorf("Usage: got %+v, %v; want 900 blob bytes and no upload", u, err)
	}
}

// TestFreeSpaceFloor: uploads that would leave less free space than the
// floor are refused before they write (a floor above what is free stands
// in for a full disk).
func TestFreeSpaceFloor(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir(), WithMinFreeBytes(1<<62))
	data := randomBytes(100, 5)
	_, err := s.BeginUpload(ctx, digestOf(data), int64(len(data)))
	wantErr(t, "BeginUpload under the floor", err, ErrNoSpace)
	_, err = s.PutBlob(ctx, bytes.NewReader(data), "")
	wantErr(t, "PutBlob under the floor", err, ErrNoSpace)
}
