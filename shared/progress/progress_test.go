package progress

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock advances by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func newTestBar(term bool) (*Bar, *bytes.Buffer, *fakeClock) {
	var buf bytes.Buffer
	clk := &fakeClock{now: time.Unix(1000, 0)}
	return New(&buf, WithTerminal(term), WithClock(clk.Now), WithWidth(10)), &buf, clk
}

func TestPlainLines(t *testing.T) {
	b, buf, clk := newTestBar(false)
	b.Start("upload m.gguf", 4<<20, UnitBytes)
	b.Set(1 << 20) // before the first interval: nothing
	if buf.Len() != 0 {
		t.Fatalf("got %q before the interval, want nothing", buf.String())
	}
	clk.Add(2 * time.Second)
	b.Set(2 << 20)
	clk.Add(time.Second)
	b.Set(3 << 20) // within the interval: no line
	clk.Add(time.Second)
	b.Set(4 << 20)
	b.Finish()
	b.Finish() // idempotent
	want := "upload m.gguf  50% 2.0 MiB/4.0 MiB 1.0 MiB/s ETA 2s\n" +
		"upload m.gguf 100% 4.0 MiB/4.0 MiB 1.0 MiB/s\n" +
		"upload m.gguf 100% 4.0 MiB/4.0 MiB 1.0 MiB/s\n"
	if buf.String() != want {
		t.Errorf("got\n%q\nwant\n%q", buf.String(), want)
	}
}

func TestTerminalRedraws(t *testing.T) {
	b, buf, clk := newTestBar(true)
	b.Start("job", 4, "tensors")
	b.Set(1)
	clk.Add(time.Second)
	b.Set(2)
	b.Message("blk.1")
	clk.Add(time.Second)
	b.Start("next", 0, "") // finishes "job" first
	b.Finish()
	got := buf.String()
	for _, want := range []string{
		"\rjob [==>       ]  25% 1 tensors/4 tensors\r", // the first update draws at once
		"\rjob [=====>    ]  50% 2 tensors/4 tensors 2 tensors/s ETA 1s\r",
		"\rjob [=====>    ]  50% 2 tensors/4 tensors 1 tensors/s ETA 2s blk.1\n", // Start draws the final state
		"\rnext 0\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output %q lacks %q", got, want)
		}
	}
}

func TestQuietAndNil(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, WithQuiet(true))
	b.Start("x", 10, UnitBytes)
	b.Set(10)
	b.Finish()
	var nilBar *Bar
	nilBar.Start("x", 1, "")
	nilBar.Add(1)
	nilBar.Finish()
	if buf.Len() != 0 {
		t.Errorf("got %q, want nothing", buf.String())
	}
	// Updates without a task draw nothing.
	b2, buf2, _ := newTestBar(true)
	b2.Set(5)
	b2.Finish()
	if buf2.Len() != 0 {
		t.Errorf("got %q without a task, want nothing", buf2.String())
	}
}

func TestConcurrentUpdates(t *testing.T) {
	b := New(&bytes.Buffer{}, WithTerminal(true), WithInterval(time.Nanosecond))
	b.Start("x", 1000, UnitBytes)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 250 {
				b.Add(1)
			}
		}()
	}
	wg.Wait()
	b.Finish()
	if b.done != 1000 {
		t.Errorf("got %d done, want 1000", b.done)
	}
}

func TestFormatBytes(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"}, {5 << 20, "5.0 MiB"}, {3 << 30, "3.0 GiB"}, {1 << 50, "1024.0 TiB"},
	} {
		if got := FormatBytes(tt.n); got != tt.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestIsTerminal(t *testing.T) {
	if IsTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is not a terminal")
	}
}
