package server

import (
	"context"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/status"

	"github.com/bitnet-mesh/bitnet-mesh/shared/errcode"
)

// httpErrorHandler is grpc-gateway's default error handler plus the
// headers clients act on: WWW-Authenticate on 401, Retry-After on 429 (from
// the status's RetryInfo, else 1 s) and on 503 with a RetryInfo.
func httpErrorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, &errorHeaderWriter{ResponseWriter: w, st: status.Convert(err)}, r, err)
}

// errorHeaderWriter sets the headers right before the status line, after
// the default handler set its own.
type errorHeaderWriter struct {
	http.ResponseWriter
	st *status.Status
}

func (w *errorHeaderWriter) WriteHeader(code int) {
	errcode.SetHTTPHeaders(w.Header(), w.st)
	w.ResponseWriter.WriteHeader(code)
}

func (w *errorHeaderWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
