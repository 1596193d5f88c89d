package train

import (
	"bytes"
	"fmt"
	"math"
)

// LossCurveSVG draws the training loss (blue) and validation loss (orange,
// dots) of history against the step, as a standalone SVG document.
func LossCurveSVG(history []Point) []byte {
	const w, h, ml, mr, mt, mb = 720.0, 420.0, 60.0, 20.0, 30.0, 45.0
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="%g" height="%g" fill="white"/>`+"\n", w, h)
	lo, hi := math.Inf(1), math.Inf(-1)
	maxStep := 1
	for _, p := range history {
		lo, hi = min(lo, p.Loss), max(hi, p.Loss)
		if p.HasVal {
			lo, hi = min(lo, p.ValLoss), max(hi, p.ValLoss)
		}
		maxStep = max(maxStep, p.Step)
	}
	if len(history) == 0 || math.IsInf(lo, 0) || math.IsNaN(lo) || math.IsNaN(hi) {
		b.WriteString(`<text x="20" y="30">no data</text></svg>` + "\n")
		return b.Bytes()
	}
	if hi-lo < 1e-9 {
		lo, hi = lo-0.5, hi+0.5
	}
	x := func(s int) float64 { return ml + (w-ml-mr)*float64(s)/float64(maxStep) }
	y := func(l float64) float64 { return mt + (h-mt-mb)*(hi-l)/(hi-lo) }
	fmt.Fprintf(&b, `<path d="M%g %gV%gH%g" fill="none" stroke="black"/>`+"\n", ml, mt, h-mb, w-mr)
	for i := 0; i <= 4; i++ {
		l := lo + (hi-lo)*float64(i)/4
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" text-anchor="end">%.3f</text>`+"\n", ml-5, y(l)+4, l)
		s := maxStep * i / 4
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" text-anchor="middle">%d</text>`+"\n", x(s), h-mb+16, s)
	}
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle">step</text>`+"\n", (w+ml)/2, h-8)
	b.WriteString(`<path fill="none" stroke="#1f77b4" stroke-width="1.5" d="`)
	for i, p := range history {
		cmd := "L"
		if i == 0 {
			cmd = "M"
		}
		fmt.Fprintf(&b, "%s%.1f %.1f", cmd, x(p.Step), y(p.Loss))
	}
	b.WriteString(`"/>` + "\n")
	var val bytes.Buffer
	n := 0
	for _, p := range history {
		if p.HasVal {
			cmd := "L"
			if n == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&val, "%s%.1f %.1f", cmd, x(p.Step), y(p.ValLoss))
			n++
		}
	}
	if n > 0 {
		fmt.Fprintf(&b, `<path fill="none" stroke="#ff7f0e" stroke-width="2" d="%s"/>`+"\n", val.String())
		for _, p := range history {
			if p.HasVal {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="#ff7f0e"/>`+"\n", x(p.Step), y(p.ValLoss))
			}
		}
	}
	fmt.Fprintf(&b, `<text x="%g" y="18" fill="#1f77b4">train loss</text><text x="%g" y="18" fill="#ff7f0e">validation loss</text>`+"\n", ml, ml+90)
	b.WriteString("</svg>\n")
	return b.Bytes()
}
