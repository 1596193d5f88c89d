package router

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/hardware"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
)

// Cost weights, in units of "one more request in flight". A node's cost is
// the sum of its terms; the lowest cost wins.
const (
	costPerInflight   = 1.0
	costPerQueued     = 2.0 // a queued request waits for a slot: worse than one batched
	costNotLoaded     = 4.0 // loading a model takes seconds
	bonusPreferKernel = 6.0 // beats the widest speed gap plus the latency cap: a preference decides among idle nodes
	costFailing       = 1000.0
	maxLatencyCost    = 3.0  // log2 of TTFT over the best node's, capped
	latencyFloorMS    = 50.0 // added to TTFTs: differences of a few ms (scheduling noise, GC, -race) must not split equal nodes
	tieTolerance      = 0.5  // costs this close count as equal
)

// Speed terms: nodes advertise measured decode speeds (hardware.Perf,
// from their kernel plans); ISA names are constraints only, never speed.
const (
	speedWeight      = 1.5 // cost per halving of the decode speed
	maxSpeedCost     = 3.0 // a node 4x slower or worse
	unknownSpeedCost = 1.5 // a node that advertises no measurement (older nodes): as one 2x slower
)

// speedCost is the cost of n's measured decode speed against best, the
// fastest candidate's (0 when none measured).
func speedCost(n nodeSnapshot, best float64) float64 {
	s := n.meta.Hardware.Perf.DecodeTokS
	if !(s > 0) || !(best > 0) {
		return unknownSpeedCost
	}
	return min(speedWeight*math.Log2(max(best/s, 1)), maxSpeedCost)
}

// demand is what a request asks of the node that serves it.
type demand struct {
	model   *modelv1.ModelRef // nil when the request names none
	require []string
	prefer  kernels.Path // "" for none
}

// newDemand validates the request's constraints: unknown names are
// INVALID_ARGUMENT.
func newDemand(model string, require []string, prefer string) (demand, error) {
	d := demand{}
	if model != "" {
		ref, err := modelv1.ParseRef(model)
		if err != nil {
			return d, status.Error(codes.InvalidArgument, err.Error())
		}
		d.model = ref
	}
	for _, r := range require {
		if _, err := (hardware.Report{}).Has(r); err != nil {
			return d, status.Errorf(codes.InvalidArgument, "require: %v", err)
		}
		d.require = append(d.require, strings.ToLower(strings.TrimSpace(r)))
	}
	if prefer != "" {
		p, err := kernels.ParsePath(strings.ToLower(strings.TrimSpace(prefer)))
		if err != nil {
			return d, status.Errorf(codes.InvalidArgument, "prefer_kernel: %v", err)
		}
		d.prefer = p
	}
	return d, nil
}

// unmet returns the requirements n does not meet.
func (d demand) unmet(n nodeSnapshot) []string {
	var missing []string
	for _, r := range d.require {
		if ok, _ := n.meta.Hardware.Has(r); !ok {
			missing = append(missing, r)
		}
	}
	return missing
}

// cost scores n for d (lower is better); bestTTFT is the lowest TTFT EWMA
// among the candidates, 0 when none has one; bestSpeed the highest
// measured decode speed, 0 when none measured.
func (d demand) cost(n nodeSnapshot, bestTTFT, bestSpeed float64) float64 {
	c := costPerInflight*float64(max(n.inflight, n.meta.Inflight)) + costPerQueued*float64(n.meta.QueueDepth)
	if d.model != nil && !n.meta.HasModel(d.model) {
		c += costNotLoaded
	}
	c += speedCost(n, bestSpeed)
	if d.prefer != "" && n.meta.Hardware.BestKernel == d.prefer {
		c -= bonusPreferKernel
	}
	if bestTTFT > 0 && n.ewmaTTFT > bestTTFT {
		c += min(math.Log2((n.ewmaTTFT+latencyFloorMS)/(bestTTFT+latencyFloorMS)), maxLatencyCost)
	}
	if n.failing {
		c += costFailing
	}
	return c
}

// candidates returns the usable nodes meeting d's hard constraints, or the
// error to give the client: UNAVAILABLE without nodes, FAILED_PRECONDITION
// naming the unmet constraint and what the nodes offer.
func (d demand) candidates(nodes []nodeSnapshot) ([]nodeSnapshot, error) {
	var usable, fit []nodeSnapshot
	for _, n := range nodes {
		if !n.usable {
			continue
		}
		usable = append(usable, n)
		if len(d.unmet(n)) == 0 {
			fit = append(fit, n)
		}
	}
	if len(usable) == 0 {
		return nil, status.Error(codes.Unavailable, "router: no healthy inference node")
	}
	if len(fit) == 0 {
		return nil, status.Error(codes.FailedPrecondition, d.noFitMessage(usable))
	}
	return fit, nil
}

// noFitMessage names the requirements no node meets (or, when each is met
// somewhere, says no node meets them together) and lists what nodes offer.
func (d demand) noFitMessage(nodes []nodeSnapshot) string {
	var none []string
	for _, r := range d.require {
		if !slices.ContainsFunc(nodes, func(n nodeSnapshot) bool { ok, _ := n.meta.Hardware.Has(r); return ok }) {
			none = append(none, r)
		}
	}
	var b strings.Builder
	if len(none) > 0 {
		fmt.Fprintf(&b, "no inference node offers %s (require %s); nodes offer:", strings.Join(none, ", "), strings.Join(d.require, ", "))
	} else {
		fmt.Fprintf(&b, "no inference node offers all of %s together; nodes offer:", strings.Join(d.require, ", "))
	}
	const maxListed = 8
	for i, n := range nodes {
		if i == maxListed {
			fmt.Fprintf(&b, " ... and %d more", len(nodes)-maxListed)
			break
		}
		if i > 0 {
			b.WriteByte(';')
		}
		fmt.Fprintf(&b, " %s: %s", n.id, offer(n.meta.Hardware))
	}
	return b.String()
}

// offer describes what a node offers to requirements: kernel paths and flags.
func offer(r hardware.Report) string {
	h := HardwareToPB(r)
	s := "kernels " + strings.Join(h.Kernels, ",")
	if len(h.Features) > 0 {
		s += " features " + strings.Join(h.Features, ",")
	}
	return s
}

// choose picks among candidates (non-empty): the lowest cost; costs within
// tieTolerance of it tie, and among ties the least loaded wins; a tie that
// remains is broken at random (rng, seeded and owned by the router), which
// spreads sequential traffic over equal nodes. Among nodes within the
// tolerance a cost difference means only noise (a TTFT a few percent
// higher), so it must not decide, or one node would take every request.
func (d demand) choose(cands []nodeSnapshot, rng *rand.Rand) nodeSnapshot {
	best, speed := 0.0, 0.0
	for _, n := range cands {
		if n.ewmaTTFT > 0 && !n.failing && (best == 0 || n.ewmaTTFT < best) {
			best = n.ewmaTTFT
		}
		speed = max(speed, n.meta.Hardware.Perf.DecodeTokS)
	}
	costs := make([]float64, len(cands))
	low := math.Inf(1)
	for i, n := range cands {
		costs[i] = d.cost(n, best, speed)
		low = min(low, costs[i])
	}
	var near []int
	leastLoad := math.MaxInt
	for i, n := range cands {
		if costs[i] > low+tieTolerance {
			continue
		}
		load := max(n.inflight, n.meta.Inflight) + n.meta.QueueDepth
		if load < leastLoad {
			leastLoad, near = load, near[:0]
		}
		if load == leastLoad {
			near = append(near, i)
		}
	}
	return cands[near[rng.IntN(len(near))]]
}
