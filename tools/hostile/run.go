package hostile

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Result is how one case went.
type Result struct {
	Case Case
	Got  string
	Took time.Duration
	Err  error // nil: refused as it must, within the deadline
}

// Run runs cases one by one against t, each within deadline. A case that
// runs out of time gets one more try (a shared machine can stall fsyncs
// for seconds); a case answered wrongly fails at once. logf, when set,
// gets one line per case.
func Run(ctx context.Context, t *Target, cases []Case, deadline time.Duration, logf func(format string, args ...any)) []Result {
	once := func(hc Case) Result {
		cctx, cancel := context.WithTimeout(ctx, deadline)
		defer cancel()
		start := time.Now()
		got, err := hc.Run(cctx, t)
		took := time.Since(start)
		if err == nil && took > deadline {
			err = fmt.Errorf("answered after %v, want within %v", took, deadline)
		}
		return Result{Case: hc, Got: got, Took: took, Err: err}
	}
	out := make([]Result, 0, len(cases))
	for _, hc := range cases {
		r := once(hc)
		if r.Err != nil && errors.Is(r.Err, context.DeadlineExceeded) {
			if logf != nil {
				logf("%s: %v after %v; once more", hc.Name, r.Err, r.Took.Round(time.Millisecond))
			}
			r = once(hc)
		}
		if logf != nil {
			logf("%-12s %-45s %-16s %v", hc.Kind, hc.Name, r.Got, r.Took.Round(time.Millisecond))
		}
		out = append(out, r)
	}
	return out
}
