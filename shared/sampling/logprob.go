package sampling

import (
	"math"
)

// MaxTopLogprobs is the most alternatives TopLogprobs reports per position
// (OpenAI's limit).
const MaxTopLogprobs = 20

// TokenLogprob is a token and the natural log of its probability.
type TokenLogprob struct {
	ID      int
	Logprob float64
}

// Logprobs computes log probabilities from logits (the softmax at
// temperature 1, as OpenAI reports them): it returns the log-sum-exp of x
// (log Z, so that token i has log probability x[i] - log Z) and appends the
// k most likely tokens, most likely first (ties: lower ID first), to dst.
// -Inf and NaN logits have probability 0 and are never among the top; with
// no finite logit log Z is -Inf and nothing is appended.
func Logprobs(x []float32, k int, dst []TokenLogprob) (logZ float64, top []TokenLogprob) {
	maxv := float32(math.Inf(-1))
	for _, v := range x {
		if v > maxv {
			maxv = v
		}
	}
	if math.IsInf(float64(maxv), -1) {
		return math.Inf(-1), dst
	}
	if math.IsInf(float64(maxv), 1) {
		// +Inf logits share all the probability.
		n := 0
		for _, v := range x {
			if math.IsInf(float64(v), 1) {
				n++
			}
		}
		logZ = math.Inf(1)
		lp := -math.Log(float64(n))
		for i, v := range x {
			if len(dst) >= k {
				break
			}
			if math.IsInf(float64(v), 1) {
				dst = append(dst, TokenLogprob{ID: i, Logprob: lp})
			}
		}
		return logZ, dst
	}
	sum := 0.0
	m := float64(maxv)
	for _, v := range x {
		if d := float64(v) - m; d > -745 { // exp underflows to 0 below
			sum += math.Exp(d)
		}
	}
	logZ = m + math.Log(sum)
	if k <= 0 {
		return logZ, dst
	}
	// Keep the k best in a small sorted slice: k is at most 20.
	start := len(dst)
	for i, v := range x {
		if !(v > float32(math.Inf(-1))) { // -Inf, NaN
			continue
		}
		n := len(dst) - start
		if n == k && v <= float32(dst[len(dst)-1].Logprob) {
			continue
		}
		e := TokenLogprob{ID: i, Logprob: float64(v)}
		if n < k {
			dst = append(dst, e)
		} else {
			dst[len(dst)-1] = e
		}
		// Bubble the new entry up (stable for ties: earlier IDs stay first).
		for j := len(dst) - 1; j > start && dst[j].Logprob > dst[j-1].Logprob; j-- {
			dst[j], dst[j-1] = dst[j-1], dst[j]
		}
	}
	for i := start; i < len(dst); i++ {
		dst[i].Logprob -= logZ
	}
	return logZ, dst
}

// Logprob returns the log probability of token id given logZ from Logprobs
// (-Inf for a -Inf or NaN logit).
func Logprob(x []float32, id int, logZ float64) float64 {
	if id < 0 || id >= len(x) || !(x[id] > float32(math.Inf(-1))) {
		return math.Inf(-1)
	}
	if math.IsInf(logZ, 1) {
		if math.IsInf(float64(x[id]), 1) {
			n := 0
			for _, v := range x {
				if math.IsInf(float64(v), 1) {
					n++
				}
			}
			return -math.Log(float64(n))
		}
		return math.Inf(-1)
	}
	return float64(x[id]) - logZ
}
