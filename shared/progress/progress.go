// Package progress draws progress bars for long transfers and jobs on a
// terminal, or prints periodic plain lines when the output is not one (a
// log file, a CI console), so that the same code serves both.
//
// A Bar is safe for concurrent use. Updates are cheap: the bar redraws at
// most once per interval (and always on Finish), so callers may report every
// chunk. A nil *Bar, or one made with WithQuiet, draws nothing.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Units the Bar formats specially; any other unit is printed as a count.
const (
	UnitBytes = "bytes"
)

// Defaults of the redraw intervals.
const (
	DefaultTerminalInterval = 100 * time.Millisecond
	DefaultPlainInterval    = 2 * time.Second
	defaultWidth            = 30
)

// Option configures a Bar.
type Option func(*config)

type config struct {
	terminal *bool
	interval time.Duration
	width    int
	quiet    bool
	now      func() time.Time
}

// WithTerminal forces terminal (true: redraw one line with \r) or plain
// (false: a full line per interval) output instead of detecting it.
func WithTerminal(on bool) Option { return func(c *config) { c.terminal = &on } }

// WithInterval sets the least time between two redraws.
func WithInterval(d time.Duration) Option { return func(c *config) { c.interval = d } }

// WithWidth sets the width of the bar itself in characters (default 30).
func WithWidth(n int) Option { return func(c *config) { c.width = n } }

// WithQuiet makes the Bar draw nothing.
func WithQuiet(q bool) Option { return func(c *config) { c.quiet = q } }

// WithClock replaces time.Now (for tests).
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// IsTerminal reports whether w is a character device such as a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Bar shows the progress of one task at a time; Start begins the next.
type Bar struct {
	mu       sync.Mutex
	w        io.Writer
	cfg      config
	term     bool
	label    string
	unit     string
	msg      string
	total    int64
	done     int64
	start    time.Time
	last     time.Time
	active   bool // a task was started
	drawn    bool // a line (terminal) is open and needs ending
	lastLen  int
	finished bool
}

// New returns a Bar writing to w (usually os.Stderr).
func New(w io.Writer, opts ...Option) *Bar {
	c := config{width: defaultWidth, now: time.Now}
	for _, o := range opts {
		o(&c)
	}
	if c.width <= 0 {
		c.width = defaultWidth
	}
	term := IsTerminal(w)
	if c.terminal != nil {
		term = *c.terminal
	}
	if c.interval <= 0 {
		c.interval = DefaultPlainInterval
		if term {
			c.interval = DefaultTerminalInterval
		}
	}
	if w == nil {
		c.quiet = true
	}
	return &Bar{w: w, cfg: c, term: term}
}

// Start begins a task: label names it, total is its size in unit (0 when
// unknown). A task still open is finished first.
func (b *Bar) Start(label string, total int64, unit string) {
	if b == nil || b.cfg.quiet {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.active && !b.finished {
		b.drawLocked(b.cfg.now()) // the previous task's final state
		b.endLocked()
	}
	b.active = true
	now := b.cfg.now()
	b.label, b.total, b.unit, b.msg = label, total, unit, ""
	b.done, b.start, b.last = 0, now, time.Time{}
	b.finished, b.drawn, b.lastLen = false, false, 0
}

// Set records that done units of the task are complete and redraws when the
// interval has passed.
func (b *Bar) Set(done int64) { b.update(func() { b.done = done }) }

// Add records n more units done.
func (b *Bar) Add(n int64) { b.update(func() { b.done += n }) }

// SetTotal changes the task's size (e.g. once a job learns it).
func (b *Bar) SetTotal(total int64) { b.update(func() { b.total = total }) }

// Message sets a short detail shown after the numbers (e.g. the phase).
func (b *Bar) Message(s string) { b.update(func() { b.msg = s }) }

func (b *Bar) update(fn func()) {
	if b == nil || b.cfg.quiet {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.active || b.finished {
		return // no task: nothing to draw
	}
	fn()
	now := b.cfg.now()
	if !b.last.IsZero() && now.Sub(b.last) < b.cfg.interval {
		return
	}
	if b.last.IsZero() && !b.term && now.Sub(b.start) < b.cfg.interval {
		return // plain output: quick tasks print only their final line
	}
	b.last = now
	b.drawLocked(now)
}

// Finish draws the task's final state and ends its line.
func (b *Bar) Finish() {
	if b == nil || b.cfg.quiet {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.active || b.finished {
		return
	}
	b.drawLocked(b.cfg.now())
	b.endLocked()
}

func (b *Bar) endLocked() {
	if b.term && b.drawn {
		fmt.Fprintln(b.w)
	}
	b.finished = true
}

func (b *Bar) drawLocked(now time.Time) {
	line := b.render(now)
	if !b.term {
		fmt.Fprintln(b.w, line)
		return
	}
	pad := ""
	if n := b.lastLen - len(line); n > 0 {
		pad = strings.Repeat(" ", n) // erase the tail of a longer previous line
	}
	fmt.Fprintf(b.w, "\r%s%s", line, pad)
	b.lastLen = len(line)
	b.drawn = true
}

// render formats "label [====>    ]  45% 12.0 MiB/27.0 MiB 3.0 MiB/s ETA 5s msg".
func (b *Bar) render(now time.Time) string {
	var s strings.Builder
	s.WriteString(b.label)
	elapsed := now.Sub(b.start).Seconds()
	if b.total > 0 {
		frac := min(max(float64(b.done)/float64(b.total), 0), 1)
		if b.term {
			fill := int(frac * float64(b.cfg.width))
			s.WriteString(" [")
			s.WriteString(strings.Repeat("=", fill))
			if fill < b.cfg.width {
				s.WriteString(">")
				s.WriteString(strings.Repeat(" ", b.cfg.width-fill-1))
			}
			s.WriteString("]")
		}
		fmt.Fprintf(&s, " %3.0f%% %s/%s", frac*100, b.amount(b.done), b.amount(b.total))
	} else {
		fmt.Fprintf(&s, " %s", b.amount(b.done))
	}
	if elapsed > 0 && b.done > 0 {
		rate := float64(b.done) / elapsed
		fmt.Fprintf(&s, " %s/s", b.amount(int64(rate)))
		if b.total > b.done && rate > 0 {
			eta := time.Duration(float64(b.total-b.done) / rate * float64(time.Second))
			fmt.Fprintf(&s, " ETA %s", eta.Round(time.Second))
		}
	}
	if b.msg != "" {
		s.WriteString(" ")
		s.WriteString(b.msg)
	}
	return s.String()
}

func (b *Bar) amount(n int64) string {
	if b.unit == UnitBytes {
		return FormatBytes(n)
	}
	if b.unit == "" {
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("%d %s", n, b.unit)
}

// FormatBytes formats n bytes with a binary unit: "512 B", "1.5 KiB", "3.0 MiB".
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		v /= unit
		if v < unit && v > -unit || u == "TiB" {
			return fmt.Sprintf("%.1f %s", v, u)
		}
	}
	return fmt.Sprintf("%d B", n)
}
