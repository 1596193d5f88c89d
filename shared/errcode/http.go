package errcode

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// WithRetry returns a status error of code with a RetryInfo detail saying
// when to try again (RESOURCE_EXHAUSTED and UNAVAILABLE use it; REST
// turns it into Retry-After).
func WithRetry(code codes.Code, wait time.Duration, msg string) error {
	st := status.New(code, msg)
	if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(wait)}); err == nil {
		st = d
	}
	return st.Err()
}

// RetryAfter returns the RetryInfo delay of a status error.
func RetryAfter(st *status.Status) (time.Duration, bool) {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return ri.GetRetryDelay().AsDuration(), true
		}
	}
	return 0, false
}

// BearerChallenge is the WWW-Authenticate of 401 answers (RFC 6750).
const BearerChallenge = `Bearer realm="bitnet"`

// SetHTTPHeaders sets the headers an HTTP error answer for st needs: the
// bearer challenge on UNAUTHENTICATED (grpc-gateway's default puts the
// error message there, which is not a challenge) and Retry-After (see
// RetryAfterHeader).
func SetHTTPHeaders(h http.Header, st *status.Status) {
	if st.Code() == codes.Unauthenticated {
		h.Set("WWW-Authenticate", BearerChallenge)
	}
	RetryAfterHeader(h, st)
}

// RetryAfterHeader sets HTTP's Retry-After (whole seconds, rounded up, at
// least 1) from st's RetryInfo; a RESOURCE_EXHAUSTED (429) or UNAVAILABLE
// (503) without one gets 1 s, since both should say when to come back
// (RFC 6585, RFC 9110 section 10.2.3).
func RetryAfterHeader(h http.Header, st *status.Status) {
	d, ok := RetryAfter(st)
	if !ok {
		if st.Code() != codes.ResourceExhausted && st.Code() != codes.Unavailable {
			return
		}
		d = time.Second
	}
	secs := max(1, int64(math.Ceil(d.Seconds())))
	h.Set("Retry-After", strconv.FormatInt(secs, 10))
}
