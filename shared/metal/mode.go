package metal

import (
	"fmt"
	"strings"
)

// Mode says whether a process uses the GPU: the --metal setting
// (BITNET_METAL).
type Mode string

// The modes.
const (
	// ModeAuto opens and self-tests the GPU where there is one and uses
	// it when that passes; otherwise the CPU serves, and the reason is
	// reported. The default.
	ModeAuto Mode = "auto"
	// ModeOn requires the GPU: start fails when it cannot be used.
	ModeOn Mode = "on"
	// ModeOff never opens the GPU.
	ModeOff Mode = "off"
)

// ReasonOff is the Info.Reason of ModeOff.
const ReasonOff = "metal off (--metal off)"

// ParseMode parses "auto", "on" or "off" ("" is auto).
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case "":
		return ModeAuto, nil
	case ModeAuto, ModeOn, ModeOff:
		return m, nil
	}
	return "", fmt.Errorf("metal: unknown mode %q (want auto, on or off)", s)
}

// Start opens the GPU as mode asks (Open: compile and self-test) and
// reports what a node advertises about it. Without a usable GPU it returns
// a nil GPU and the reason in Info, and an error only for ModeOn.
func Start(mode Mode) (*GPU, Info, error) {
	m, err := ParseMode(string(mode))
	if err != nil {
		return nil, Info{}, err
	}
	if m == ModeOff {
		i := Probe()
		i.Reason = ReasonOff
		return nil, i, nil
	}
	g, err := Open()
	if err != nil {
		if m == ModeOn {
			return nil, Unavailable(err), fmt.Errorf("metal required (--metal on): %w", err)
		}
		return nil, Unavailable(err), nil
	}
	return g, g.Info(), nil
}
