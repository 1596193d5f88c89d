package train

import (
	"fmt"
	"math"
)

// Schedule names.
const (
	ScheduleCosine   = "cosine"
	ScheduleTwoStage = "two-stage"
)

// Schedule gives the learning rate and weight decay of each optimiser step.
type Schedule struct {
	Kind        string  // ScheduleCosine or ScheduleTwoStage
	Steps       int     // total optimiser steps
	PeakLR      float64 // learning rate after warmup
	WarmupFrac  float64 // share of Steps spent warming up linearly from 0
	MinLRFrac   float64 // final learning rate as a share of PeakLR
	WeightDecay float64 // weight decay (of stage 1 for two-stage)
	// Two-stage only (BitNet b1.58 recipe): stage 1 decays linearly from
	// PeakLR to Stage1EndFrac*PeakLR until SplitFrac of the steps; stage 2
	// restarts at Stage2StartFrac*PeakLR and decays linearly to
	// MinLRFrac*PeakLR, with weight decay 0.
	SplitFrac, Stage1EndFrac, Stage2StartFrac float64
}

// defaults fills the two-stage knobs left at zero.
func (s *Schedule) defaults() {
	if s.SplitFrac == 0 {
		s.SplitFrac = 0.5
	}
	if s.Stage1EndFrac == 0 {
		s.Stage1EndFrac = 0.6
	}
	if s.Stage2StartFrac == 0 {
		s.Stage2StartFrac = 0.4
	}
}

// Validate checks the schedule's ranges.
func (s Schedule) Validate() error {
	switch {
	case s.Kind != ScheduleCosine && s.Kind != ScheduleTwoStage:
		return fmt.Errorf("train: schedule %q is not supported (want %s or %s)", s.Kind, ScheduleCosine, ScheduleTwoStage)
	case s.Steps <= 0:
		return fmt.Errorf("train: steps = %d must be positive", s.Steps)
	case !(s.PeakLR > 0) || math.IsInf(s.PeakLR, 0):
		return fmt.Errorf("train: learning rate %v must be positive and finite", s.PeakLR)
	case !(s.WarmupFrac >= 0 && s.WarmupFrac < 1):
		return fmt.Errorf("train: warmup fraction %v must be in [0,1)", s.WarmupFrac)
	case !(s.MinLRFrac >= 0 && s.MinLRFrac <= 1):
		return fmt.Errorf("train: min lr fraction %v must be in [0,1]", s.MinLRFrac)
	case !(s.WeightDecay >= 0 && s.WeightDecay < 1):
		return fmt.Errorf("train: weight decay %v must be in [0,1)", s.WeightDecay)
	}
	return nil
}

// At returns the learning rate and weight decay of step (0-based).
func (s Schedule) At(step int) (lr, wd float64) {
	s.defaults()
	warm := int(math.Round(s.WarmupFrac * float64(s.Steps)))
	if step < warm {
		return s.PeakLR * float64(step+1) / float64(warm), s.WeightDecay
	}
	rest := max(s.Steps-warm, 1)
	frac := float64(step-warm) / float64(rest) // progress after warmup in [0,1)
	if s.Kind == ScheduleCosine {
		cos := 0.5 * (1 + math.Cos(math.Pi*frac))
		return s.PeakLR * (s.MinLRFrac + (1-s.MinLRFrac)*cos), s.WeightDecay
	}
	if frac < s.SplitFrac {
		f := frac / s.SplitFrac
		return s.PeakLR * (1 + (s.Stage1EndFrac-1)*f), s.WeightDecay
	}
	f := (frac - s.SplitFrac) / (1 - s.SplitFrac)
	return s.PeakLR * (s.Stage2StartFrac + (s.MinLRFrac-s.Stage2StartFrac)*f), 0
}
