package sampling

import "strings"

// StopMatcher finds stop strings in streamed text. Text that could be the
// start of a stop string is held back until it is known not to be one, so
// the caller never shows a partial stop string. Not safe for concurrent use.
type StopMatcher struct {
	stops []string
	held  string
}

// NewStopMatcher returns a matcher for the non-empty stops.
func NewStopMatcher(stops ...string) *StopMatcher {
	m := &StopMatcher{}
	for _, s := range stops {
		if s != "" {
			m.stops = append(m.stops, s)
		}
	}
	return m
}

// Push adds streamed text. It returns the text that is safe to emit and
// whether a stop string was found; on a stop, emit ends right before it and
// everything after it is dropped.
func (m *StopMatcher) Push(text string) (emit string, stop bool) {
	buf := m.held + text
	if len(m.stops) == 0 {
		m.held = ""
		return buf, false
	}
	first := -1
	for _, s := range m.stops {
		if i := strings.Index(buf, s); i >= 0 && (first < 0 || i < first) {
			first = i
		}
	}
	if first >= 0 {
		m.held = ""
		return buf[:first], true
	}
	keep := 0
	for _, s := range m.stops {
		// The longest suffix of buf that is a proper prefix of s.
		for n := min(len(s)-1, len(buf)); n > keep; n-- {
			if strings.HasSuffix(buf, s[:n]) {
				keep = n
				break
			}
		}
	}
	m.held = buf[len(buf)-keep:]
	return buf[:len(buf)-keep], false
}

// Flush returns the held-back text at the end of a stream (it did not become
// a stop string) and resets the matcher.
func (m *StopMatcher) Flush() string {
	h := m.held
	m.held = ""
	return h
}
