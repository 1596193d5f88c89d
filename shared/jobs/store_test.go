package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "jobs.db")
	s, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	type rec struct{ N int }
	for i, id := range []string{"b", "a", "c"} {
		if err := s.Put(id, rec{i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put("a", rec{7}); err != nil { // replaces
		t.Fatal(err)
	}
	if err := s.Delete("c", "missing"); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStore(path); err == nil {
		t.Fatal("second open of a held store: got no error, want it locked")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []string
	err = s.Each(func(id string, b []byte) error {
		var r rec
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		got = append(got, fmt.Sprintf("%s=%d", id, r.N))
		return nil
	})
	if want := []string{"a=7", "b=0"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("after reopening: got %v, %v; want %v", got, err, want)
	}
	if !s.Has("a") || s.Has("c") {
		t.Errorf("Has(a), Has(c): got %v, %v; want true, false", s.Has("a"), s.Has("c"))
	}
	stop := errors.New("stop")
	if err := s.Each(func(string, []byte) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("Each with an error: got %v, want it back", err)
	}
}

func TestSavedError(t *testing.T) {
	kinds := append(SavedKinds(), ErrorKind{"mine", errMine})
	tests := []struct {
		name string
		err  error
		want error // the kind the restored error wraps; nil: none
	}{
		{"invalid", fmt.Errorf("bad steps: %w", ErrInvalid), ErrInvalid},
		{"service kind", fmt.Errorf("x: %w", errMine), errMine},
		{"cancel", fmt.Errorf("cancelled by request: %w", context.Canceled), context.Canceled},
		{"no kind", errors.New("plain"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := json.Marshal(SaveError(tt.err, kinds))
			var s *SavedError
			if err := json.Unmarshal(b, &s); err != nil {
				t.Fatal(err)
			}
			got := s.Restore(kinds)
			if got.Error() != tt.err.Error() {
				t.Errorf("got message %q, want %q", got, tt.err)
			}
			if tt.want != nil && !errors.Is(got, tt.want) {
				t.Errorf("got %v, want it to wrap %v", got, tt.want)
			}
		})
	}
	if SaveError(nil, kinds) != nil || (*SavedError)(nil).Restore(kinds) != nil {
		t.Error("nil error: got a saved or restored error, want nil")
	}
}

var errMine = errors.New("mine")

func TestTableExpire(t *testing.T) {
	tb := NewTable[*rec](errInvalid)
	fill(tb, 5) // j1, j3, j5 finished
	var forgot []string
	tb.Expire(func(r *rec) bool { return r.id != "j5" }, func(r *rec) { forgot = append(forgot, r.id) })
	if want := []string{"j1", "j3"}; !slices.Equal(forgot, want) {
		t.Errorf("expired %v, want %v (finished and old)", forgot, want)
	}
	if got := ids(tb.All()); !slices.Equal(got, []string{"j2", "j4", "j5"}) {
		t.Errorf("left %v, want [j2 j4 j5]", got)
	}
	if _, ok := tb.ByKey("k3"); ok {
		t.Error("ByKey(k3) after expiry: found, want gone")
	}
}

func TestWorkersEvery(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	w := NewWorkers()
	ticks := make(chan struct{}, 10)
	w.Every(ctx, time.Millisecond, func() {
		select {
		case ticks <- struct{}{}:
		default:
		}
	})
	for range 2 {
		select {
		case <-ticks:
		case <-time.After(5 * time.Second):
			t.Fatal("got no tick within 5 s")
		}
	}
	cancel()
	w.Wait() // returns: Every stopped with the context
}

func TestStateProto(t *testing.T) {
	for s := StateQueued; s <= StateCancelled; s++ {
		got, err := StateFromPB(StateToPB(s))
		if err != nil || got != s {
			t.Errorf("%v: round trip got %v, %v", s, got, err)
		}
	}
	if got := StateToPB(0); got != 0 {
		t.Errorf("StateToPB(0): got %v, want UNSPECIFIED", got)
	}
	if got, err := StateFromPB(0); got != 0 || err != nil {
		t.Errorf("StateFromPB(UNSPECIFIED): got %v, %v; want 0 (no filter)", got, err)
	}
	if _, err := StateFromPB(99); !errors.Is(err, ErrInvalid) {
		t.Errorf("StateFromPB(99): got %v, want ErrInvalid", err)
	}
}

// BenchmarkStorePut is the cost of one durable save (a bbolt transaction
// with its fsync) of a job record the size of a finished quantize job's.
func BenchmarkStorePut(b *testing.B) {
	s, err := OpenStore(filepath.Join(b.TempDir(), "jobs.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rec := struct {
		Log []string
	}{Log: make([]string, 200)}
	for i := range rec.Log {
		rec.Log[i] = fmt.Sprintf("line %d of a job's log, about as long as a real one", i)
	}
	b.ResetTimer()
	for i := range b.N {
		if err := s.Put(fmt.Sprintf("qj-%d", i%16), rec); err != nil {
			b.Fatal(err)
		}
	}
}

// TestLoadSkipsUnreadable: Load returns the records decode accepts, sorted
// by seq, and leaves the others out (still stored) instead of failing.
func TestLoadSkipsUnreadable(t *testing.T) {
	type rec struct{ Seq uint64 }
	s, err := OpenStore(filepath.Join(t.TempDir(), "jobs.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for id, v := range map[string]any{"a": rec{3}, "b": rec{1}, "bad": "not a record", "c": rec{2}} {
		if err := s.Put(id, v); err != nil {
			t.Fatal(err)
		}
	}
	decode := func(b []byte, id string) (rec, error) {
		var r rec
		if err := json.Unmarshal(b, &r); err != nil {
			return r, fmt.Errorf("record %s: %w", id, err)
		}
		return r, nil
	}
	got, err := Load(s, zap.NewNop(), decode, func(r rec) uint64 { return r.Seq })
	if err != nil {
		t.Fatal(err)
	}
	if want := []rec{{1}, {2}, {3}}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if !s.Has("bad") {
		t.Error("the unreadable record was removed, want it kept for an operator")
	}
}
